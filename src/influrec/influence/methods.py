"""The registry of influence methods: HOW an effect is computed, by name.

One entry per method; the CLI choices, the HTTP enum and the faithfulness checks all read it,
so a new method is one function in :mod:`influrec.influence.attribution` plus one entry here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from influrec.data.history import History
from influrec.influence.attribution import (
    Explanation,
    attention_rollout,
    gradient_x_input,
    integrated_gradients,
    integrated_gradients_many,
    leave_one_out,
    leave_one_out_many,
    random_ranking,
    shapley_sampling,
)
from influrec.influence.engine import Scorer
from influrec.influence.measurement import Measurement
from influrec.progress import steps


@dataclass(frozen=True)
class Method:
    """An influence method: ``function(scorer, history, measurement, **options)``.

    ``uses_measurement``: the events' ranking depends on what is measured (attention and the
    random baseline ignore it); ``gradients``: it differentiates the measurement (so it needs a
    differentiable one), where the others delete events; ``seeded``: it takes a ``seed``
    option; ``explains``: offered to users to explain recommendations (the random baseline is
    only for faithfulness tables); ``many``: ``many(scorer, history, measurements)`` explains
    several measurements at the cost of about one; ``note``: what a reader of its effects must
    know; ``causal``: its values estimate each event's effect on the measurement, so a plain
    sentence may say a recommendation is "because of" an event (attention rollout only shows
    where the model looks).
    """

    name: str
    function: Callable[..., Explanation]
    description: str
    uses_measurement: bool = True
    gradients: bool = False
    seeded: bool = False
    explains: bool = True
    many: Callable[[Scorer, History, Sequence[Measurement]], list[Explanation]] | None = None
    note: str | None = None
    causal: bool = True


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method(
            "loo",
            leave_one_out,
            "exact leave-one-out: each event really deleted",
            many=leave_one_out_many,  # one batch of deletions serves every measurement
        ),
        Method("gxi", gradient_x_input, "gradient x input on the event embeddings", gradients=True),
        Method(
            "ig",
            integrated_gradients,
            "integrated gradients on the event embeddings",
            gradients=True,
            many=integrated_gradients_many,  # one path (forward pass) for every measurement
        ),
        Method("shapley", shapley_sampling, "Shapley values by permutation sampling", seeded=True),
        Method(
            "attention",
            attention_rollout,
            "attention rollout: where the model looks, a diagnostic, not an effect",
            uses_measurement=False,
            note="attention is a diagnostic, not a causal effect",
            causal=False,
        ),
        Method(
            "random",
            random_ranking,
            "random effects: the baseline of faithfulness tables",
            uses_measurement=False,
            seeded=True,
            explains=False,
        ),
    )
}
"""Method name -> :class:`Method`; the one list of influence methods."""


def explaining_methods() -> list[str]:
    """Names of the methods offered to explain recommendations (every method but baselines)."""
    return [name for name, method in METHODS.items() if method.explains]


def run_method(
    name: str, scorer: Scorer, history: History, measurement: Measurement, *, seed: int = 0
) -> Explanation:
    """Effects by the registered method ``name``; seeded methods (Shapley, random) use ``seed``."""
    method = METHODS[name]
    options = {"seed": seed} if method.seeded else {}
    return method.function(scorer, history, measurement, **options)


def run_method_many(
    name: str,
    scorer: Scorer,
    history: History,
    measurements: Sequence[Measurement],
    *,
    progress: bool | None = None,
) -> list[Explanation]:
    """Effects on each of ``measurements`` by the registered method ``name``: in one go when
    the method has a ``many`` form, else one measurement after another (with a bar over them
    when ``progress``; ``None``: only where stderr is a terminal)."""
    many = METHODS[name].many
    if many is not None:
        return many(scorer, history, measurements)
    out = []
    with steps(len(measurements), f"explaining by {name}", enabled=progress) as bar:
        for m in measurements:
            out.append(run_method(name, scorer, history, m))
            bar.advance()
    return out
