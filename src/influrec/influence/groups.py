"""Influence of groups of events: by behaviour type, by time window or by item category.

* :func:`leave_group_out`: effect of deleting all events of one group at once;
* :func:`group_shapley`: exact Shapley values of the groups, from all 2^G coalitions scored in
  one batch (G <= 6), so the group effects add up to f(all) - f(none) exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from math import factorial

import numpy as np

from influrec.data.history import History
from influrec.influence.engine import Scorer
from influrec.influence.measurement import Measurement

MAX_GROUPS = 6
TIME_WINDOWS = (
    (3600, "last hour"),
    (86400, "last day"),
    (7 * 86400, "last week"),
    (30 * 86400, "last 30 days"),
)


@dataclass
class GroupEffects:
    measurement: str
    value: float  # f(all events)
    empty_value: float  # f(no event of any group)
    groups: list[str]
    sizes: list[int]
    leave_group_out: list[float]  # f(all) - f(all without the group)
    shapley: list[float]  # exact; sums to value - empty_value


def behavior_groups(history: History, names: list[str]) -> dict[str, np.ndarray]:
    """Positions of each behaviour type present in the history (names[code] = label)."""
    return {
        names[int(b)]: np.flatnonzero(history.behaviors == b) for b in np.unique(history.behaviors)
    }


def time_groups(history: History) -> dict[str, np.ndarray]:
    """Positions by age relative to the last event: last hour, day, week, 30 days, older."""
    age = int(history.timestamps[-1]) - history.timestamps if len(history) else history.timestamps
    groups: dict[str, np.ndarray] = {}
    lower = -1
    for limit, label in TIME_WINDOWS:
        groups[label] = np.flatnonzero((age > lower) & (age <= limit))
        lower = limit
    groups["older"] = np.flatnonzero(age > lower)
    return {k: v for k, v in groups.items() if len(v)}


NO_CATEGORY = "no category"


@dataclass(frozen=True)
class GroupContext:
    """What groupings may read beyond the history."""

    behaviors: list[str]  # behaviour names by code (0 is padding)
    categories: dict[int, str] = field(default_factory=dict)  # item_idx -> its category


def category_groups(history: History, context: GroupContext) -> dict[str, np.ndarray]:
    """Positions by the item's category: the MAX_GROUPS - 1 most frequent categories of the
    history (ties by name), the rest together as "other categories"."""
    labels = np.array([context.categories.get(int(i), NO_CATEGORY) for i in history.items])
    names, counts = np.unique(labels, return_counts=True)
    ranked = [str(n) for _, n in sorted(zip(-counts, names, strict=True))]
    kept = ranked if len(ranked) <= MAX_GROUPS else ranked[: MAX_GROUPS - 1]
    groups = {name: np.flatnonzero(labels == name) for name in kept}
    rest = np.flatnonzero(~np.isin(labels, kept))
    if len(rest):
        groups["other categories"] = rest
    return groups


GROUPINGS: dict[str, Callable[[History, GroupContext], dict[str, np.ndarray]]] = {
    "behavior": lambda history, context: behavior_groups(history, context.behaviors),
    "time": lambda history, _context: time_groups(history),
    "category": category_groups,
}
"""How events can be grouped -> positions of each group, given the history and its context;
the one list the CLI's and the library's choices come from."""


def group_effects(
    scorer: Scorer, history: History, measurement: Measurement, groups: dict[str, np.ndarray]
) -> GroupEffects:
    """Leave-group-out and exact group Shapley values of ``measurement``."""
    return group_effects_many(scorer, history, [measurement], groups)[0]


def group_effects_many(
    scorer: Scorer,
    history: History,
    measurements: Sequence[Measurement],
    groups: dict[str, np.ndarray],
) -> list[GroupEffects]:
    """:func:`group_effects` of each of ``measurements``, from one scoring of the 2^G
    coalitions (they do not depend on what is measured)."""
    names = list(groups)
    if not 0 < len(names) <= MAX_GROUPS:
        raise ValueError(f"need 1..{MAX_GROUPS} non-empty groups, got {len(names)}")
    member = np.full(len(history), -1)
    for g, name in enumerate(names):
        member[groups[name]] = g
    outside = np.flatnonzero(member < 0)  # events in no group stay in every coalition
    coalitions = [
        c for size in range(len(names) + 1) for c in combinations(range(len(names)), size)
    ]
    rows = [
        np.sort(np.concatenate([outside, *[groups[names[g]] for g in c]])).astype(np.int64)
        for c in coalitions
    ]
    scores = scorer.scores(history, rows)
    return [
        _effects(
            measurement.name,
            names,
            [len(groups[k]) for k in names],
            dict(zip(coalitions, measurement(scores).double().tolist(), strict=True)),
        )
        for measurement in measurements
    ]


def _effects(
    measured: str, names: list[str], sizes: list[int], values: dict[tuple[int, ...], float]
) -> GroupEffects:
    """Leave-group-out and exact Shapley values from the measurement of every coalition."""
    everyone = tuple(range(len(names)))
    n = len(names)
    shapley = []
    for g in range(n):
        total = 0.0
        for c, v in values.items():
            if g in c:
                continue
            weight = factorial(len(c)) * factorial(n - len(c) - 1) / factorial(n)
            total += weight * (values[tuple(sorted((*c, g)))] - v)
        shapley.append(total)
    lgo = [values[everyone] - values[tuple(x for x in everyone if x != g)] for g in range(n)]
    return GroupEffects(measured, values[everyone], values[()], names, sizes, lgo, shapley)
