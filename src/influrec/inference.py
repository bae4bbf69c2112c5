"""Ask a trained run questions: a user's history, ad-hoc histories, top-K recommendations.

``Recommender.load(run_dir)`` is what the CLI, the influence engine and the service use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from influrec.data.dataset import EventDataset
from influrec.data.sequences import GAP_PAD, SequenceData, gap_buckets
from influrec.errors import InputError
from influrec.models.transformer import BehaviorTransformer
from influrec.training.checkpoint import load_run


@dataclass
class History:
    """One user's events in time order (vocabulary indices)."""

    items: np.ndarray  # (L,) int64 item_idx
    behaviors: np.ndarray  # (L,) int64 behavior_idx
    timestamps: np.ndarray  # (L,) int64 seconds
    values: np.ndarray  # (L,) float32, 0 where unknown

    def __len__(self) -> int:
        return len(self.items)


@dataclass
class Recommendation:
    rank: int  # 1-based
    item_idx: int
    item_id: str
    score: float


def history_tensors(
    histories: Sequence[History], *, max_len: int, time_buckets: int
) -> tuple[torch.Tensor, ...]:
    """Left-padded (B, T) items, behaviours, gap buckets and values of the last max_len events."""
    length = max(1, min(max_len, max(len(h) for h in histories)))
    out = [
        np.zeros((len(histories), length), dtype)
        for dtype in (np.int64, np.int64, np.int64, np.float32)
    ]
    for row, h in enumerate(histories):
        n = min(len(h), length)
        if n == 0:
            continue
        out[0][row, -n:], out[1][row, -n:] = h.items[-n:], h.behaviors[-n:]
        out[3][row, -n:] = h.values[-n:]
        if time_buckets:
            first = np.zeros(n, bool)
            first[0] = True
            out[2][row, -n:] = gap_buckets(h.timestamps[-n:], first, time_buckets)
    if not time_buckets:
        out[2][:] = GAP_PAD
    return tuple(torch.from_numpy(a) for a in out)


class Recommender:
    """A trained model with its vocabularies and the users' stored histories."""

    def __init__(
        self, model: BehaviorTransformer, dataset: EventDataset, info: dict[str, Any]
    ) -> None:
        self.model, self.dataset, self.info = model, dataset, info
        self.data = SequenceData.from_dataset(dataset)
        self.item_ids: list[str] = dataset.items.column("item_id").to_pylist()
        self.item_index = {item: i + 1 for i, item in enumerate(self.item_ids)}
        self.user_index = {
            u: i + 1 for i, u in enumerate(dataset.users.column("user_id").to_pylist())
        }
        self.behavior_index = {b: i for i, b in enumerate(dataset.behaviors) if i > 0}
        counts = np.bincount(self.data.item, minlength=self.data.n_items + 1).astype(np.float32)
        counts[0] = -np.inf
        self.popularity = counts

    @classmethod
    def load(cls, run_dir: Path) -> Recommender:
        model, info, dataset = load_run(run_dir)
        return cls(model, dataset, info)

    def user_history(self, user_id: str) -> History:
        """All stored events of a user (raises InputError for an unknown user)."""
        u = self.user_index.get(str(user_id))
        if u is None:
            raise InputError(
                f"unknown user {user_id!r}; use --history FILE.json or --cold-start popular"
            )
        span = slice(self.data.user_start[u], self.data.user_end[u])
        d = self.data
        return History(d.item[span], d.behavior[span], d.timestamp[span], d.value[span])

    def history_from_records(
        self, records: Sequence[Mapping[str, Any]]
    ) -> tuple[History, list[str]]:
        """A history from dicts with ``item`` and optional ``behavior``, ``timestamp``, ``value``.

        Events with unknown items or behaviours are left out and reported in the second value.
        """
        kept: list[tuple[int, int, int, float]] = []
        unknown: list[str] = []
        default_behavior = next(iter(self.behavior_index.values()))
        for i, record in enumerate(records):
            if not isinstance(record, Mapping) or "item" not in record:
                raise InputError(
                    f"history event {i}: expected an object with an 'item' field, got {record!r}"
                )
            item = self.item_index.get(str(record["item"]))
            behavior = (
                self.behavior_index.get(str(record["behavior"]))
                if "behavior" in record
                else default_behavior
            )
            if item is None or behavior is None:
                what = "item" if item is None else "behavior"
                unknown.append(f"event {i}: unknown {what} {record.get(what)!r}")
                continue
            kept.append(
                (item, behavior, int(record.get("timestamp", i)), float(record.get("value") or 0.0))
            )
        columns = list(zip(*kept, strict=True)) if kept else [(), (), (), ()]
        history = History(
            np.array(columns[0], np.int64),
            np.array(columns[1], np.int64),
            np.array(columns[2], np.int64),
            np.array(columns[3], np.float32),
        )
        return history, unknown

    @torch.no_grad()
    def scores(self, histories: Sequence[History]) -> torch.Tensor:
        """Next-item scores (B, n_items + 1) after each history; index 0 is -inf."""
        config = self.model.config
        items, behaviors, gaps, values = history_tensors(
            histories, max_len=config.max_len, time_buckets=config.time_buckets
        )
        hidden = self.model(items, behaviors, gaps, values, last_only=True)[:, -1]
        return self.model.item_scores(hidden)

    def top_k(
        self, scores: torch.Tensor, *, k: int, exclude: np.ndarray | None = None
    ) -> list[Recommendation]:
        """Top ``k`` items of one score row (I + 1,), optionally excluding item indices."""
        scores = scores.clone()
        if exclude is not None and len(exclude):
            scores[torch.from_numpy(np.unique(exclude))] = float("-inf")
        k = min(k, int(torch.isfinite(scores).sum()))
        values, indices = torch.topk(scores, k)
        return [
            Recommendation(rank + 1, int(i), self.item_ids[int(i) - 1], float(v))
            for rank, (v, i) in enumerate(zip(values, indices, strict=True))
        ]

    def recommend(
        self, history: History, *, k: int = 10, exclude_seen: bool = False
    ) -> list[Recommendation]:
        if len(history) == 0:
            return self.popular(k=k)
        scores = self.scores([history])[0]
        return self.top_k(scores, k=k, exclude=history.items if exclude_seen else None)

    def popular(self, *, k: int = 10) -> list[Recommendation]:
        """The most frequent items of the training data (the cold-start answer)."""
        return self.top_k(torch.from_numpy(self.popularity), k=k)
