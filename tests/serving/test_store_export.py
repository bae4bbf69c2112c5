"""`influrec data export-store`: the service's stored events as a prepared dataset, on SQLite
and a real PostgreSQL server."""

from __future__ import annotations

from pathlib import Path

import pytest

from influrec.cli.main import main
from influrec.data.dataset import EventDataset
from influrec.data.store_export import export_store
from influrec.errors import InputError
from influrec.serving.store import EventStore, StoredEvent, open_store


@pytest.fixture
def store(store_location: Path | str) -> EventStore:
    opened = open_store(store_location)
    opened.append(
        [
            StoredEvent("ann", "book-1", "view", 100),
            StoredEvent("bob", "book-2", "buy", 110, 12.5),
            StoredEvent("ann", "book-3", "buy", 105, 9.0, "e-1"),
            StoredEvent("eve", "book-9", "view", 120),
            StoredEvent("ann", "book-2", "view", 130),
        ]
    )
    opened.erase_user("eve")
    opened.append([StoredEvent("eve", "book-8", "view", 140)])  # after the erasure
    yield opened  # type: ignore[misc]
    opened.close()


def sequences(dataset: EventDataset) -> dict[str, list[tuple[str, str, int]]]:
    """Each user's events (item, behaviour, time) as the dataset orders them."""
    out: dict[str, list[tuple[str, str, int]]] = {}
    for row in dataset.events.select(["user_id", "item_id", "behavior", "timestamp"]).to_pylist():
        out.setdefault(row["user_id"], []).append(
            (row["item_id"], row["behavior"], row["timestamp"])
        )
    return out


def test_export_keeps_names_orders_by_time_and_leaves_out_erased_users(store: EventStore) -> None:
    export = export_store(store)
    assert sequences(export.dataset) == {
        "ann": [("book-1", "view", 100), ("book-3", "buy", 105), ("book-2", "view", 130)],
        "bob": [("book-2", "buy", 110)],
    }
    assert export.events_read == 5 and export.erased_users == 1
    assert export.dataset.column("value").tolist()[1] == 9.0  # ann's buy keeps its value
    assert export.dataset.stats["events"] == 4 and "eve" not in str(export.dataset.users)


def test_since_keeps_only_later_events(store: EventStore) -> None:
    export = export_store(store, since=105)
    assert sequences(export.dataset) == {
        "ann": [("book-2", "view", 130)],
        "bob": [("book-2", "buy", 110)],
    }
    with pytest.raises(InputError, match="no stored events after time 500"):
        export_store(store, since=500)


def test_appending_to_a_base_keeps_its_indices_and_adds_each_event_once(
    store: EventStore, tmp_path: Path
) -> None:
    base = export_store(store, since=105).dataset  # bob then ann, book-2 is item 1
    base.save(tmp_path / "base")
    base = EventDataset.load(tmp_path / "base")
    store.append([StoredEvent("cat", "book-7", "view", 150)])
    grown = export_store(store, base=base).dataset  # the whole store: overlaps the base
    assert [u for u in grown.users.column("user_id").to_pylist()][:2] == (
        base.users.column("user_id").to_pylist()
    )
    items = grown.items.column("item_id").to_pylist()
    assert items[0] == "book-2" and set(items[1:]) == {"book-1", "book-3", "book-7"}
    assert grown.stats["events"] == 5  # 2 of the base + 3 new of ann and cat, none twice
    assert sequences(grown)["ann"] == [
        ("book-1", "view", 100),
        ("book-3", "buy", 105),
        ("book-2", "view", 130),
    ]
    grown.save(tmp_path / "grown")
    assert EventDataset.load(tmp_path / "grown").n_items == 4
    store.erase_user("bob")  # erased later: left out of the base's events as well
    again = export_store(store, base=base).dataset
    assert "bob" not in again.users.column("user_id").to_pylist()
    assert "bob" not in sequences(again) and again.n_users == grown.n_users


def test_cli_exports_a_sqlite_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "events.sqlite3"
    store = open_store(path)
    store.append([StoredEvent("u1", "i1", "view", 10), StoredEvent("u1", "i2", "cart", 20)])
    store.close()
    assert main(["data", "export-store", str(path), "--out", str(tmp_path / "d")]) == 0
    assert "2 stored events read, 2 added" in capsys.readouterr().out
    assert EventDataset.load(tmp_path / "d").behaviors == ["[PAD]", "view", "cart"]
    code = main(["data", "export-store", str(tmp_path / "nope.db"), "--out", str(tmp_path / "e")])
    assert code == 2 and "no such event store file" in capsys.readouterr().err
    since = ["--since", "2026-13-01"]
    assert main(["data", "export-store", str(path), "--out", str(tmp_path / "f"), *since]) == 2
    assert "expected epoch seconds" in capsys.readouterr().err
