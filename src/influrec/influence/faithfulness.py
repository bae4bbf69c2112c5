"""Is an explanation faithful to the model? Perturb the history by it and watch the output.

For each sampled user the explained item is the model's top-1 recommendation j, and each
method ranks the events the model sees (most supportive first). With ``Ke`` = 1..5 top events:

* ``DEL@Ke``: p(j) after deleting the top Ke events (lower is more faithful);
* ``INS@Ke``: p(j) when only the top Ke events are kept (higher is more faithful);
* ``POS@Kr,Ke``: share of users for whom j is still in the top Kr after deleting the top Ke
  events, Kr in {1, 5, 10, 20} (lower is more faithful);
* ``CDCG@Ke``: 1 / log2(1 + rank of j) after deleting the top Ke events (lower is more
  faithful);
* ``DEL-AUC`` / ``INS-AUC``: mean p(j) along the curve deleting (inserting) events in the
  method's order, at 0%, 10%, ..., 100% of the window.

These follow the fixed-length counterfactual metrics of Baklanov et al. (SIGIR'25) as read
here; p(j) is the softmax probability over all items. On synthetic data,
:func:`planted_cause_recovery` checks whether a method's top event is the planted cause.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from influrec.data.history import History
from influrec.data.sequences import SequenceData
from influrec.influence.engine import Scorer, without
from influrec.influence.measurement import ItemScore, LogProbability, Measurement, Rank
from influrec.influence.methods import METHODS, run_method
from influrec.progress import steps

KE = (1, 2, 3, 4, 5)
KR = (1, 5, 10, 20)
CURVE = np.linspace(0.0, 1.0, 11)


def _method_measurement(method: str, item: int) -> Measurement:
    """The measurement each method explains. The metrics ask how far j falls (POS, CDCG) and how
    much probability it loses (DEL, INS), so perturbation methods explain :class:`Rank` (places
    first, probability to order equal places); gradient methods need a differentiable one and
    explain log p(j). Attention and random ignore it."""
    if not METHODS[method].uses_measurement:
        return ItemScore(item)
    return LogProbability(item) if METHODS[method].gradients else Rank(item)


def _perturbation_rows(n: int, order: np.ndarray) -> list[np.ndarray]:
    """Rows: delete top Ke (5), keep only top Ke (5), deletion curve (11), insertion curve (11).

    Insertion starts from an empty history (older events outside the window are left out too).
    """
    rows = [without(n, order[:ke]) for ke in KE]
    rows += [np.sort(order[:ke]) for ke in KE]
    return rows + _curve_rows(n, order)


def _curve_rows(n: int, order: np.ndarray) -> list[np.ndarray]:
    """Rows: the deletion curve (11), then the insertion curve (11)."""
    steps = [round(f * len(order)) for f in CURVE]
    return [without(n, order[:s]) for s in steps] + [np.sort(order[:s]) for s in steps]


def user_faithfulness(
    scorer: Scorer, history: History, methods: Sequence[str], *, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Faithfulness metrics of each method for one user (explaining the top-1 item)."""
    out: dict[str, dict[str, float]] = {}
    for method, (probs, ranks) in _perturbed(scorer, history, methods, seed=seed).items():
        m: dict[str, float] = {}
        for i, ke in enumerate(KE):
            m[f"DEL@{ke}"] = float(probs[i])
            m[f"INS@{ke}"] = float(probs[len(KE) + i])
            m[f"CDCG@{ke}"] = float(1 / np.log2(1 + ranks[i]))
            for kr in KR:
                m[f"POS@{kr},{ke}"] = float(ranks[i] <= kr)
        curve = 2 * len(KE)
        m["DEL-AUC"] = float(probs[curve : curve + len(CURVE)].mean())
        m["INS-AUC"] = float(probs[curve + len(CURVE) :].mean())
        out[method] = m
    return out


