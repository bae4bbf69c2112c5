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

from influrec.data.batching import batch_histories
from influrec.data.dataset import EventDataset
from influrec.data.history import History
from influrec.data.item_names import ItemNames
from influrec.data.schema import MAX_ABS_VALUE
from influrec.data.sequences import SequenceData
from influrec.data.times import MAX_SECONDS, TIME_RANGE
from influrec.errors import InputError
from influrec.models.protocol import SequenceModel, score_last
from influrec.run import RunInfo, load_run


@dataclass
class Recommendation:
    rank: int  # 1-based
    item_idx: int
    item_id: str
    score: float
    new_item: bool = False  # no training event: scored by its content alone (item text)


EXCLUDE_SEEN = True
"""THE default for items already in a history, defined here only: recommendations (and the
explanations of them) leave those items out, so a user is shown new items. The library
(:meth:`Recommender.recommend`, ``influence.api.explain``), the CLI and the service all
default to it; the evaluation protocol reports both conventions."""

# Event times: epoch seconds, the range every reader accepts (1970-01-01 to 2262-04-11).
MIN_TIME, MAX_TIME = 0, MAX_SECONDS
MAX_VALUE = MAX_ABS_VALUE  # |value| bound, the same as the readers' (see data.schema)


def clamp_k(k: int, n_items: int, *, name: str = "k") -> int:
    """``k`` limited to the ``n_items`` real items: a top-k list never holds padding.

    Raises InputError when ``k`` is not a whole number of at least 1.
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise InputError(f"{name} must be a whole number of at least 1, got {k!r}")
    return min(int(k), n_items)


def event_time(raw: Any, *, default: int, where: str) -> int:
    """An event's ``timestamp`` field as epoch seconds (``None`` -> ``default``)."""
    if raw is None:
        return default
    whole = int(raw) if isinstance(raw, float) and raw.is_integer() else raw
    if isinstance(whole, bool) or not isinstance(whole, int) or not MIN_TIME <= whole <= MAX_TIME:
        shown = repr(raw) if len(repr(raw)) <= 40 else repr(raw)[:40] + "..."
        raise InputError(
            f"{where}: timestamp must be whole epoch seconds between {MIN_TIME} and "
            f"{MAX_TIME} ({TIME_RANGE}), got {shown}"
        )
    return whole


def event_value(raw: Any, *, where: str) -> float:
    """An event's ``value`` field (rating, price...) as a finite float32 (``None`` -> 0.0)."""
    if raw is None:
        return 0.0
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not abs(raw) <= MAX_VALUE:
        raise InputError(
            f"{where}: value must be a finite number of magnitude at most {MAX_VALUE:.0e} "
            f"(or null), got {raw!r}"
        )
    return float(raw)


def check_finite(history: History) -> None:
    """Raise InputError unless every value of ``history`` is finite and within MAX_VALUE."""
    values = np.asarray(history.values, np.float64)
    bad = np.flatnonzero(~(np.abs(values) <= MAX_VALUE))
    if len(bad):
        raise InputError(
            f"event {int(bad[0])}: value {float(values[bad[0]])!r} is not a finite number of "
            f"magnitude at most {MAX_VALUE:.0e}"
        )


