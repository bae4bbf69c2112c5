"""The service's event store as a prepared dataset, for training on what the service logged.

`export_store(store)` reads every stored event (or, with ``since``, those after a time) and
prepares them like `influrec data prepare` does (exact duplicates dropped, no k-core); with a
``base`` dataset it appends them to it instead, keeping the base's indices (see
:mod:`influrec.data.merge`). Erased users are left out altogether: their stored events, and
with a base their events there too (the base keeps their index under the id ``[erased N]``, so
the other codes keep their meaning). Item ids and behaviour names are kept as the service
stored them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from influrec.data import schema
from influrec.data.dataset import EventDataset, _dictionary, build_dataset, columns_from_table
from influrec.data.merge import append_events
from influrec.data.preprocess import PrepareConfig
from influrec.errors import InputError


class StoredEventLike(Protocol):
    """What export reads of one stored event (``serving.store.StoredEvent`` has it)."""

    @property
    def user_id(self) -> str: ...
    @property
    def item_id(self) -> str: ...
    @property
    def behavior(self) -> str: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def value(self) -> float | None: ...


class EventStore(Protocol):
    """What export reads of an event store (``serving.store.EventStore`` has it); declared
    here so the data layer does not import the service."""

    location: str  # where the events live, fit for a log line

    def all_events(self, *, since: int | None = None) -> Iterator[StoredEventLike]: ...

    def erased_among(self, users: Sequence[str]) -> set[str]: ...


@dataclass(frozen=True)
class Export:
    """What `export_store` wrote and left out."""

    dataset: EventDataset
    events_read: int  # stored events read (after ``since``)
    events_added: int  # events in the export that were not in the base
    erased_users: int  # users left out because they were erased
    time_span: tuple[int, int] | None  # (first, last) timestamp of the events read


def store_events(store: EventStore, *, since: int | None = None) -> pa.Table:
    """The store's events after ``since`` as a table of RAW_SCHEMA (``row``: arrival order)."""
    columns: dict[str, list] = {name: [] for name in schema.RAW_SCHEMA.names}
    for n, event in enumerate(store.all_events(since=since)):
        columns["user_id"].append(event.user_id)
        columns["item_id"].append(event.item_id)
        columns["behavior"].append(event.behavior)
        columns["timestamp"].append(event.timestamp)
        columns["value"].append(event.value)
        columns["row"].append(n)
    return pa.table(columns, schema=schema.RAW_SCHEMA)


def without_erased(store: EventStore, events: pa.Table) -> tuple[pa.Table, set[str]]:
    """``events`` without the rows of users the store has erased, and those users."""
    users = pc.unique(events.column("user_id")).to_pylist()
    erased = store.erased_among([str(u) for u in users])
    if not erased:
        return events, erased
    keep = pc.invert(pc.is_in(events.column("user_id"), pa.array(sorted(erased), pa.string())))
    return events.filter(keep), erased


def export_store(
    store: EventStore, *, since: int | None = None, base: EventDataset | None = None
) -> Export:
    """The store's events (after ``since``) as a prepared dataset, or appended to ``base``.

    Raises InputError when no event is left to export.
    """
    read = store_events(store, since=since)
    events, erased = without_erased(store, read)
    if base is not None:
        base_users = [str(u) for u in base.users.column("user_id").to_pylist()]
        erased |= store.erased_among(base_users)
        base = forget_users(base, erased)
    if events.num_rows == 0 and base is None:
        after = "" if since is None else f" after time {since}"
        raise InputError(
            f"{store.location}: no stored events{after} to export"
            + (f" ({read.num_rows} of erased users left out)" if read.num_rows else "")
        )
    times = read.column("timestamp").to_numpy()
    span = (int(times.min()), int(times.max())) if len(times) else None
    source = f"event store {store.location}"
    if base is None:
        columns = columns_from_table(events)
        dataset = build_dataset(columns, PrepareConfig(), read_stats={"source": source})
        added = dataset.events.num_rows
    else:
        appended = append_events(base, events, new_behaviors=True, source=source)
        dataset, added = appended.dataset, appended.events
    dataset.stats["export"] = {
        "since": since,
        "events_read": read.num_rows,
        "erased_users": len(erased),
    }
    return Export(dataset, read.num_rows, added, len(erased), span)


def forget_users(dataset: EventDataset, users: set[str]) -> EventDataset:
    """``dataset`` without the events of ``users``; each keeps its index under the id
    ``[erased N]`` so that the other users' codes keep their meaning."""
    ids = [str(u) for u in dataset.users.column("user_id").to_pylist()]
    gone = [n + 1 for n, user in enumerate(ids) if user in users]
    if not gone:
        return dataset
    keep = pc.invert(pc.is_in(dataset.events.column("user_idx"), pa.array(gone, pa.int32())))
    events = dataset.events.filter(keep)
    renamed = [f"[erased {n + 1}]" if user in users else user for n, user in enumerate(ids)]
    user_idx = events.column("user_idx").to_numpy().astype(np.int64)
    codes = _dictionary(user_idx, renamed, pa.int32())
    events = events.set_column(0, schema.EVENTS_SCHEMA.field("user_id"), codes)
    users_table = dataset.users.set_column(1, "user_id", pa.array(renamed, pa.string()))
    stats = {**dataset.stats, "events": events.num_rows}
    return EventDataset(
        events=events,
        users=users_table,
        items=dataset.items,
        behaviors=dataset.behaviors,
        stats=stats,
        ground_truth=None,
        item_text=dataset.item_text,
    )
