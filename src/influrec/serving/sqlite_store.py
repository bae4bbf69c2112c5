"""The SQLite event store: one embedded file, for one service process (see `store` for the
contract every back end keeps).

Durability. The database runs in WAL mode with ``synchronous=FULL``: every commit appends the
transaction to the write-ahead log and fsyncs it before ``commit`` returns, and the service
acknowledges events only after that. An acknowledged event therefore survives a killed process
(SIGKILL), an OS crash and a power cut. ``synchronous=NORMAL`` would skip that fsync and only
survive a killed process: a power cut could lose the last acknowledged batches, which an
"acknowledged" answer must not allow. The cost is one fsync per request (not per event), which
batching amortises.

Idempotency. ``event_id`` (the client's id, optional) is UNIQUE; inserting one that is already
stored does nothing (``ON CONFLICT(event_id) DO NOTHING``) and is reported back as a duplicate,
so a retried request never stores an event twice. Events without an id are always stored.

Erasure. Deleting a user removes their events and mutes and records the user in
``erased_users`` in the same transaction, so the erasure survives restarts. ``secure_delete``
overwrites the deleted content in the database file, and a WAL checkpoint is attempted
afterwards so the old pages leave the log too.

Threads. Each thread gets its own connection (FastAPI runs sync endpoints in a threadpool);
writes take ``BEGIN IMMEDIATE`` and SQLite serialises writers (``busy_timeout`` waits for the
lock), while WAL lets readers proceed during a write.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from influrec.errors import InputError
from influrec.mutes import Mute
from influrec.serving.store import MUTE_COLUMNS, StoredEvent, mute_from_row

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- insertion order
    user_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    behavior TEXT NOT NULL,
    timestamp INTEGER NOT NULL,             -- epoch seconds
    value REAL,
    event_id TEXT UNIQUE                    -- the client's id; NULLs never conflict
);
CREATE INDEX IF NOT EXISTS events_by_user ON events (user_id, timestamp, seq);
CREATE TABLE IF NOT EXISTS erased_users (
    user_id TEXT PRIMARY KEY,
    erased_at INTEGER NOT NULL              -- epoch seconds of the latest erasure
);
CREATE TABLE IF NOT EXISTS mutes (
    mute_id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,                     -- event | behavior | window (influrec.mutes)
    item_id TEXT,
    behavior TEXT,
    start_ts INTEGER,                       -- epoch seconds, included
    end_ts INTEGER,                         -- epoch seconds, included
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS mutes_by_user ON mutes (user_id, mute_id);
"""

COLUMNS = {
    "events": ["seq", "user_id", "item_id", "behavior", "timestamp", "value", "event_id"],
    "erased_users": ["user_id", "erased_at"],
    "mutes": MUTE_COLUMNS,
}

INSERT = """
INSERT INTO events (user_id, item_id, behavior, timestamp, value, event_id)
VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING
"""

# `IS`: equal, NULLs included
FIND_MUTE = f"""
SELECT {", ".join(MUTE_COLUMNS)} FROM mutes WHERE user_id = ? AND kind = ? AND item_id IS ?
AND behavior IS ? AND start_ts IS ? AND end_ts IS ?
"""


