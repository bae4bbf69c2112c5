"""The event store's contract, run on every back end: SQLite and a real PostgreSQL server."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from influrec.errors import InputError
from influrec.mutes import Mute
from influrec.serving.store import EventStore, StoredEvent, is_postgres, open_store


def event(user: str, item: str, t: int, event_id: str | None = None) -> StoredEvent:
    return StoredEvent(user, item, "view", t, None, event_id)


def rows_per_event_id(location: Path | str) -> list[int]:
    """How many rows each event id has, read straight from the database."""
    if is_postgres(location):
        import psycopg

        with psycopg.connect(str(location)) as db:
            sql = "SELECT count(*) FROM influrec_events GROUP BY event_id"
            return [int(n) for (n,) in db.execute(sql).fetchall()]
    import sqlite3

    with sqlite3.connect(location) as db:
        sql = "SELECT count(*) FROM events GROUP BY event_id"
        return [int(n) for (n,) in db.execute(sql).fetchall()]


@pytest.fixture
def store(store_location: Path | str) -> EventStore:
    opened = open_store(store_location)
    yield opened  # type: ignore[misc]
    opened.close()


def test_time_order_with_ties_in_arrival_order(store: EventStore) -> None:
    stored = store.append([event("u", "late", 20), event("u", "a", 10), event("v", "x", 1)])
    assert stored == [True, True, True]
    assert store.append([event("u", "b", 10)]) == [True]
    assert [e.item_id for e in store.user_events("u")] == ["a", "b", "late"]
    assert [e.item_id for e in store.user_events("u", limit=2)] == ["b", "late"]
    assert store.user_events("nobody") == [] and store.append([]) == []
    assert store.count() == 4


def test_values_and_ids_round_trip(store: EventStore) -> None:
    sent = StoredEvent("u", "i9", "rate", 1_700_000_000, 4.5, "r-1")
    store.append([sent, StoredEvent("u", "i8", "view", 1_700_000_001)])
    assert store.user_events("u") == [sent, StoredEvent("u", "i8", "view", 1_700_000_001)]


def test_event_ids_are_unique_and_nulls_never_conflict(store: EventStore) -> None:
    first = store.append([event("u", "a", 1, "e1"), event("u", "b", 2), event("u", "b", 2)])
    assert first == [True, True, True]
    assert store.append([event("u", "c", 3, "e1"), event("u", "d", 4, "e2")]) == [False, True]
    assert store.append([event("u", "x", 5, "e3"), event("u", "y", 6, "e3")]) == [True, False]
    assert [e.item_id for e in store.user_events("u")] == ["a", "b", "b", "d", "x"]


def test_erasure_survives_reopening(store_location: Path | str, store: EventStore) -> None:
    store.append([event("u", "a", 1, "e1"), event("u", "b", 2), event("v", "c", 3)])
    assert store.erase_user("u", now=123) == 2
    assert store.is_erased("u") and not store.is_erased("v")
    assert store.erase_user("u") == 0 and store.is_erased("u")  # erasing again is harmless
    reopened = open_store(store_location)
    assert reopened.is_erased("u") and reopened.user_events("u") == []
    assert reopened.count() == 1 and [e.item_id for e in reopened.user_events("v")] == ["c"]
    reopened.close()


def test_concurrent_retries_store_each_event_once(
    store_location: Path | str, store: EventStore
) -> None:
    """Eight threads send overlapping batches at once: every id ends up stored exactly once."""
    results: list[list[bool]] = []
    lock = threading.Lock()

    def send(offset: int) -> None:
        stored = store.append([event("u", "i", n, f"id{n}") for n in range(offset, offset + 50)])
        with lock:
            results.append(stored)

    threads = [threading.Thread(target=send, args=(25 * (n % 4),)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == 8
    assert sum(sum(r) for r in results) == store.count() == 125
    counts = rows_per_event_id(store_location)
    assert len(counts) == 125 and set(counts) == {1}


def test_two_stores_on_one_database_see_each_others_writes(
    store_location: Path | str, store: EventStore
) -> None:
    """Read your writes across processes' stores (two opened stores stand in for two
    service processes; the real multi-process test is in test_serving_postgres.py)."""
    other = open_store(store_location)
    try:
        assert store.append([event("u", "a", 1, "shared-1")]) == [True]
        assert [e.item_id for e in other.user_events("u")] == ["a"]
        assert other.append([event("u", "a", 1, "shared-1")]) == [False]
        other.erase_user("u")
        assert store.is_erased("u") and store.count() == 0
    finally:
        other.close()


def test_a_database_holding_foreign_tables_of_the_same_names_is_refused(
    postgres_cluster: object,
) -> None:
    import psycopg

    url = postgres_cluster.create_database()  # type: ignore[attr-defined]
    with psycopg.connect(url) as db:
        db.execute("CREATE TABLE influrec_events (id INT)")
    with pytest.raises(InputError, match="tables of this store's names not made by it"):
        open_store(url)


def test_postgres_store_migrates_once_and_refuses_a_newer_schema(
    postgres_cluster: object,
) -> None:
    import psycopg

    url = postgres_cluster.create_database()  # type: ignore[attr-defined]
    open_store(url).close()
    open_store(url).close()  # a second start migrates nothing
    with psycopg.connect(url) as db:
        assert db.execute("SELECT version FROM influrec_schema").fetchall() == [(2,)]
        db.execute("UPDATE influrec_schema SET version = 99")
    with pytest.raises(InputError, match="newer than this influrec knows"):
        open_store(url)


def test_unreachable_server_is_a_clear_error_without_the_password() -> None:
    from pg_cluster import free_port

    url = f"postgresql://someone:s3cret@127.0.0.1:{free_port()}/events"  # nothing listens
    with pytest.raises(InputError) as caught:
        open_store(url)
    message = str(caught.value)
    assert "s3cret" not in message and "someone:***@127.0.0.1" in message
    assert "not a usable event store" in message


def test_postgres_commits_wait_for_the_flush_whatever_the_server_default(
    postgres_cluster: object,
) -> None:
    import psycopg

    from influrec.serving.postgres_store import PostgresStore

    url = postgres_cluster.create_database("lazy")  # type: ignore[attr-defined]
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("ALTER DATABASE lazy SET synchronous_commit = off")
    store = PostgresStore(url)
    try:
        with store._pool.connection() as connection:
            assert connection.execute("SHOW synchronous_commit").fetchone() == ("on",)
    finally:
        store.close()


def test_users_in_code_point_order_by_prefix_with_counts_and_erasures(store: EventStore) -> None:
    ids = ["b", "B", "a", "é", "ab", "a b", "Ä", "a/b", "10", "9"]
    store.append([event(user, "i", n) for n, user in enumerate(ids)] + [event("ab", "j", 99)])
    assert store.users_after(None, limit=100) == sorted(ids)  # whatever the collation
    assert store.users_after("a", limit=3) == ["a b", "a/b", "ab"]
    assert store.users_after(None, prefix="a", limit=100) == ["a", "a b", "a/b", "ab"]
    assert store.users_after("a/b", prefix="a", limit=100) == ["ab"]
    assert store.users_after(None, prefix="é", limit=5) == ["é"]
    assert store.users_after("é", limit=5) == []
    assert store.event_counts(["ab", "b", "nobody"]) == {"ab": 2, "b": 1}
    assert store.event_counts([]) == {} and store.erased_among([]) == set()
    store.erase_user("b")
    store.erase_user("never-stored")
    assert store.erased_among(["b", "never-stored", "a", "x"]) == {"b", "never-stored"}
    assert "b" not in store.users_after(None, limit=100)
    many = [f"u{n}" for n in range(1200)]  # more ids than one SQLite statement may hold
    store.append([event(user, "i", 1) for user in many])
    assert store.event_counts(many) == dict.fromkeys(many, 1)


def test_all_events_in_arrival_order_after_a_time_across_pages(store: EventStore) -> None:
    store.append([event("u", "late", 20, "e1"), event("v", "a", 10), event("u", "b", 5)])
    store.append([StoredEvent("w", "c", "buy", 30, 2.5, "e4"), event("u", "d", 10)])
    everything = list(store.all_events(batch=2))  # three pages: 2 + 2 + 1
    assert [e.item_id for e in everything] == ["late", "a", "b", "c", "d"]
    assert everything[3] == StoredEvent("w", "c", "buy", 30, 2.5, "e4")
    assert [e.item_id for e in store.all_events(since=10, batch=1)] == ["late", "c"]
    assert list(store.all_events(since=30)) == []
    store.erase_user("u")
    assert [e.item_id for e in store.all_events()] == ["a", "c"]


def test_mutes_are_stored_once_removed_by_id_and_erased_with_the_user(
    store_location: Path | str, store: EventStore
) -> None:
    first = store.add_mute("u", Mute.event("i1", "view", 10), now=100)
    window = store.add_mute("u", Mute.window(5, 20), now=101)
    views = store.add_mute("u", Mute.of_behavior("view"), now=102)
    assert first.mute_id is not None and first.created_at == 100
    assert first.spec == Mute.event("i1", "view", 10)
    again = store.add_mute("u", Mute.event("i1", "view", 10), now=999)  # a retry
    assert again == first
    assert store.add_mute("v", Mute.of_behavior("view"), now=5).mute_id != views.mute_id
    assert store.mutes("u") == [first, window, views]  # oldest first
    assert store.remove_mute("u", window.mute_id) is True  # type: ignore[arg-type]
    assert store.remove_mute("u", window.mute_id) is False  # type: ignore[arg-type]
    assert store.remove_mute("u", store.mutes("v")[0].mute_id) is False  # type: ignore[arg-type]
    reopened = open_store(store_location)
    assert reopened.mutes("u") == [first, views] and reopened.mutes("nobody") == []
    reopened.close()
    store.append([event("u", "a", 1)])
    store.erase_user("u")
    assert store.mutes("u") == [] and len(store.mutes("v")) == 1


def test_vocabulary_lists_the_stored_items_and_behaviours(store: EventStore) -> None:
    assert store.vocabulary() == (set(), set())
    store.append([event("u", "a", 1), event("v", "a", 2), StoredEvent("u", "b", "buy", 3)])
    assert store.vocabulary() == ({"a", "b"}, {"view", "buy"})


def test_sqlite_store_of_the_first_version_gains_the_mutes_table(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:  # the schema before mutes, with one event in it
        db.executescript(
            "CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, "
            "item_id TEXT NOT NULL, behavior TEXT NOT NULL, timestamp INTEGER NOT NULL, "
            "value REAL, event_id TEXT UNIQUE);"
            "CREATE TABLE erased_users (user_id TEXT PRIMARY KEY, erased_at INTEGER NOT NULL);"
            "INSERT INTO events (user_id, item_id, behavior, timestamp) "
            "VALUES ('u', 'a', 'view', 1)"
        )
    store = open_store(path)
    try:
        assert [e.item_id for e in store.user_events("u")] == ["a"]
        assert store.add_mute("u", Mute.of_behavior("view")).mute_id == 1
    finally:
        store.close()


def test_postgres_store_of_the_first_version_is_migrated_keeping_its_events(
    postgres_cluster: object,
) -> None:
    import psycopg

    from influrec.serving.postgres_store import MIGRATIONS

    url = postgres_cluster.create_database()  # type: ignore[attr-defined]
    with psycopg.connect(url) as db:  # what the first version of the store left
        db.execute("CREATE TABLE influrec_schema (version INT NOT NULL)")
        db.execute(MIGRATIONS[0])
        db.execute("INSERT INTO influrec_schema VALUES (1)")
        db.execute("INSERT INTO influrec_events (user_id, item_id, behavior, timestamp) "
                   "VALUES ('u', 'a', 'view', 1)")  # fmt: skip
    store = open_store(url)
    try:
        assert [e.item_id for e in store.user_events("u")] == ["a"]
        assert store.add_mute("u", Mute.window(0, 5)).spec == Mute.window(0, 5)
    finally:
        store.close()
    with psycopg.connect(url) as db:
        assert db.execute("SELECT version FROM influrec_schema").fetchall() == [(2,)]
