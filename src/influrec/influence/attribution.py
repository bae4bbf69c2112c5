"""HOW influence is computed: per-event effects on a measurement, one ``Explanation`` each.

* ``loo``: exact leave-one-out -- each event really deleted; the L deletions are scored in a
  few batches that encode the events before each deletion once;
* ``gxi`` / ``ig``: gradient x input and integrated gradients on the event embeddings
  (item + behaviour + time + value), against a baseline where every event's content is removed
  but positions stay; ``completeness_gap`` = |sum of effects - (f(x) - f(baseline))|;
* ``shapley``: Shapley values over events by permutation sampling with antithetic pairs,
  with standard errors;
* ``attention``: attention rollout -- a diagnostic of where the model looks, not an effect.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from influrec.data.batching import batch_rows
from influrec.data.history import History
from influrec.errors import InputError
from influrec.influence.engine import Scorer
from influrec.influence.measurement import Measurement
from influrec.models.protocol import has_attention


@dataclass
class Explanation:
    """Effects of the events at ``positions`` (indices into the history) on ``measurement``.

    A positive effect means the event pushes the measurement up: removing it lowers it.
    """

    method: str
    measurement: str
    value: float  # the measurement on the full history
    positions: np.ndarray  # (L,) int64
    effects: np.ndarray  # (L,) float64
    details: dict[str, Any] = field(default_factory=dict)

    def ranked(self) -> np.ndarray:
        """Positions ordered from the most positive effect to the most negative."""
        return self.positions[np.argsort(-self.effects, kind="stable")]


def leave_one_out_many(
    scorer: Scorer, history: History, measurements: Sequence[Measurement]
) -> list[Explanation]:
    """Exact leave-one-out for several measurements (e.g. the top-10 items) at once: the L
    deletions are scored once, over all items, and every measurement reads the same scores."""
    window = scorer.window(history)
    scores = scorer.leave_one_out_scores(history)
    out = []
    for m in measurements:
        values = m(scores).double().numpy()
        out.append(Explanation("loo", m.name, float(values[0]), window, values[0] - values[1:]))
    return out


def leave_one_out(scorer: Scorer, history: History, measurement: Measurement) -> Explanation:
    """Exact effect of deleting each event the model sees: f(history) - f(history without e)."""
    return leave_one_out_many(scorer, history, [measurement])[0]


def _embedding_function(
    scorer: Scorer, history: History
) -> tuple[torch.Tensor, torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
    """(x (1, T, D) event embeddings, baseline (1, T, D), g: embeddings (S, T, D) -> scores
    (S, I + 1)). The baseline keeps positions and removes every event's content."""
    model = scorer.model
    window = scorer.window(history)
    batch = batch_rows(
        history, [window], max_len=scorer.max_len, time_buckets=model.config.time_buckets
    )
    x = model.embed(batch.items, batch.behaviors, batch.gaps, batch.values).detach()
    zeros, positions = torch.zeros_like(batch.items), model.position_ids(batch.items)
    baseline = model.embed(
        zeros, zeros, zeros, torch.zeros_like(batch.values), positions=positions
    ).detach()

    def g(embeddings: torch.Tensor) -> torch.Tensor:
        items = batch.items.expand(embeddings.shape[0], -1)
        hidden = model.encode_embeddings(embeddings, items, last_only=True)[:, -1]
        return model.item_scores(hidden)

    return x, baseline, g


def _require_gradients(measurement: Measurement) -> None:
    if not measurement.differentiable:
        raise InputError(f"{measurement.name} is not differentiable; use loo or shapley")


def gradient_x_input(scorer: Scorer, history: History, measurement: Measurement) -> Explanation:
    """Gradient of the measurement times (embedding - baseline), summed per event."""
    _require_gradients(measurement)
    x, baseline, g = _embedding_function(scorer, history)
    x = x.clone().requires_grad_(True)
    value = measurement(g(x))
    (grad,) = torch.autograd.grad(value.sum(), x)
    effects = ((x - baseline) * grad).sum(-1)[0].detach().double().numpy()
    return Explanation(
        "gxi", measurement.name, float(value.detach()), scorer.window(history), effects
    )