class Recommender:
    """A trained model with its vocabularies and the users' stored histories."""

    def __init__(self, model: SequenceModel, dataset: EventDataset, info: RunInfo) -> None:
        self.model, self.dataset, self.info = model, dataset, info
        self.data = SequenceData.from_dataset(dataset)
        self.item_ids: list[str] = dataset.items.column("item_id").to_pylist()
        self.item_index = {item: i + 1 for i, item in enumerate(self.item_ids)}
        self.names = ItemNames.from_items(dataset.items)
        self.user_index = {
            u: i + 1 for i, u in enumerate(dataset.users.column("user_id").to_pylist())
        }
        self.behavior_index = {b: i for i, b in enumerate(dataset.behaviors) if i > 0}
        counts = np.bincount(self.data.item, minlength=self.data.n_items + 1).astype(np.float32)
        counts[0] = -np.inf
        self.popularity = counts

    @classmethod
    def load(cls, run_dir: Path | str) -> Recommender:
        model, info, dataset = load_run(Path(run_dir))
        return cls(model, dataset, info)

    def user_history(self, user_id: str) -> History:
        """All stored events of a user (raises InputError for an unknown user)."""
        u = self.user_index.get(str(user_id))
        if u is None:
            raise InputError(f"unknown user {user_id!r}: not in the run's dataset")
        span = slice(self.data.user_start[u], self.data.user_end[u])
        d = self.data
        return History(d.item[span], d.behavior[span], d.timestamp[span], d.value[span])

    def history_from_records(
        self, records: Sequence[Mapping[str, Any]]
    ) -> tuple[History, list[str]]:
        """A history from dicts with ``item`` and optional ``behavior``, ``timestamp``, ``value``.

        Events with unknown items or behaviours are left out and reported in the second value.
        A malformed event (no item, a time that is not epoch seconds, a value that is not a
        finite number) raises :class:`InputError` naming the event and the field.
        """
        kept: list[tuple[int, int, int, float]] = []
        unknown: list[str] = []
        default_behavior = next(iter(self.behavior_index.values()))
        given = False  # has any event so far given its time?
        for i, record in enumerate(records):
            if not isinstance(record, Mapping) or "item" not in record:
                raise InputError(
                    f"history event {i}: expected an object with an 'item' field, got {record!r}"
                )
            # no time: the previous event's once some event had one, else the position
            given = given or record.get("timestamp") is not None
            default = kept[-1][2] if kept and given else i
            where = f"history event {i}"
            timestamp = event_time(record.get("timestamp"), default=default, where=where)
            value = event_value(record.get("value"), where=where)
            item = self.item_index.get(str(record["item"]))
            behavior = (
                self.behavior_index.get(str(record["behavior"]))
                if record.get("behavior") is not None
                else default_behavior
            )
            if item is None or behavior is None:
                what = "item" if item is None else "behavior"
                unknown.append(f"event {i}: unknown {what} {record.get(what)!r}")
                continue
            kept.append((item, behavior, timestamp, value))
        columns = list(zip(*kept, strict=True)) if kept else [(), (), (), ()]
        history = History(
            np.array(columns[0], np.int64),
            np.array(columns[1], np.int64),
            np.array(columns[2], np.int64),
            np.array(columns[3], np.float32),
        )
        return history, unknown

    def item_title(self, item: str | int) -> str | None:
        """The title or name of an item (its id, or its index 1..I), ``None`` when it has
        none (see :class:`~influrec.data.item_names.ItemNames`)."""
        return self.names.title(item if isinstance(item, str) else self.item_ids[int(item) - 1])

    def item_label(self, item: str | int) -> str:
        """What to show for an item (its id, or its index 1..I): ``Scream (1996)``, or the id
        when the item table names none."""
        return self.names.label(item if isinstance(item, str) else self.item_ids[int(item) - 1])

    @property
    def n_users(self) -> int:
        """Users of the training data."""
        return len(self.user_index)

    @property
    def n_items(self) -> int:
        """Real items in the catalogue (index 0, the padding slot, is not one)."""
        return len(self.item_ids)

    @torch.no_grad()
    def scores(self, histories: Sequence[History]) -> torch.Tensor:
        """Next-item scores (B, n_items + 1) after each history; index 0 is -inf."""
        for h in histories:
            check_finite(h)
        config = self.model.config
        batch = batch_histories(histories, max_len=config.max_len, time_buckets=config.time_buckets)
        return score_last(self.model, *batch.inputs)

    def top_k(
        self, scores: torch.Tensor, *, k: int, exclude: np.ndarray | None = None
    ) -> list[Recommendation]:
        """Top ``k`` items of one score row (I + 1,), optionally excluding item indices.

        ``k`` is clamped to the real items left (never the padding slot, never an excluded item).
        """
        k = clamp_k(k, self.n_items)
        scores = scores.clone()
        scores[0] = float("-inf")
        if exclude is not None and len(exclude):
            scores[torch.from_numpy(np.unique(exclude))] = float("-inf")
        k = min(k, int(torch.isfinite(scores).sum()))
        values, indices = torch.topk(scores, k)
        new = self.new_items
        return [
            Recommendation(
                rank + 1,
                int(i),
                self.item_ids[int(i) - 1],
                float(v),
                new_item=bool(new is not None and new[int(i)]),
            )
            for rank, (v, i) in enumerate(zip(values, indices, strict=True))
        ]

    @property
    def new_items(self) -> torch.Tensor | None:
        """(I + 1,) bool: items without any training event, which a model with item text
        scores by their content alone; None for a model without item text."""
        cold = getattr(self.model, "cold_items", None)
        return cold if isinstance(cold, torch.Tensor) else None

    def recommend(
        self, history: History, *, k: int = 10, exclude_seen: bool = EXCLUDE_SEEN
    ) -> list[Recommendation]:
        """The top ``k`` items after ``history``: without the items already in it unless
        ``exclude_seen`` is False (:data:`EXCLUDE_SEEN`); fewer when fewer items are left.
        An empty history gets the cold-start policy (:meth:`cold_start_scores`)."""
        k = clamp_k(k, self.n_items)
        if len(history) == 0:
            return self.popular(k=k)
        scores = self.scores([history])[0]
        return self.top_k(scores, k=k, exclude=history.items if exclude_seen else None)

    def popular(self, *, k: int = 10) -> list[Recommendation]:
        """The cold-start answer: the top ``k`` of :meth:`cold_start_scores`."""
        return self.top_k(self.cold_start_scores(), k=k)

    def cold_start_scores(self) -> torch.Tensor:
        """THE cold-start policy, defined here only: a history with no (usable) event is scored
        by how often each item occurs in the training data, never by the model's output for an
        empty sequence (it never trained on one). :meth:`recommend`, the influence questions'
        starting point (``influence.api.whatif`` / ``influential_actions``), the CLI and the
        service all go through it. (I + 1,) counts; index 0 (padding) is -inf."""
        return torch.from_numpy(self.popularity.copy())
