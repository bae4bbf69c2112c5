"""Behaviour sequences as flat arrays, and the padded tensors a sequence model reads.

A prepared dataset is sorted by user then time, so each user's events are one contiguous slice
of the flat arrays. A *window* is a slice ``[start, end)`` of one user's events; windows are
gathered into left-padded (B, T) tensors by :func:`influrec.data.batching.batch_windows`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from influrec.data.dataset import EventDataset


@dataclass
class SequenceData:
    """Flat per-event arrays of a dataset, with each user's slice.

    ``user_start[u]``/``user_end[u]`` bound user ``u``'s events (u = user_idx; index 0 unused).
    """

    item: np.ndarray  # (N,) int64 item_idx (1..n_items)
    behavior: np.ndarray  # (N,) int64 behavior_idx (1..n_behaviors)
    timestamp: np.ndarray  # (N,) int64 seconds
    value: np.ndarray  # (N,) float32, 0 where null
    has_value: np.ndarray  # (N,) bool, False where null
    user: np.ndarray  # (N,) int64 user_idx
    user_start: np.ndarray  # (U+1,) int64
    user_end: np.ndarray  # (U+1,) int64
    n_items: int
    n_behaviors: int

    @classmethod
    def from_dataset(cls, dataset: EventDataset) -> SequenceData:
        user = dataset.column("user_idx").astype(np.int64)
        counts = np.bincount(user, minlength=dataset.n_users + 1)
        user_end = np.cumsum(counts)
        value = dataset.column("value")
        return cls(
            item=dataset.column("item_idx").astype(np.int64),
            behavior=dataset.column("behavior_idx").astype(np.int64),
            timestamp=dataset.column("timestamp").astype(np.int64),
            value=np.nan_to_num(value, nan=0.0).astype(np.float32),
            has_value=~np.isnan(value),
            user=user,
            user_start=user_end - counts,
            user_end=user_end,
            n_items=dataset.n_items,
            n_behaviors=len(dataset.behaviors) - 1,
        )

    def __len__(self) -> int:
        return len(self.item)


def training_windows(
    data: SequenceData, train_targets: np.ndarray, *, max_len: int
) -> tuple[np.ndarray, np.ndarray]:
    """Cover every training target exactly once with input windows of at most ``max_len`` events.

    A target at event ``p`` is predicted from the window's events before it; a user's first
    event has no history and is never a target. Windows are taken from the end of each user's
    run of training targets backwards, so the most recent ones have full context.
    Returns (starts, ends) of the input windows; targets are ``positions + 1``.
    """
    is_target = np.zeros(len(data) + 1, bool)
    is_target[train_targets] = True
    is_target[data.user_start[1:][data.user_end[1:] > data.user_start[1:]]] = False
    idx = np.flatnonzero(is_target[:-1])
    if len(idx) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    # runs of consecutive targets within one user
    breaks = np.r_[True, (np.diff(idx) != 1) | (data.user[idx[1:]] != data.user[idx[:-1]])]
    run_id = np.cumsum(breaks) - 1
    run_end = np.zeros(run_id[-1] + 1, np.int64)
    np.maximum.at(run_end, run_id, idx + 1)
    from_end = run_end[run_id] - 1 - idx  # 0 for the run's last target
    chunk_last = idx[from_end % max_len == 0]  # the last target of each window
    chunk_run = run_id[from_end % max_len == 0]
    run_start = np.full(len(run_end), np.iinfo(np.int64).max)
    np.minimum.at(run_start, run_id, idx)
    first_target = np.maximum(chunk_last - max_len + 1, run_start[chunk_run])
    ends = chunk_last  # inputs end just before the last target ... [first-1, last)
    starts = first_target - 1
    return starts.astype(np.int64), ends.astype(np.int64)


def prefix_windows(
    data: SequenceData, train_targets: np.ndarray, *, max_len: int
) -> tuple[np.ndarray, np.ndarray]:
    """One input window per training target (each user's first event excepted): the user's
    last ``max_len`` events before it (:func:`history_windows`), so the window's last position
    predicts the target, as a test-time query does. Returns (starts, ends), ends = targets."""
    targets = np.setdiff1d(train_targets, data.user_start[1:])
    return history_windows(data, targets, max_len=max_len)


def history_windows(
    data: SequenceData, targets: np.ndarray, *, max_len: int
) -> tuple[np.ndarray, np.ndarray]:
    """Input windows predicting each target event: its user's last ``max_len`` earlier events."""
    start = data.user_start[data.user[targets]]
    return np.maximum(start, targets - max_len), targets.astype(np.int64)


def seen_items_mask(data: SequenceData, targets: np.ndarray) -> torch.Tensor:
    """(B, n_items + 1) bool: items the user interacted with before each target (whole history)."""
    start = data.user_start[data.user[targets]]
    lengths = targets - start
    rows = np.repeat(np.arange(len(targets)), lengths)
    offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    events = np.repeat(start, lengths) + offsets
    mask = torch.zeros(len(targets), data.n_items + 1, dtype=torch.bool)
    mask[torch.from_numpy(rows), torch.from_numpy(data.item[events])] = True
    return mask
