"""Robust ranking: recommendations that no single low-intent event can carry on its own.

One accidental click (a view of something the user does not care about) can fill a top ten
with that item's neighbours. Robust ranking scores each item by its WORST log-probability over
the history as it is and the history with any one of its low-intent events removed (exact
leave-one-out deletions, :class:`~influrec.influence.engine.Scorer`). An item that owes its
place to one such event is scored as if that event had not happened and sinks; an item that
many events support barely moves, since no single deletion takes much from it.

Log-probabilities, not raw scores, are compared across deletions: removing an event shifts
every item's score, and the softmax normalises that shift away.

Which events count as low intent is the caller's choice of behaviours (``view`` where a log has
one); by default every event does. Only the ``recent`` last events are considered: a deletion
costs one more row per event, and an old event seldom carries an item alone.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import torch

from influrec.data.history import History
from influrec.errors import InputError
from influrec.inference import EXCLUDE_SEEN, Recommendation, Recommender, clamp_k
from influrec.influence.engine import Scorer, without

RECENT = 3
"""Default number of most recent events whose single deletion is considered: on planted
accidental clicks (bench/robust.py) the last 1-3 recovered more and cost less than the last 20."""


def low_intent_codes(rec: Recommender, behaviors: Collection[str] | None) -> np.ndarray | None:
    """The behaviour indices of the named low-intent behaviours (None: every behaviour).

    Raises :class:`InputError` naming an unknown behaviour and the run's behaviours."""
    if behaviors is None:
        return None
    unknown = sorted(set(behaviors) - set(rec.behavior_index))
    if unknown:
        raise InputError(
            f"unknown low-intent behaviour {', '.join(map(repr, unknown))}: this run's "
            f"behaviours are {', '.join(rec.behavior_index)}"
        )
    return np.array(sorted(rec.behavior_index[b] for b in behaviors), np.int64)


def deletable(history: History, low_intent: np.ndarray | None, *, recent: int | None) -> np.ndarray:
    """Positions of the events whose single deletion robust ranking considers: low-intent
    ones among the ``recent`` last (all when None), never the only event of the history."""
    n = len(history)
    if n < 2:
        return np.zeros(0, np.int64)
    positions = np.arange(0 if recent is None else max(0, n - recent), n)
    if low_intent is not None:
        positions = positions[np.isin(history.behaviors[positions], low_intent)]
    return positions


def robust_log_probabilities(
    scorer: Scorer,
    history: History,
    *,
    low_intent: np.ndarray | None = None,
    recent: int | None = RECENT,
) -> torch.Tensor:
    """(I + 1,) each item's lowest log-probability over ``history`` and each single deletion of
    a :func:`deletable` event; index 0 (padding) is -inf."""
    positions = deletable(history, low_intent, recent=recent)
    n = len(history)
    rows = [np.arange(n)] + [without(n, [int(p)]) for p in positions]
    log_probabilities = torch.log_softmax(scorer.scores(history, rows), dim=-1)
    return log_probabilities.amin(dim=0)


def robust_recommend(
    rec: Recommender,
    history: History,
    *,
    k: int = 10,
    exclude_seen: bool = EXCLUDE_SEEN,
    low_intent: Collection[str] | None = None,
    recent: int | None = RECENT,
) -> list[Recommendation]:
    """The top ``k`` items by :func:`robust_log_probabilities` (scores are those
    log-probabilities); ``low_intent`` names the behaviours whose single events may not carry
    an item (None: every behaviour). An empty history gets the cold-start answer."""
    if recent is not None and recent < 1:
        raise InputError(f"recent must be at least 1 (events considered), got {recent}")
    codes = low_intent_codes(rec, low_intent)
    if len(history) == 0:
        return rec.popular(k=clamp_k(k, rec.n_items))
    scores = robust_log_probabilities(Scorer(rec.model), history, low_intent=codes, recent=recent)
    return rec.top_k(scores, k=k, exclude=history.items if exclude_seen else None)
