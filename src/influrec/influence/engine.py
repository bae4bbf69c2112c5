"""Score many edited versions of one history in a single batched forward pass.

An edited history is described by an index row into the (possibly extended) history's events:
deleting an event really removes it (the row skips it and everything after moves up), it is
not a zeroed embedding. Time-gap buckets are recomputed after every edit, since removing an
event changes the gap of the one that follows it. Only the last ``max_len`` events of a row
are seen by the model, exactly as at serving time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from influrec.data.sequences import GAP_PAD, gap_buckets
from influrec.inference import History
from influrec.models.transformer import BehaviorTransformer


@dataclass
class HistoryBatch:
    """Model inputs for B edited histories: left-padded (B, T) tensors."""

    items: torch.Tensor
    behaviors: torch.Tensor
    gaps: torch.Tensor
    values: torch.Tensor


def rows_to_batch(
    history: History, rows: Sequence[np.ndarray], *, max_len: int, time_buckets: int
) -> HistoryBatch:
    """Inputs for each row of event indices into ``history`` (each row in time order)."""
    length = max(1, min(max_len, max((len(r) for r in rows), default=1)))
    index = np.full((len(rows), length), -1, np.int64)
    for b, row in enumerate(rows):
        kept = row[-length:]
        if len(kept):
            index[b, length - len(kept) :] = kept
    valid = index >= 0
    safe = np.where(valid, index, 0)
    items = np.where(valid, history.items[safe] if len(history) else 0, 0)
    behaviors = np.where(valid, history.behaviors[safe] if len(history) else 0, 0)
    values = np.where(valid, history.values[safe] if len(history) else 0.0, 0.0).astype(np.float32)
    gaps = np.full_like(items, GAP_PAD)
    if time_buckets and len(history):
        first = valid & ~np.pad(valid, ((0, 0), (1, 0)))[:, :-1]
        gaps = np.where(valid, gap_buckets(history.timestamps[safe], first, time_buckets), GAP_PAD)
    return HistoryBatch(
        torch.from_numpy(items),
        torch.from_numpy(behaviors),
        torch.from_numpy(gaps),
        torch.from_numpy(values),
    )


class Scorer:
    """Next-item scores of edited histories under one model, in bounded batches (no gradients)."""

    def __init__(self, model: BehaviorTransformer, *, batch_size: int = 256) -> None:
        self.model, self.batch_size = model.eval(), batch_size

    @property
    def max_len(self) -> int:
        return self.model.config.max_len

    @torch.no_grad()
    def scores(self, history: History, rows: Sequence[np.ndarray]) -> torch.Tensor:
        """(len(rows), I + 1) scores after each edited history; padding column at -inf.

        Rows of equal length are batched together, so no batch needs padding and attention
        runs on the fused causal kernel.
        """
        lengths = np.array([min(len(r), self.max_len) for r in rows])
        order = np.argsort(lengths, kind="stable")
        out = torch.empty(len(rows), self.model.n_items + 1)
        for length in np.unique(lengths):
            same = order[lengths[order] == length]
            for begin in range(0, len(same), self.batch_size):
                chunk = same[begin : begin + self.batch_size]
                out[torch.from_numpy(chunk)] = self._score([rows[i] for i in chunk], history)
        return out

    def _score(self, rows: list[np.ndarray], history: History) -> torch.Tensor:
        config = self.model.config
        batch = rows_to_batch(
            history, rows, max_len=config.max_len, time_buckets=config.time_buckets
        )
        hidden = self.model(batch.items, batch.behaviors, batch.gaps, batch.values, last_only=True)[
            :, -1
        ]
        return self.model.item_scores(hidden).float()

    def window(self, history: History) -> np.ndarray:
        """Indices of the events the model sees (the last max_len)."""
        return np.arange(max(0, len(history) - self.max_len), len(history))


def without(n_events: int, removed: Sequence[int] | np.ndarray) -> np.ndarray:
    """Index row of a history of ``n_events`` with the ``removed`` positions deleted."""
    keep = np.ones(n_events, bool)
    keep[np.asarray(removed, dtype=np.int64)] = False
    return np.flatnonzero(keep)


def extend(history: History, events: Sequence[tuple[int, int, int, float]]) -> History:
    """A history with extra (item, behaviour, timestamp, value) events appended at the end."""
    if not events:
        return history
    items, behaviors, times, values = (np.array(c) for c in zip(*events, strict=True))
    return History(
        np.concatenate([history.items, items.astype(np.int64)]),
        np.concatenate([history.behaviors, behaviors.astype(np.int64)]),
        np.concatenate([history.timestamps, times.astype(np.int64)]),
        np.concatenate([history.values, values.astype(np.float32)]),
    )