def integrated_gradients_many(
    scorer: Scorer, history: History, measurements: Sequence[Measurement], *, steps: int = 50
) -> list[Explanation]:
    """Integrated gradients of several measurements (e.g. the top-10 items) sharing one path:
    one forward pass of the ``steps`` midpoints and one backward pass per measurement.

    The backward passes run one after another on the retained graph: batching them with
    ``is_grads_batched`` (vmap) was 1.45x slower on CPU, as vmap has no batching rule for the
    fused attention kernel's backward and falls back to a loop that concatenates its slices.
    """
    for m in measurements:
        _require_gradients(m)
    x, baseline, g = _embedding_function(scorer, history)
    alphas = (torch.arange(steps, dtype=x.dtype) + 0.5) / steps
    path = (baseline + alphas[:, None, None] * (x - baseline)).requires_grad_(True)  # (S, T, D)
    scores = g(path)
    outputs = [m(scores).sum() for m in measurements]  # each summed over the S steps
    mean_grads = torch.stack(
        [
            torch.autograd.grad(out, path, retain_graph=i < len(outputs) - 1)[0].mean(0)
            for i, out in enumerate(outputs)
        ]
    )  # (M, T, D)
    effects = ((x - baseline)[0][None] * mean_grads).sum(-1).detach().double().numpy()  # (M, T)
    with torch.no_grad():
        ends = g(torch.cat([x, baseline]))
    window = scorer.window(history)
    out = []
    for i, m in enumerate(measurements):
        value, base_value = (float(v) for v in m(ends))
        gap = abs(float(effects[i].sum()) - (value - base_value))
        details = {"steps": steps, "baseline_value": base_value, "completeness_gap": gap}
        out.append(Explanation("ig", m.name, value, window, effects[i], details))
    return out


def integrated_gradients(
    scorer: Scorer, history: History, measurement: Measurement, *, steps: int = 50
) -> Explanation:
    """Integrated gradients (midpoint rule, ``steps`` points) on the event embeddings."""
    return integrated_gradients_many(scorer, history, [measurement], steps=steps)[0]


def shapley_sampling(
    scorer: Scorer,
    history: History,
    measurement: Measurement,
    *,
    permutations: int = 16,
    seed: int = 0,
) -> Explanation:
    """Monte-Carlo Shapley values over the events the model sees (antithetic permutation pairs).

    Events outside the window stay in every coalition. ``details["stderr"]`` is the standard
    error of each estimate over the permutation pairs.
    """
    window = scorer.window(history)
    older = np.arange(window[0]) if len(window) else np.zeros(0, np.int64)
    rng = np.random.default_rng(seed)
    pairs = max(1, permutations // 2)
    orders = []
    for _ in range(pairs):
        order = rng.permutation(len(window))
        orders += [order, order[::-1]]
    rows = []
    for order in orders:  # coalitions: the first k events of the order, k = 0..L
        for k in range(len(window) + 1):
            rows.append(np.concatenate([older, np.sort(window[order[:k]])]))
    values = measurement(scorer.scores(history, rows)).double().numpy().reshape(len(orders), -1)
    contributions = np.zeros((len(orders), len(window)))
    for o, order in enumerate(orders):
        contributions[o, order] = np.diff(values[o])
    per_pair = contributions.reshape(pairs, 2, -1).mean(1)
    stderr = per_pair.std(0, ddof=1) / np.sqrt(pairs) if pairs > 1 else np.full(len(window), np.nan)
    details = {"permutations": 2 * pairs, "stderr": stderr.tolist()}
    return Explanation(
        "shapley", measurement.name, float(values[0, -1]), window, contributions.mean(0), details
    )


@torch.no_grad()
def attention_rollout(scorer: Scorer, history: History, measurement: Measurement) -> Explanation:
    """Attention rollout to the last position (Abnar & Zuidema): a diagnostic, not an effect."""
    model = scorer.model
    if not has_attention(model):
        raise InputError(
            f"attention rollout needs attention weights, and a {type(model).__name__} model "
            "has none; use loo, gxi, ig or shapley"
        )
    window = scorer.window(history)
    batch = batch_rows(
        history, [window], max_len=scorer.max_len, time_buckets=model.config.time_buckets
    )
    weights = model.attention_weights(batch.items, batch.behaviors, batch.gaps, batch.values)
    length = batch.items.shape[1]
    rollout = torch.eye(length)
    for layer in weights:  # (1, H, T, T)
        mixed = 0.5 * layer[0].mean(0) + 0.5 * torch.eye(length)
        rollout = mixed @ rollout
    effects = rollout[-1, length - len(window) :].double().numpy()
    value = float(measurement(scorer.scores(history, [np.arange(len(history))]))[0])
    details = {
        "note": "attention rollout is a diagnostic of where the model looks, not a causal effect"
    }
    return Explanation("attention", measurement.name, value, window, effects, details)


def random_ranking(
    scorer: Scorer, history: History, measurement: Measurement, *, seed: int = 0
) -> Explanation:
    """Random effects: the baseline every faithfulness table must include."""
    window = scorer.window(history)
    effects = np.random.default_rng(seed).standard_normal(len(window))
    return Explanation("random", measurement.name, float("nan"), window, effects)
