"""New events appended to a prepared dataset, its vocabularies kept and grown at the end.

`append_events(base, new)` keeps every index of ``base`` (user, item and behaviour codes mean
what they meant, so a model trained on ``base`` still reads the result) and gives users and items
first seen in ``new`` the next indices, in the order they first appear. An event already in
``base`` (same user, item, behaviour and time) is not added twice, so appending an export that
overlaps the base, or the same export twice, adds nothing. New items take the metadata columns
of ``new`` where it has them (a prepared dataset's items table) and null elsewhere; their text
vectors are zero (no text) unless ``new`` carries vectors of the same size.

``new`` events are taken as they are: the base's prepare settings (k-core, value filling and
clipping) are not applied to them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from influrec.data import schema
from influrec.data.dataset import EventDataset, _dictionary, _time_range
from influrec.data.item_text import ItemText
from influrec.errors import InputError


@dataclass(frozen=True)
class Appended:
    """What `append_events` did."""

    dataset: EventDataset  # the base with the new events
    events: int  # events added (duplicates of base events left out)
    new_users: int
    new_items: int
    time_span: tuple[int, int] | None  # (first, last) timestamp of the events added
    added: np.ndarray  # (events,) positions of the added events in the result's event table


def _codes(
    ids: np.ndarray, known: list[str]
) -> tuple[np.ndarray, list[str]]:  # (N,) 1-based codes, the new tokens
    index = {token: n + 1 for n, token in enumerate(known)}
    fresh: list[str] = []
    codes = np.empty(len(ids), np.int64)
    for n, token in enumerate(ids):
        code = index.get(token)
        if code is None:
            code = index[token] = len(index) + 1
            fresh.append(token)
        codes[n] = code
    return codes, fresh


def _tokens(table: pa.Table, column: str) -> list[str]:
    return [str(v) for v in table.column(column).to_pylist()]


def append_events(
    base: EventDataset,
    new: pa.Table,
    *,
    new_items_meta: pa.Table | None = None,
    new_item_text: ItemText | None = None,
    new_behaviors: bool = False,
    source: str | None = None,
) -> Appended:
    """``base`` with the events of ``new`` (columns of :data:`~influrec.data.schema.RAW_SCHEMA`).

    Raises InputError when ``new`` uses a behaviour ``base`` does not know, unless
    ``new_behaviors`` (a model trained on ``base`` has no embedding for it).
    """
    order = np.lexsort((new.column("row").to_numpy(), new.column("timestamp").to_numpy()))
    new = new.take(pa.array(order))
    behaviors = base.behaviors[1:]
    names = np.array(_tokens(new, "behavior"), dtype=object)
    if not new_behaviors:
        _check_behaviors(names, behaviors)
    behavior_code, fresh_behaviors = _codes(names, behaviors)
    user_code, fresh_users = _codes(
        np.array(_tokens(new, "user_id"), object), _tokens(base.users, "user_id")
    )
    item_code, fresh_items = _codes(
        np.array(_tokens(new, "item_id"), object), _tokens(base.items, "item_id")
    )
    timestamp = new.column("timestamp").to_numpy().astype(np.int64)
    keep = _not_in_base(base, user_code, item_code, behavior_code, timestamp)
    if not keep.all():  # what is left out may have been the only event of a new user or item
        return append_events(
            base,
            new.filter(pa.array(keep)),
            new_items_meta=new_items_meta,
            new_item_text=new_item_text,
            new_behaviors=new_behaviors,
            source=source,
        )
    order, events = _merged_events(
        base,
        new,
        {"user_idx": user_code, "item_idx": item_code, "behavior_idx": behavior_code},
        users := _tokens(base.users, "user_id") + fresh_users,
        items := _tokens(base.items, "item_id") + fresh_items,
        behavior_names := [*behaviors, *fresh_behaviors],
    )
    dataset = EventDataset(
        events=events,
        users=pa.table(
            {"user_idx": pa.array(np.arange(1, len(users) + 1), pa.int32()), "user_id": users}
        ),
        items=_grown_items(base.items, fresh_items, new_items_meta),
        behaviors=[schema.PAD_TOKEN, *behavior_names],
        stats={},
        item_text=_grown_text(base.item_text, items, fresh_items, new_item_text, new_items_meta),
    )
    span = (int(timestamp.min()), int(timestamp.max())) if len(timestamp) else None
    dataset.stats = _stats(base, dataset, len(timestamp), source)
    added = np.flatnonzero(order >= base.events.num_rows)
    return Appended(dataset, len(timestamp), len(fresh_users), len(fresh_items), span, added)


def _check_behaviors(names: np.ndarray, behaviors: list[str]) -> None:
    unknown = sorted(set(names) - set(behaviors))
    if unknown:
        raise InputError(
            f"the new events use behaviours {unknown[:5]} that the model does not know (it "
            f"knows {behaviors}); map them to known names, or train a new run on all the data"
        )


def _merged_events(
    base: EventDataset,
    new: pa.Table,
    codes: dict[str, np.ndarray],
    users: list[str],
    items: list[str],
    behavior_names: list[str],
) -> tuple[np.ndarray, pa.Table]:
    """The events table of ``base`` and ``new`` (coded by ``codes``), sorted by user then time
    (base events first on ties), and where each row came from (>= base rows: new)."""
    timestamp = new.column("timestamp").to_numpy().astype(np.int64)
    value = new.column("value").to_numpy(zero_copy_only=False).astype(np.float64)
    first_row = (
        int(pc.max(base.events.column("row")).as_py() or 0) + 1 if base.events.num_rows else 0
    )
    columns = {
        name: np.r_[base.column(name).astype(np.int64), codes[name]]
        for name in ("user_idx", "item_idx", "behavior_idx")
    }
    columns["timestamp"] = np.r_[base.column("timestamp").astype(np.int64), timestamp]
    columns["value"] = np.r_[base.column("value"), value]
    columns["row"] = np.r_[
        base.column("row").astype(np.int64), first_row + np.arange(len(timestamp))
    ]
    order = np.lexsort((columns["row"], columns["timestamp"], columns["user_idx"]))
    columns = {name: values[order] for name, values in columns.items()}
    events = pa.Table.from_arrays(
        [
            _dictionary(columns["user_idx"], users, pa.int32()),
            _dictionary(columns["item_idx"], items, pa.int32()),
            _dictionary(columns["behavior_idx"].astype(np.int16), behavior_names, pa.int16()),
            pa.array(columns["timestamp"], pa.int64()),
            pa.array(columns["value"], pa.float64(), mask=np.isnan(columns["value"])),
            pa.array(columns["row"], pa.int64()),
            pa.array(columns["user_idx"], pa.int32()),
            pa.array(columns["item_idx"], pa.int32()),
            pa.array(columns["behavior_idx"], pa.int16()),
        ],
        schema=schema.EVENTS_SCHEMA,
    )
    return order, events


def _not_in_base(
    base: EventDataset,
    user: np.ndarray,
    item: np.ndarray,
    behavior: np.ndarray,
    timestamp: np.ndarray,
) -> np.ndarray:
    """(N,) bool: events that are neither in ``base`` nor repeated earlier among the new."""
    seen: set[tuple[int, int, int, int]] = set()
    if len(user):
        columns = [
            base.column(c).astype(np.int64)
            for c in ("user_idx", "item_idx", "behavior_idx", "timestamp")
        ]
        seen = set(zip(*(c.tolist() for c in columns), strict=True))
    keep = np.ones(len(user), bool)
    for n, key in enumerate(
        zip(user.tolist(), item.tolist(), behavior.tolist(), timestamp.tolist(), strict=True)
    ):
        if key in seen:
            keep[n] = False
        seen.add(key)
    return keep


def _grown_items(items: pa.Table, fresh: list[str], meta: pa.Table | None) -> pa.Table:
    """The base's items table with rows for ``fresh`` items (metadata from ``meta``)."""
    first = items.num_rows + 1
    rows: dict[str, Any] = {
        "item_idx": pa.array(np.arange(first, first + len(fresh)), pa.int32()),
        "item_id": pa.array(fresh, pa.string()),
    }
    found: dict[str, dict[str, Any]] = {}
    if meta is not None and fresh:
        wanted = set(fresh)
        for record in meta.to_pylist():
            if str(record.get("item_id")) in wanted:
                found.setdefault(str(record["item_id"]), record)
    for field in items.schema:
        if field.name not in rows:
            values = [found.get(item, {}).get(field.name) for item in fresh]
            try:
                rows[field.name] = pa.array(values, field.type)
            except (pa.ArrowInvalid, pa.ArrowTypeError):  # another type in ``meta``: left null
                rows[field.name] = pa.nulls(len(fresh), field.type)
    grown = pa.table(rows).select(items.column_names).cast(items.schema)
    return pa.concat_tables([items, grown])


