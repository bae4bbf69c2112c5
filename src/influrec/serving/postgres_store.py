"""The PostgreSQL event store: one database shared by several service processes.

The same contract as the SQLite store (see `store`), kept by the database server:

- Durability: each batch is one transaction, committed with `synchronous_commit = on` (set on
  every connection, whatever the server's default), so the commit is flushed to the server's
  write-ahead log before `append` returns and the service acknowledges.
- Idempotency across processes: `event_id` is UNIQUE and inserts use `ON CONFLICT (event_id) DO
  NOTHING`. Two processes inserting the same id at once serialise on the unique index: the
  second waits for the first to commit, then stores nothing and reports a duplicate.
- Erasure deletes the user's rows (events and mutes) and records the user in the same
  transaction. PostgreSQL keeps the deleted row versions in its files until (auto)vacuum
  reclaims them; run `VACUUM influrec_events` where the erased content must leave the disk
  at once.
- Read your writes: every process reads committed data, so an acknowledged event is seen by all.

Tables are prefixed `influrec_`, so the store can live in a database holding other tables.
The schema is versioned in `influrec_schema` and migrated forward on start, under an advisory
lock so that several processes starting together apply each migration once. Connections come
from a pool (psycopg 3, `psycopg_pool`), safe to share between the service's threads.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from typing import Any

from influrec.errors import InputError
from influrec.mutes import Mute
from influrec.serving.store import MUTE_COLUMNS, StoredEvent, mute_from_row

# Migration n brings the schema from version n to n + 1; only ever append to this list.
MIGRATIONS = (
    """
    CREATE TABLE influrec_events (
        seq BIGSERIAL PRIMARY KEY,          -- arrival order
        user_id TEXT NOT NULL,
        item_id TEXT NOT NULL,
        behavior TEXT NOT NULL,
        timestamp BIGINT NOT NULL,          -- epoch seconds
        value DOUBLE PRECISION,
        event_id TEXT UNIQUE                -- the client's id; NULLs never conflict
    );
    CREATE INDEX influrec_events_by_user ON influrec_events (user_id, timestamp, seq);
    CREATE TABLE influrec_erased_users (
        user_id TEXT PRIMARY KEY,
        erased_at BIGINT NOT NULL           -- epoch seconds of the latest erasure
    );
    """,
    """
    CREATE TABLE influrec_mutes (
        mute_id BIGSERIAL PRIMARY KEY,
        user_id TEXT NOT NULL,
        kind TEXT NOT NULL,                 -- event | behavior | window (influrec.mutes)
        item_id TEXT,
        behavior TEXT,
        start_ts BIGINT,                    -- epoch seconds, included
        end_ts BIGINT,                      -- epoch seconds, included
        created_at BIGINT NOT NULL
    );
    CREATE INDEX influrec_mutes_by_user ON influrec_mutes (user_id, mute_id);
    """,
)
COLUMNS = {
    "influrec_events": ["seq", "user_id", "item_id", "behavior", "timestamp", "value", "event_id"],
    "influrec_erased_users": ["user_id", "erased_at"],
    "influrec_mutes": MUTE_COLUMNS,
}
MIGRATION_LOCK = 7_150_321  # pg_advisory_xact_lock key: one migrating process at a time

INSERT = """
INSERT INTO influrec_events (user_id, item_id, behavior, timestamp, value, event_id)
VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING RETURNING seq
"""
# IS NOT DISTINCT FROM: equal, NULLs included
FIND_MUTE = f"""
SELECT {", ".join(MUTE_COLUMNS)} FROM influrec_mutes WHERE user_id = %s AND kind = %s
AND item_id IS NOT DISTINCT FROM %s AND behavior IS NOT DISTINCT FROM %s
AND start_ts IS NOT DISTINCT FROM %s AND end_ts IS NOT DISTINCT FROM %s
"""


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    return re.sub(r"://([^:@/]*):[^@/]*@", r"://\1:***@", url)


class PostgresStore:
    """The event store in a PostgreSQL database (an `EventStore`)."""

    def __init__(self, url: str, *, pool_size: int = 8, timeout_s: float = 10.0) -> None:
        """Connect to `url` (`postgresql://user:password@host:port/database`), then create or
        migrate the schema.

        Raises InputError, naming the server (never the password) and the problem, when the
        server cannot be reached, refuses the login, or holds tables of this store's names that
        this store did not write (or wrote with a newer version of influrec).
        """
        self.location = redacted(url)
        try:
            import psycopg
            from psycopg_pool import ConnectionPool, PoolTimeout
        except ImportError as exc:
            raise InputError(
                f"{self.location}: a PostgreSQL store needs psycopg 3 and psycopg_pool: "
                "pip install 'influrec[postgres]'"
            ) from exc
        try:  # one direct connection first: a bad URL fails at once, with the server's reason
            with psycopg.connect(url, connect_timeout=max(1, round(timeout_s))) as connection:
                problem = self._migrate(connection)
        except psycopg.Error as exc:
            problem = f"PostgreSQL cannot use it ({_first_line(exc)})"
        if problem is not None:
            raise InputError(
                f"{self.location}: not a usable event store: {problem}; check the URL, that "
                "the server runs and the user may create tables, or give another database"
            )
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            timeout=timeout_s,
            configure=_configure,
            open=False,
            name="influrec-events",
        )
        try:
            self._pool.open(wait=True, timeout=timeout_s)
        except PoolTimeout as exc:
            self.close()
            raise InputError(
                f"{self.location}: the event store's connections failed ({exc})"
            ) from exc

    def _migrate(self, connection: Any) -> str | None:
        """Bring the schema up to date; the problem with the database, if any."""
        with connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            connection.execute("CREATE TABLE IF NOT EXISTS influrec_schema (version INT NOT NULL)")
            row = connection.execute("SELECT max(version) FROM influrec_schema").fetchone()
            version = 0 if row is None or row[0] is None else int(row[0])
            if version > len(MIGRATIONS):
                return (
                    f"its schema is version {version}, newer than this influrec knows "
                    f"({len(MIGRATIONS)}): upgrade influrec"
                )
            if version == 0 and (clash := self._tables(connection)):
                return f"it holds tables of this store's names not made by it ({clash})"
            for script in MIGRATIONS[version:]:
                connection.execute(script)
            connection.execute("DELETE FROM influrec_schema")
            connection.execute("INSERT INTO influrec_schema VALUES (%s)", (len(MIGRATIONS),))
            for table, expected in COLUMNS.items():
                found = [
                    name
                    for (name,) in connection.execute(
                        "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
                        " AND table_schema = current_schema() ORDER BY ordinal_position",
                        (table,),
                    )
                ]
                if found != expected:
                    return f"table {table} has columns {found}, expected {expected}"
        return None

    @staticmethod
    def _tables(connection: Any) -> str:
        rows = connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = "
            "current_schema() AND table_name = ANY(%s) ORDER BY table_name",
            (list(COLUMNS),),
        ).fetchall()
        return ", ".join(name for (name,) in rows)

    def append(self, events: Sequence[StoredEvent]) -> list[bool]:
        """Store the events in one transaction; True where stored, False where a duplicate.

        Returns only after the commit is flushed on the server: what it reports stored is
        durable and visible to every process.
        """
        if not events:
            return []
        rows = [
            (e.user_id, e.item_id, e.behavior, e.timestamp, e.value, e.event_id) for e in events
        ]
        stored: list[bool] = []
        with self._pool.connection() as connection, connection.transaction():
            cursor = connection.cursor()
            cursor.executemany(INSERT, rows, returning=True)
            while True:  # one result per event: a row where stored, none for a duplicate
                stored.append(cursor.fetchone() is not None)
                if not cursor.nextset():
                    break
        return stored

    def user_events(self, user_id: str, *, limit: int | None = None) -> list[StoredEvent]:
        """The user's most recent `limit` events (all by default), oldest first; time order
        with ties in arrival order."""
        with self._pool.connection() as connection:
            rows = connection.execute(
                "SELECT user_id, item_id, behavior, timestamp, value, event_id "
                "FROM influrec_events WHERE user_id = %s "
                "ORDER BY timestamp DESC, seq DESC LIMIT %s",
                (user_id, limit),
            ).fetchall()
        return [StoredEvent(*row) for row in reversed(rows)]

    def erase_user(self, user_id: str, *, now: int | None = None) -> int:
        """Delete the user's events and record the erasure; returns how many were deleted."""
        with self._pool.connection() as connection, connection.transaction():
            deleted = connection.execute(
                "DELETE FROM influrec_events WHERE user_id = %s", (user_id,)
            ).rowcount
            connection.execute("DELETE FROM influrec_mutes WHERE user_id = %s", (user_id,))
            connection.execute(
                "INSERT INTO influrec_erased_users (user_id, erased_at) VALUES (%s, %s) "
                "ON CONFLICT (user_id) DO UPDATE SET erased_at = excluded.erased_at",
                (user_id, int(time.time()) if now is None else now),
            )
        return int(deleted)

    def add_mute(self, user_id: str, mute: Mute, *, now: int | None = None) -> Mute:
        """Store the mute, or find the equal one stored already; it, with its id and time.
        Adds for one user take turns (a transaction lock on the user), so two processes
        adding the same mute at once store it once."""
        spec = (user_id, mute.kind, mute.item_id, mute.behavior, mute.start, mute.end)
        with self._pool.connection() as connection, connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (user_id,))
            row = connection.execute(FIND_MUTE, spec).fetchone()
            if row is None:
                row = connection.execute(
                    "INSERT INTO influrec_mutes (user_id, kind, item_id, behavior, start_ts, "
                    "end_ts, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s) "
                    f"RETURNING {', '.join(MUTE_COLUMNS)}",
                    (*spec, int(time.time()) if now is None else now),
                ).fetchone()
        return mute_from_row(row)

    def remove_mute(self, user_id: str, mute_id: int) -> bool:
        """Delete the user's mute ``mute_id``; False if the user has no such mute."""
        with self._pool.connection() as connection:
            deleted = connection.execute(
                "DELETE FROM influrec_mutes WHERE user_id = %s AND mute_id = %s",
                (user_id, mute_id),
            ).rowcount
        return bool(deleted)

    def mutes(self, user_id: str) -> list[Mute]:
        """The user's mutes, oldest first."""
        with self._pool.connection() as connection:
            rows = connection.execute(
                f"SELECT {', '.join(MUTE_COLUMNS)} FROM influrec_mutes WHERE user_id = %s "
                "ORDER BY mute_id",
                (user_id,),
            ).fetchall()
        return [mute_from_row(row) for row in rows]

    def vocabulary(self) -> tuple[set[str], set[str]]:
        """The distinct items and behaviours of the stored events."""
        with self._pool.connection() as connection:
            items = connection.execute("SELECT DISTINCT item_id FROM influrec_events").fetchall()
            behaviors = connection.execute(
                "SELECT DISTINCT behavior FROM influrec_events"
            ).fetchall()
        return {item for (item,) in items}, {b for (b,) in behaviors}

    def is_erased(self, user_id: str) -> bool:
        with self._pool.connection() as connection:
            row = connection.execute(
                "SELECT 1 FROM influrec_erased_users WHERE user_id = %s", (user_id,)
            ).fetchone()
        return row is not None

    def users_after(self, after: str | None, *, prefix: str = "", limit: int) -> list[str]:
        """Up to `limit` distinct users with stored events, in id order (the "C" collation:
        code-point order, whatever the database's), after `after` and starting with `prefix`."""
        with self._pool.connection() as connection:
            rows = connection.execute(
                'SELECT DISTINCT user_id COLLATE "C" AS u FROM influrec_events '
                'WHERE user_id COLLATE "C" > %s AND left(user_id, %s) = %s ORDER BY u LIMIT %s',
                (after if after is not None else "", len(prefix), prefix, limit),
            ).fetchall()
        return [user for (user,) in rows]

    def erased_among(self, users: Sequence[str]) -> set[str]:
        """Those of `users` who were erased."""
        with self._pool.connection() as connection:
            rows = connection.execute(
                "SELECT user_id FROM influrec_erased_users WHERE user_id = ANY(%s)", (list(users),)
            ).fetchall()
        return {user for (user,) in rows}

    def event_counts(self, users: Sequence[str]) -> dict[str, int]:
        """Stored events of each of `users` (users without any are left out)."""
        with self._pool.connection() as connection:
            rows = connection.execute(
                "SELECT user_id, count(*) FROM influrec_events WHERE user_id = ANY(%s) "
                "GROUP BY user_id",
                (list(users),),
            ).fetchall()
        return {user: int(n) for user, n in rows}

    def count(self) -> int:
        """Events in the store now."""
        with self._pool.connection() as connection:
            row = connection.execute("SELECT count(*) FROM influrec_events").fetchone()
        return int(row[0]) if row is not None else 0

    def all_events(self, *, since: int | None = None, batch: int = 10_000) -> Iterator[StoredEvent]:
        """Every stored event with a timestamp after `since` (all by default), in arrival
        order; pages of `batch` rows, each its own short query on a pooled connection."""
        last = 0
        while True:
            with self._pool.connection() as connection:
                rows = connection.execute(
                    "SELECT seq, user_id, item_id, behavior, timestamp, value, event_id "
                    "FROM influrec_events WHERE seq > %s AND timestamp > %s ORDER BY seq LIMIT %s",
                    (last, -(2**63) if since is None else since, batch),
                ).fetchall()
            yield from (StoredEvent(*row[1:]) for row in rows)
            if len(rows) < batch:
                return
            last = rows[-1][0]

    def close(self) -> None:
        self._pool.close()


def _configure(connection: Any) -> None:
    """Each new pooled connection: commits wait for the flush, whatever the server default."""
    connection.execute("SET synchronous_commit = on")
    connection.commit()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
