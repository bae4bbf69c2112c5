"""THE left-padding batcher: events gathered into the (B, T) tensors a sequence model reads.

Training windows over a dataset, the histories a recommender is asked about and the edited
histories influence scores all become one :class:`SequenceBatch` through :func:`left_pad`;
they differ only in the index rows they give it (:func:`batch_windows`, :func:`batch_histories`,
:func:`batch_rows`). A row is left-padded, so its latest event is in the last column, and its
time-gap buckets are computed from the events it keeps: deleting an event changes the gap of
the one after it, and the first event of a row has no previous one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from influrec.data.history import History
from influrec.data.sequences import SequenceData

GAP_PAD, GAP_FIRST = 0, 1  # gap bucket ids: padding, first event of a row (no previous event)


def gap_buckets(timestamp: np.ndarray, first: np.ndarray, n_buckets: int) -> np.ndarray:
    """Log2-scale bucket of the time since the previous event.

    timestamp (..., T) seconds; first (..., T) bool marks events with no previous one.
    Buckets: 1 = first event, 2 + min(floor(log2(gap + 1)), n_buckets - 3) otherwise.
    """
    gap = np.diff(timestamp, axis=-1, prepend=timestamp[..., :1]).clip(min=0)
    bucket = 2 + np.minimum(np.floor(np.log2(gap + 1.0)).astype(np.int64), max(n_buckets - 3, 0))
    return np.where(first, GAP_FIRST, bucket)


@dataclass(frozen=True)
class SequenceBatch:
    """Left-padded model inputs for B rows of T events (0 = padding in every id tensor)."""

    items: torch.Tensor  # (B, T) int64 item_idx
    behaviors: torch.Tensor  # (B, T) int64 behavior_idx
    gaps: torch.Tensor  # (B, T) int64 gap buckets (all GAP_PAD when time buckets are off)
    values: torch.Tensor  # (B, T) float32, 0 where unknown
    positions: np.ndarray  # (B, T) int64 index of each slot's event in its source, -1 = padding

    @property
    def inputs(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(items, behaviors, gaps, values): a sequence model's arguments, in order."""
        return self.items, self.behaviors, self.gaps, self.values

    @property
    def valid(self) -> np.ndarray:
        """(B, T) bool: the slots that hold an event."""
        return self.positions >= 0

    @property
    def targets(self) -> np.ndarray:
        """(N,) int64 the event each real slot predicts (the next one in the source), row by
        row: the training targets of a batch of :func:`batch_windows`."""
        return self.positions[self.valid] + 1

    def to(self, device: torch.device) -> SequenceBatch:
        """The same batch with its tensors on ``device`` (positions stay a numpy array)."""
        items, behaviors, gaps, values = (
            t.to(device) for t in (self.items, self.behaviors, self.gaps, self.values)
        )
        return SequenceBatch(items, behaviors, gaps, values, self.positions)


def left_pad(events: History, index: np.ndarray, *, time_buckets: int) -> SequenceBatch:
    """The batch whose slot (b, t) holds event ``index[b, t]`` of ``events`` (-1: padding).

    index (B, T) int64, each row's events in time order after its padding. ``time_buckets``
    0 turns gap buckets off (every gap is GAP_PAD).
    """
    valid = index >= 0
    if len(events) == 0:  # only padding: gather from one dummy event
        events = History(*(np.zeros(1, d) for d in (np.int64, np.int64, np.int64, np.float32)))
    safe = np.where(valid, index, 0)
    items = np.where(valid, events.items[safe], 0).astype(np.int64)
    behaviors = np.where(valid, events.behaviors[safe], 0).astype(np.int64)
    values = np.where(valid, events.values[safe], 0.0).astype(np.float32)
    gaps = np.full_like(items, GAP_PAD)
    if time_buckets > 0:
        first = valid & ~np.pad(valid, ((0, 0), (1, 0)))[:, :-1]
        gaps = np.where(valid, gap_buckets(events.timestamps[safe], first, time_buckets), GAP_PAD)
    return SequenceBatch(
        items=torch.from_numpy(items),
        behaviors=torch.from_numpy(behaviors),
        gaps=torch.from_numpy(gaps),
        values=torch.from_numpy(values),
        positions=index,
    )


def row_index(rows: Sequence[np.ndarray], *, max_len: int) -> np.ndarray:
    """(B, T) left-padded index of the last ``max_len`` entries of each row (-1: padding);
    T = the longest kept row, at least 1."""
    length = max(1, min(max_len, max((len(r) for r in rows), default=1)))
    index = np.full((len(rows), length), -1, np.int64)
    for b, row in enumerate(rows):
        kept = row[-length:]
        if len(kept):
            index[b, length - len(kept) :] = kept
    return index


def batch_windows(
    data: SequenceData, starts: np.ndarray, ends: np.ndarray, *, time_buckets: int = 0
) -> SequenceBatch:
    """Windows ``[starts[b], ends[b])`` of a dataset's events (positions index ``data``).

    starts, ends (B,) int64 with ends > starts; T = max(ends - starts).
    """
    length = int((ends - starts).max())
    index = ends[:, None] - length + np.arange(length)[None, :]  # (B, T)
    index = np.where(index >= starts[:, None], index, -1)
    events = History(data.item, data.behavior, data.timestamp, data.value)
    return left_pad(events, index, time_buckets=time_buckets)


def batch_rows(
    history: History, rows: Sequence[np.ndarray], *, max_len: int, time_buckets: int
) -> SequenceBatch:
    """Edited versions of one history: each row lists the indices of the events it keeps, in
    time order; only its last ``max_len`` are seen (positions index ``history``)."""
    return left_pad(history, row_index(rows, max_len=max_len), time_buckets=time_buckets)


def batch_histories(
    histories: Sequence[History], *, max_len: int, time_buckets: int
) -> SequenceBatch:
    """The last ``max_len`` events of each history (positions index each row's history)."""
    kept = [min(len(h), max_len) for h in histories]
    starts = np.cumsum([0, *kept])[:-1]
    index = row_index(
        [s + np.arange(n) for s, n in zip(starts, kept, strict=True)], max_len=max_len
    )
    columns = (
        np.concatenate(
            [getattr(h, name)[len(h) - n :] for h, n in zip(histories, kept, strict=True)]
        )
        for name in ("items", "behaviors", "timestamps", "values")
    )
    batch = left_pad(History(*columns), index, time_buckets=time_buckets)
    dropped = np.array([len(h) for h in histories]) - kept  # events before each row's window
    own = np.where(index >= 0, index - (starts - dropped)[:, None], -1)
    return SequenceBatch(batch.items, batch.behaviors, batch.gaps, batch.values, own)