def _grown_text(
    text: ItemText | None,
    items: list[str],
    fresh: list[str],
    new_text: ItemText | None,
    new_meta: pa.Table | None,
) -> ItemText | None:
    """The base's item text with zero rows (no text) for ``fresh`` items, or their vectors in
    ``new_text`` (of the same encoder and size, indexed like ``new_meta``)."""
    if text is None:
        return None
    vectors = np.zeros((len(items) + 1, text.dim), np.float32)
    vectors[: len(text.vectors)] = text.vectors
    if new_text is not None and new_meta is not None and new_text.dim == text.dim:
        row = {str(i): n + 1 for n, i in enumerate(new_meta.column("item_id").to_pylist())}
        for n, item in enumerate(fresh, start=len(text.vectors)):
            if item in row:
                vectors[n] = new_text.vectors[row[item]]
    return replace(text, vectors=vectors, has_text=np.abs(vectors).sum(axis=1) > 0)


def _stats(
    base: EventDataset, dataset: EventDataset, added: int, source: str | None
) -> dict[str, Any]:
    behavior_idx = dataset.column("behavior_idx").astype(np.int64)
    counts = np.bincount(behavior_idx, minlength=len(dataset.behaviors))
    per_user = np.bincount(dataset.column("user_idx"), minlength=dataset.n_users + 1)[1:]
    time_kind = str(base.stats.get("time_kind", "timestamp"))
    appended = list(base.stats.get("appended", []))
    appended.append({"events": added, "source": source})
    return {
        **base.stats,
        "users": dataset.n_users,
        "items": dataset.n_items,
        "events": dataset.events.num_rows,
        "behaviors": {b: int(counts[i]) for i, b in enumerate(dataset.behaviors) if i > 0},
        "time_range": _time_range(dataset.column("timestamp"), time_kind),
        "events_per_user": {
            "min": int(per_user.min()) if len(per_user) else 0,
            "median": float(np.median(per_user)) if len(per_user) else 0.0,
            "max": int(per_user.max()) if len(per_user) else 0,
        },
        "appended": appended,
    }