def _perturbed(
    scorer: Scorer,
    history: History,
    methods: Sequence[str],
    *,
    seed: int,
    rows: Callable[[int, np.ndarray], list[np.ndarray]] = _perturbation_rows,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per method: p(j) (R,) and the rank of j (R,) on each of the R ``rows`` (given the
    history's length and the method's order), j being the top-1 item after the history."""
    n = len(history)
    item = int(torch.argmax(scorer.scores(history, [np.arange(n)])[0]))
    out = {}
    for method in methods:
        explanation = run_method(
            method, scorer, history, _method_measurement(method, item), seed=seed
        )
        scores = scorer.scores(history, rows(n, explanation.ranked()))
        probs = torch.softmax(scores, dim=-1)[:, item].double().numpy()
        out[method] = (probs, (scores >= scores[:, item : item + 1]).sum(-1).numpy())
    return out


def user_curves(
    scorer: Scorer, history: History, methods: Sequence[str], *, seed: int = 0
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per method, the deletion and the insertion curve (each (11,), p(j) at :data:`CURVE`
    shares of the window deleted or inserted in the method's order) for one user; their means
    are the user's ``DEL-AUC`` and ``INS-AUC`` of :func:`user_faithfulness`."""
    found = _perturbed(scorer, history, methods, seed=seed, rows=_curve_rows)
    return {
        method: (probs[: len(CURVE)], probs[len(CURVE) :]) for method, (probs, _) in found.items()
    }


def faithfulness(
    scorer: Scorer,
    histories: Sequence[History],
    methods: Sequence[str],
    *,
    seed: int = 0,
    progress: bool | None = None,
) -> dict[str, dict[str, float]]:
    """Mean of :func:`user_faithfulness` over users (each needs at least 2 events).
    ``progress``: a bar over the users (``None``: only where stderr is a terminal)."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
    totals: dict[str, dict[str, list[float]]] = {m: {} for m in methods}
    users = [h for h in histories if len(h) >= 2]
    with steps(len(users), "faithfulness over users", enabled=progress) as bar:
        for index, history in enumerate(users):
            for method, metrics in user_faithfulness(
                scorer, history, methods, seed=seed + index
            ).items():
                for key, value in metrics.items():
                    totals[method].setdefault(key, []).append(value)
            bar.advance()
    return {m: {k: float(np.mean(v)) for k, v in metrics.items()} for m, metrics in totals.items()}


def faithfulness_curves(
    scorer: Scorer, histories: Sequence[History], methods: Sequence[str], *, seed: int = 0
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Mean of :func:`user_curves` over users (each needs at least 2 events, as in
    :func:`faithfulness`, whose ``DEL-AUC`` / ``INS-AUC`` are these curves' means)."""
    sums = {m: (np.zeros(len(CURVE)), np.zeros(len(CURVE))) for m in methods}
    count = 0
    for index, history in enumerate(h for h in histories if len(h) >= 2):
        for method, (deletion, insertion) in user_curves(
            scorer, history, methods, seed=seed + index
        ).items():
            sums[method][0][:] += deletion
            sums[method][1][:] += insertion
        count += 1
    return {m: (d / max(count, 1), i / max(count, 1)) for m, (d, i) in sums.items()}


def better(metric: str, a: float, b: float) -> bool:
    """True when value ``a`` is more faithful than ``b`` for ``metric``."""
    lower = metric.startswith(("DEL@", "POS@", "CDCG@")) or metric == "DEL-AUC"
    return a < b if lower else a > b


def planted_cause_recovery(
    scorer: Scorer,
    data: SequenceData,
    caused_events: np.ndarray,
    cause_events: np.ndarray,
    methods: Sequence[str],
    *,
    seed: int = 0,
    progress: bool | None = None,
) -> dict[str, dict[str, Any]]:
    """Precision@1 of the true cause: explain log p(caused item) from the history before it.

    ``caused_events``/``cause_events`` are event indices into ``data`` (same user, cause
    earlier). Only cases whose cause lies in the model's window are counted. ``progress``: a
    bar over the cases (``None``: only where stderr is a terminal).
    """
    hits: dict[str, list[float]] = {m: [] for m in methods}
    cases = list(zip(caused_events, cause_events, strict=True))
    with steps(len(cases), "planted causes", enabled=progress) as bar:
        for index, (event, cause) in enumerate(cases):
            bar.advance()
            start = data.user_start[data.user[event]]
            span = slice(start, event)
            history = History(
                data.item[span], data.behavior[span], data.timestamp[span], data.value[span]
            )
            position = int(cause - start)
            if position not in set(scorer.window(history).tolist()):
                continue
            for method in methods:
                caused = int(data.item[event])
                uses = METHODS[method].uses_measurement
                measurement = LogProbability(caused) if uses else ItemScore(caused)
                explanation = run_method(method, scorer, history, measurement, seed=seed + index)
                hits[method].append(float(explanation.ranked()[0] == position))
    return {
        m: {"precision@1": float(np.mean(h)) if h else float("nan"), "cases": len(h)}
        for m, h in hits.items()
    }
