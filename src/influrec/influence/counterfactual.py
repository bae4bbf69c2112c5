"""Counterfactual sets and what-if simulation, every answer verified by exact re-scoring.

* :func:`counterfactual_set`: the smallest set of past events whose removal drops item j out
  of the top K: candidates ordered by exact leave-one-out effect on j's rank margin, all
  prefixes of that order scored in one batch, then a pruning pass that drops events the set
  does not need; bounded by ``max_size`` and a time budget.
* :func:`what_if`: apply hypothetical edits (add, remove, replace events) and compare top-Ks.
* :func:`influential_actions`: for candidate next actions (item x behaviour), how much each
  would change the user's top K, batched.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from influrec.data.history import History
from influrec.errors import InputError
from influrec.influence.attribution import leave_one_out
from influrec.influence.engine import Scorer, extend, without
from influrec.influence.measurement import RankMargin


def rank_of(scores: torch.Tensor, item: int) -> int:
    """1-based rank of ``item`` in one score row (ties count against it)."""
    return int((scores >= scores[item]).sum())


@dataclass
class CounterfactualSet:
    item: int
    k: int
    removed: list[int]  # positions in the history
    valid: bool  # verified: without ``removed`` the item is no longer in the top k
    original_rank: int
    new_rank: int | None
    evaluated: int  # edited histories scored
    seconds: float
    reason: str = ""

    @property
    def size(self) -> int:
        return len(self.removed)


def counterfactual_set(
    scorer: Scorer,
    history: History,
    item: int,
    *,
    k: int = 10,
    max_size: int = 20,
    time_budget_s: float = 1.0,
) -> CounterfactualSet:
    """Smallest set found of events whose removal drops ``item`` out of the top ``k``."""
    started = time.perf_counter()
    n = len(history)
    margin = RankMargin(item, k)
    base = scorer.scores(history, [np.arange(n)])[0]
    original = rank_of(base, item)
    if original > k:
        return CounterfactualSet(item, k, [], True, original, original, 1, 0.0, "not in the top k")
    effects = leave_one_out(scorer, history, margin)
    order = np.argsort(-effects.effects, kind="stable")
    helpful = effects.positions[order][effects.effects[order] > 0][:max_size]
    evaluated = 1 + len(effects.positions)

    def failed(reason: str) -> CounterfactualSet:
        seconds = time.perf_counter() - started
        return CounterfactualSet(item, k, [], False, original, None, evaluated, seconds, reason)

    if len(helpful) == 0:
        return failed("no event supports the item")
    prefixes = [without(n, helpful[: s + 1]) for s in range(len(helpful))]
    margins = margin(scorer.scores(history, prefixes)).numpy()
    evaluated += len(prefixes)
    dropped = np.flatnonzero(margins < 0)
    if len(dropped) == 0:
        return failed(f"removing the {len(helpful)} most supportive events is not enough")
    chosen = list(helpful[: dropped[0] + 1])
    chosen, pruned, minimal = _prune(scorer, history, chosen, margin, started, time_budget_s)
    evaluated += pruned
    final = scorer.scores(history, [without(n, chosen)])[0]
    new_rank = rank_of(final, item)
    return CounterfactualSet(
        item,
        k,
        sorted(int(p) for p in chosen),
        new_rank > k,
        original,
        new_rank,
        evaluated + 1,
        time.perf_counter() - started,
        "" if minimal else f"time budget of {time_budget_s:g} s spent: valid, maybe not minimal",
    )


def _prune(
    scorer: Scorer,
    history: History,
    chosen: list[int],
    margin: RankMargin,
    started: float,
    budget: float,
) -> tuple[list[int], int, bool]:
    """Drop events the set does not need (one at a time, each removal verified). Returns the
    set, the histories scored, and whether pruning finished (False: the budget ran out)."""
    evaluated = 0
    changed = True
    while changed and len(chosen) > 1 and time.perf_counter() - started < budget:
        changed = False
        trials = [[p for p in chosen if p != q] for q in chosen]
        margins = margin(scorer.scores(history, [without(len(history), t) for t in trials])).numpy()
        evaluated += len(trials)
        still = np.flatnonzero(margins < 0)
        if len(still):
            chosen = trials[int(still[np.argmin(margins[still])])]
            changed = True
    return chosen, evaluated, not changed or len(chosen) <= 1


@dataclass(frozen=True)
class Edit:
    """One hypothetical change: ``add`` an event, ``remove`` a position, or ``replace`` one."""

    kind: str  # "add" | "remove" | "replace"
    item: int = 0
    behavior: int = 0
    timestamp: int | None = None
    position: int | None = None
    value: float = 0.0


def apply_edits(history: History, edits: Sequence[Edit]) -> History:
    """The history after the edits (removals and replacements refer to original positions)."""
    items, behaviors = history.items.copy(), history.behaviors.copy()
    times, values = history.timestamps.copy(), history.values.copy()
    removed: list[int] = []
    added: list[tuple[int, int, int, float]] = []
    last_time = int(times[-1]) if len(times) else 0
    for edit in edits:
        position = edit.position if edit.position is not None else -1
        if edit.kind in ("remove", "replace") and not 0 <= position < len(history):
            where = f"0..{len(history) - 1}" if len(history) else "it is empty"
            raise InputError(
                f"{edit.kind}: position {edit.position} is not in the history ({where})"
            )
        if edit.kind == "remove":
            removed.append(position)
        elif edit.kind == "replace":
            items[edit.position], behaviors[edit.position] = edit.item, edit.behavior
        elif edit.kind == "add":
            last_time = edit.timestamp if edit.timestamp is not None else last_time + 1
            added.append((edit.item, edit.behavior, last_time, edit.value))
        else:
            raise ValueError(f"unknown edit kind {edit.kind!r}: add, remove or replace")
    keep = without(len(history), removed)
    edited = History(items[keep], behaviors[keep], times[keep], values[keep])
    return extend(edited, added)


def rank_biased_overlap(a: Sequence[int], b: Sequence[int], *, p: float = 0.9) -> float:
    """Rank-biased overlap of two top-k lists (Webber et al. 2010), extrapolated to depth k."""
    k = max(len(a), len(b))
    if k == 0:
        return 1.0
    total, seen_a, seen_b, overlap = 0.0, set(), set(), 0
    for d in range(1, k + 1):
        x, y = (a[d - 1] if d <= len(a) else None), (b[d - 1] if d <= len(b) else None)
        overlap += (
            (x is not None and x in seen_b)
            + (y is not None and y in seen_a)
            + (x is not None and x == y)
        )
        seen_a.add(x)
        seen_b.add(y)
        total += (overlap / d) * p ** (d - 1)
    return (1 - p) * total + (overlap / k) * p**k


@dataclass
class WhatIf:
    before: list[int]
    after: list[int]
    rank_changes: dict[int, tuple[int, int]] = field(default_factory=dict)  # item -> (old, new)
    jaccard: float = 1.0
    rbo: float = 1.0


def what_if(
    scorer: Scorer,
    history: History,
    edits: Sequence[Edit],
    *,
    k: int = 10,
    exclude_seen: bool = False,
) -> WhatIf:
    """New top-k after the edits, each listed item's rank before and after, and list churn.
    With ``exclude_seen`` each list leaves out the items of its own history (before: the
    history's, after: the edited history's)."""
    edited = apply_edits(history, edits)
    old = scorer.scores(history, [np.arange(len(history))])[0]
    new = scorer.scores(edited, [np.arange(len(edited))])[0]
    if exclude_seen:
        old, new = old.clone(), new.clone()
        old[torch.from_numpy(history.items)] = float("-inf")
        new[torch.from_numpy(edited.items)] = float("-inf")
    k = min(k, old.shape[-1] - 1)  # real items only, never the padding slot
    before = torch.topk(old, k).indices.tolist()
    after = torch.topk(new, k).indices.tolist()
    changes = {i: (rank_of(old, i), rank_of(new, i)) for i in dict.fromkeys(before + after)}
    union = set(before) | set(after)
    jaccard = len(set(before) & set(after)) / len(union) if union else 1.0
    return WhatIf(before, after, changes, jaccard, rank_biased_overlap(before, after))


def influential_actions(
    scorer: Scorer,
    history: History,
    *,
    behaviors: Sequence[int],
    candidates: int = 100,
    k: int = 10,
    top: int = 10,
    gap_s: int = 60,
) -> list[dict[str, Any]]:
    """Which next actions (one of the top ``candidates`` items x each behaviour) would change
    the user's top ``k`` the most; all ``candidates x len(behaviors)`` futures in one batch.

    Influence = 1 - Jaccard(top k now, top k after the action); ties broken by the total
    absolute rank movement of today's top k.
    """
    base = scorer.scores(history, [np.arange(len(history))])[0]
    k = min(k, base.shape[-1] - 1)  # real items only, never the padding slot
    now = torch.topk(base, k).indices
    items = torch.topk(base, min(candidates, int(torch.isfinite(base).sum()))).indices.tolist()
    when = (int(history.timestamps[-1]) if len(history) else 0) + gap_s
    futures = [(i, b) for i in items for b in behaviors]
    rows_scores = _batched_futures(scorer, history, futures, when)
    after = torch.topk(rows_scores, k, dim=1).indices
    overlap = (after[:, :, None] == now[None, None, :]).any(-1).sum(-1).float()
    churn = 1 - overlap / (2 * k - overlap)
    kept_scores = rows_scores.gather(1, now[None].expand(len(futures), -1))  # (F, k)
    ranks_now = (rows_scores[:, None, :] > kept_scores[:, :, None]).sum(-1)  # (F, k)
    movement = (ranks_now - torch.arange(k)[None]).abs().sum(-1).float()
    order = np.lexsort((-movement.numpy(), -churn.numpy()))[:top]
    return [
        {
            "item": futures[i][0],
            "behavior": futures[i][1],
            "churn": float(churn[i]),
            "rank_movement": float(movement[i]),
            "new_top": after[i].tolist(),
        }
        for i in order
    ]


def _batched_futures(
    scorer: Scorer, history: History, futures: list[tuple[int, int]], when: int
) -> torch.Tensor:
    """Scores after appending each (item, behaviour) at time ``when``: one batch of edits."""
    extra = [(i, b, when, 0.0) for i, b in futures]
    combined = extend(history, extra)
    n = len(history)
    rows = [np.concatenate([np.arange(n), [n + j]]) for j in range(len(futures))]
    return scorer.scores(combined, rows)