class SqliteStore:
    """The event store in one SQLite file (an `EventStore`)."""

    def __init__(self, path: Path, *, busy_timeout_s: float = 10.0) -> None:
        """Open the store at ``path``, creating it (and its folder) when absent.

        Raises InputError, naming the path and the problem, when ``path`` is not a usable
        store: not an SQLite database (random bytes, text, a folder), a damaged one (e.g.
        truncated; ``PRAGMA quick_check`` reads every page once), or one holding other tables
        or other columns than this store's.
        """
        self.path = Path(path)
        self.location = str(self.path)
        self._file = self.path  # the path opened: links resolved once, at start (below)
        self._busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Connections open lazily, one per thread: without this, a store inside a linked
            # run folder (`current/events.sqlite3`) would move when the link does.
            self._file = self.path.resolve()
            problem = self._open_schema()
        except (OSError, sqlite3.Error) as exc:
            problem = f"SQLite cannot use it ({exc})"
        if problem is not None:
            self.close()
            raise InputError(
                f"{self.path}: not a usable event store: {problem}; give a new file name, or "
                "a store this service wrote"
            )

    def _open_schema(self) -> str | None:
        """Create the tables in a new database, and those a store of an earlier version lacks
        (``mutes``); the problem with an existing database, if any."""
        connection = self._connection()
        tables = {
            name
            for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        }
        if tables - set(COLUMNS):
            return f"it holds other tables ({', '.join(sorted(tables - set(COLUMNS)))})"
        for table in sorted(tables):
            columns = [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]
            if columns != COLUMNS[table]:
                return f"table {table} has columns {columns}, expected {COLUMNS[table]}"
        connection.execute("PRAGMA journal_mode=WAL")
        connection.executescript(SCHEMA)
        check = [row[0] for row in connection.execute("PRAGMA quick_check")]
        if check != ["ok"]:
            return f"it is damaged ({'; '.join(check[:3])})"
        return None

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            # isolation_level=None: transactions are begun and committed explicitly below.
            connection = sqlite3.connect(
                self._file,
                timeout=self._busy_timeout_s,
                isolation_level=None,
                check_same_thread=False,
            )
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute("PRAGMA secure_delete=ON")
            self._local.connection = connection
            with self._lock:
                self._all.append(connection)
        return connection

    def append(self, events: Sequence[StoredEvent]) -> list[bool]:
        """Store the events in one transaction; True where stored, False where a duplicate.

        Returns only after the commit (and its fsync): what it reports stored is durable.
        """
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            stored = [
                connection.execute(
                    INSERT,
                    (e.user_id, e.item_id, e.behavior, e.timestamp, e.value, e.event_id),
                ).rowcount
                == 1
                for e in events
            ]
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        return stored

    def user_events(self, user_id: str, *, limit: int | None = None) -> list[StoredEvent]:
        """The user's most recent ``limit`` events (all by default), oldest first.

        Time order with ties in insertion order (a stable order, like the training data's).
        """
        rows = (
            self._connection()
            .execute(
                "SELECT user_id, item_id, behavior, timestamp, value, event_id FROM events "
                "WHERE user_id = ? ORDER BY timestamp DESC, seq DESC LIMIT ?",
                (user_id, -1 if limit is None else limit),
            )
            .fetchall()
        )
        return [StoredEvent(*row) for row in reversed(rows)]

    def erase_user(self, user_id: str, *, now: int | None = None) -> int:
        """Delete the user's events and record the erasure; returns how many were deleted."""
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            deleted = connection.execute(
                "DELETE FROM events WHERE user_id = ?", (user_id,)
            ).rowcount
            connection.execute("DELETE FROM mutes WHERE user_id = ?", (user_id,))
            connection.execute(
                "INSERT INTO erased_users (user_id, erased_at) VALUES (?, ?) "
                "ON CONFLICT (user_id) DO UPDATE SET erased_at = excluded.erased_at",
                (user_id, int(time.time()) if now is None else now),
            )
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        # Best effort: copy the log into the database and truncate it (readers may block it).
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return int(deleted)

    def add_mute(self, user_id: str, mute: Mute, *, now: int | None = None) -> Mute:
        """Store the mute, or find the equal one stored already; it, with its id and time."""
        spec = (user_id, mute.kind, mute.item_id, mute.behavior, mute.start, mute.end)
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            row = connection.execute(FIND_MUTE, spec).fetchone()
            if row is None:
                connection.execute(
                    "INSERT INTO mutes (user_id, kind, item_id, behavior, start_ts, end_ts, "
                    "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (*spec, int(time.time()) if now is None else now),
                )
                row = connection.execute(FIND_MUTE, spec).fetchone()
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        return mute_from_row(row)

    def remove_mute(self, user_id: str, mute_id: int) -> bool:
        """Delete the user's mute ``mute_id``; False if the user has no such mute."""
        connection = self._connection()
        deleted = connection.execute(
            "DELETE FROM mutes WHERE user_id = ? AND mute_id = ?", (user_id, mute_id)
        ).rowcount
        return bool(deleted)

    def mutes(self, user_id: str) -> list[Mute]:
        """The user's mutes, oldest first."""
        rows = self._connection().execute(
            f"SELECT {', '.join(MUTE_COLUMNS)} FROM mutes WHERE user_id = ? ORDER BY mute_id",
            (user_id,),
        )
        return [mute_from_row(row) for row in rows]

    def vocabulary(self) -> tuple[set[str], set[str]]:
        """The distinct items and behaviours of the stored events."""
        connection = self._connection()
        items = {item for (item,) in connection.execute("SELECT DISTINCT item_id FROM events")}
        behaviors = {b for (b,) in connection.execute("SELECT DISTINCT behavior FROM events")}
        return items, behaviors

    def is_erased(self, user_id: str) -> bool:
        row = (
            self._connection()
            .execute("SELECT 1 FROM erased_users WHERE user_id = ?", (user_id,))
            .fetchone()
        )
        return row is not None

    def users_after(self, after: str | None, *, prefix: str = "", limit: int) -> list[str]:
        """Up to ``limit`` distinct users with stored events, in id order (SQLite compares
        text by its UTF-8 bytes: code-point order), after ``after`` and starting with ``prefix``."""
        rows = self._connection().execute(
            "SELECT DISTINCT user_id FROM events WHERE user_id > ? "
            "AND substr(user_id, 1, ?) = ? ORDER BY user_id LIMIT ?",
            (after if after is not None else "", len(prefix), prefix, limit),
        )
        return [user for (user,) in rows]

    def erased_among(self, users: Sequence[str]) -> set[str]:
        """Those of ``users`` who were erased."""
        rows = self._select_in("SELECT user_id FROM erased_users WHERE user_id IN", users)
        return {user for (user,) in rows}

    def event_counts(self, users: Sequence[str]) -> dict[str, int]:
        """Stored events of each of ``users`` (users without any are left out)."""
        query = "SELECT user_id, count(*) FROM events WHERE user_id IN"
        return {user: int(n) for user, n in self._select_in(query, users, "GROUP BY user_id")}

    def _select_in(self, query: str, values: Sequence[str], suffix: str = "") -> list[tuple]:
        """The rows of ``query (?, ?, ...) suffix``, in chunks under SQLite's variable limit."""
        rows: list[tuple] = []
        for start in range(0, len(values), 500):
            chunk = list(values[start : start + 500])
            marks = ", ".join("?" * len(chunk))
            rows += self._connection().execute(f"{query} ({marks}) {suffix}", chunk).fetchall()
        return rows

    def count(self) -> int:
        """Events in the store now."""
        return int(self._connection().execute("SELECT count(*) FROM events").fetchone()[0])

    def all_events(self, *, since: int | None = None, batch: int = 10_000) -> Iterator[StoredEvent]:
        """Every stored event with a timestamp after ``since`` (all by default), in arrival
        order; pages of ``batch`` rows, each its own short read, so writers are never held up."""
        last = 0
        while True:
            rows = (
                self._connection()
                .execute(
                    "SELECT seq, user_id, item_id, behavior, timestamp, value, event_id "
                    "FROM events WHERE seq > ? AND timestamp > ? ORDER BY seq LIMIT ?",
                    (last, -(2**63) if since is None else since, batch),
                )
                .fetchall()
            )
            yield from (StoredEvent(*row[1:]) for row in rows)
            if len(rows) < batch:
                return
            last = rows[-1][0]

    def close(self) -> None:
        with self._lock:
            connections, self._all = self._all, []
        for connection in connections:
            connection.close()
        self._local = threading.local()
