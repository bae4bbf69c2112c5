"""Clean coded events into the canonical, time-ordered event table; every step is counted.

Order of the steps (each one's effect lands in ``stats.json``):

1. values: non-finite values (inf, nan text) become null (``values.nonfinite_to_null``);
2. exact duplicates (same user, item, behaviour, timestamp and value) are dropped, the first
   occurrence in file order kept (``dropped.duplicate``);
3. implicit-feedback threshold: rows whose value is below it are dropped
   (``dropped.below_threshold``); rows without a value are kept;
4. missing values filled by ``fill_value``: ``none`` keeps them null, ``zero``, ``mean`` or
   ``median`` (of the present values of the same behaviour type) or a number;
5. outliers: with ``clip_quantile=q`` values are clipped to the [q, 1-q] quantiles of their
   behaviour type (``values.clipped``);
6. k-core: users with fewer than ``min_user_events`` and items with fewer than
   ``min_item_events`` events are removed, repeated until nothing changes (a fixpoint);
7. order: by user, then timestamp, with ties kept in file order (a stable sort; breaking ties by
   item id inflates NDCG on MovieLens-1M by about 20%);
8. vocabularies: users and items indexed from 1 in order of first appearance in the file
   (0 is padding), behaviours indexed from 1 in order of first appearance.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from influrec.data.parsing import EncodedColumns
from influrec.errors import InputError

FILL_RULES = ("none", "zero", "mean", "median")


@dataclass(frozen=True)
class PrepareConfig:
    """Preprocessing options (see the module docstring for what each does)."""

    min_user_events: int = 0
    min_item_events: int = 0
    implicit_threshold: float | None = None
    fill_value: str = "none"
    clip_quantile: float | None = None
    dedupe: bool = True

    def __post_init__(self) -> None:
        for name, value in (
            ("min_user_events", self.min_user_events),
            ("min_item_events", self.min_item_events),
        ):
            if value < 0:
                raise InputError(f"{name} must be >= 0, got {value}", setting=name)
        if self.fill_value not in FILL_RULES:
            try:
                float(self.fill_value)
            except ValueError:
                raise InputError(
                    f"fill_value must be one of {', '.join(FILL_RULES)} or a number, "
                    f"got {self.fill_value!r}",
                    setting="fill_value",
                ) from None
        if self.clip_quantile is not None and not 0 < self.clip_quantile < 0.5:
            raise InputError(
                f"clip_quantile must be in (0, 0.5), got {self.clip_quantile}",
                setting="clip_quantile",
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CleanEvents:
    """Events after cleaning: positions into the input columns, ordered by user then time."""

    order: np.ndarray  # (N,) int64 indices into the EncodedColumns arrays
    value: np.ndarray  # (N,) float64 cleaned values (NaN = null), aligned with ``order``
    dropped: dict[str, int]
    value_stats: dict[str, int]
    kcore_iterations: int


def _drop(keep: np.ndarray, mask: np.ndarray, reason: str, dropped: dict[str, int]) -> None:
    newly = mask & keep
    if newly.any():
        dropped[reason] = dropped.get(reason, 0) + int(newly.sum())
    keep &= ~mask


def duplicate_mask(cols: EncodedColumns, value: np.ndarray) -> np.ndarray:
    """(N,) bool: True for every row that repeats an earlier row in all five fields.

    Duplicates share user and timestamp, so only rows in such tie groups (usually few) are
    compared on all fields.
    """
    n = len(cols.row)
    duplicate = np.zeros(n, bool)
    if n < 2:
        return duplicate
    order = np.lexsort((cols.row, cols.timestamp, cols.user))
    user, timestamp = cols.user[order], cols.timestamp[order]
    tie = (user[1:] == user[:-1]) & (timestamp[1:] == timestamp[:-1])
    del user, timestamp
    in_tie = np.zeros(n, bool)
    in_tie[1:] |= tie
    in_tie[:-1] |= tie
    rows = order[in_tie]
    del order
    if len(rows) == 0:
        return duplicate
    filled = np.where(np.isnan(value[rows]), -np.inf, value[rows])  # null equals null
    keys = (cols.user[rows], cols.timestamp[rows], cols.item[rows], cols.behavior[rows], filled)
    sub = np.lexsort((cols.row[rows], *reversed(keys)))
    same = np.ones(len(sub) - 1, bool)
    for key in keys:
        ordered = key[sub]
        same &= ordered[1:] == ordered[:-1]
    duplicate[rows[sub[1:][same]]] = True
    return duplicate


def kcore_mask(
    user: np.ndarray, item: np.ndarray, keep: np.ndarray, *, min_user: int, min_item: int
) -> tuple[np.ndarray, int, dict[str, int]]:
    """Iterate user/item minimum counts to a fixpoint. Returns (keep, iterations, dropped)."""
    keep = keep.copy()
    dropped: dict[str, int] = {}
    iterations = 0
    while min_user > 1 or min_item > 1:
        iterations += 1
        before = int(keep.sum())
        if min_user > 1:
            counts = np.bincount(user[keep], minlength=int(user.max(initial=0)) + 1)
            _drop(keep, counts[user] < min_user, "min_user_events", dropped)
        if min_item > 1:
            counts = np.bincount(item[keep], minlength=int(item.max(initial=0)) + 1)
            _drop(keep, counts[item] < min_item, "min_item_events", dropped)
        if int(keep.sum()) == before:
            break
    return keep, iterations, dropped


def _fill_and_clip(
    value: np.ndarray, behavior: np.ndarray, config: PrepareConfig, stats: dict[str, int]
) -> np.ndarray:
    value = value.copy()
    for code in np.unique(behavior):
        rows = behavior == code
        present = value[rows & ~np.isnan(value)]
        missing = rows & np.isnan(value)
        if config.fill_value != "none" and missing.any():
            fill = _fill_for(present, config.fill_value)
            if fill is not None:
                value[missing] = fill
                stats["filled"] += int(missing.sum())
        if config.clip_quantile is not None and len(present):
            low, high = np.quantile(present, [config.clip_quantile, 1 - config.clip_quantile])
            outside = rows & ((value < low) | (value > high))
            stats["clipped"] += int(outside.sum())
            value[rows] = np.clip(value[rows], low, high)
    return value


def _fill_for(present: np.ndarray, rule: str) -> float | None:
    if rule == "zero":
        return 0.0
    if rule in ("mean", "median"):
        return (
            None
            if not len(present)
            else float(np.mean(present) if rule == "mean" else np.median(present))
        )
    return float(rule)


def clean(cols: EncodedColumns, config: PrepareConfig) -> CleanEvents:
    """Run steps 1-7 on ``cols``. Pure: the input arrays are not modified."""
    value = cols.value.copy()
    nonfinite = np.isinf(value)
    value[nonfinite] = np.nan
    value_stats = {"nonfinite_to_null": int(nonfinite.sum()), "filled": 0, "clipped": 0}
    keep = np.ones(len(cols.row), bool)
    dropped: dict[str, int] = {}
    if config.dedupe:
        _drop(keep, duplicate_mask(cols, value), "duplicate", dropped)
    if config.implicit_threshold is not None:
        _drop(keep, value < config.implicit_threshold, "below_threshold", dropped)
    keep, iterations, kcore_dropped = kcore_mask(
        cols.user, cols.item, keep, min_user=config.min_user_events, min_item=config.min_item_events
    )
    dropped.update(kcore_dropped)
    kept = np.flatnonzero(keep)
    user_rank, _ = first_appearance_codes(cols.user[kept], cols.row[kept])
    order = kept[np.lexsort((cols.row[kept], cols.timestamp[kept], user_rank))]
    value = _fill_and_clip(value[order], cols.behavior[order], config, value_stats)
    return CleanEvents(order, value, dropped, value_stats, iterations)


def first_appearance_codes(codes: np.ndarray, row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Re-index ``codes`` densely from 1 in order of first appearance by ``row``.

    Returns (new codes (N,) int32, old code of each new index (M,) with new index i -> old[i-1]).
    """
    if len(codes) == 0:
        return np.zeros(0, np.int32), np.zeros(0, np.int64)
    unique, inverse = np.unique(codes, return_inverse=True)
    first_row = np.full(len(unique), np.iinfo(np.int64).max)
    np.minimum.at(first_row, inverse, row)
    rank = np.empty(len(unique), np.int64)
    rank[np.argsort(first_row, kind="stable")] = np.arange(len(unique))
    old_by_new = unique[np.argsort(first_row, kind="stable")]
    return (rank[inverse] + 1).astype(np.int32), old_by_new
