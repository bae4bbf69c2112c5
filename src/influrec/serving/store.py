"""The service's event store: what every back end promises, and how one is chosen.

Two back ends keep the same contract (tests/serving/test_store_contract.py runs it on both):

- SQLite (`sqlite_store.SqliteStore`), one embedded file: the default, for one service process;
- PostgreSQL (`postgres_store.PostgresStore`), a database server shared by several service
  processes or machines.

The contract:

- **Acknowledged means durable.** `append` stores a batch in one transaction and returns only
  after its commit is on disk; what it reports stored survives a killed process.
- **Idempotent.** An event's `event_id` (the client's id, optional) is unique: appending one that
  is stored already does nothing and is reported as a duplicate, so a retry never stores an
  event twice, whichever process receives it. Events without an id are always stored.
- **Erasure.** Erasing a user deletes their events and records the erasure in the same
  transaction, so it survives restarts.
- **Order.** A user's events come back in time order, ties in arrival order; users come back
  in code-point order of their ids (`users_after`), whatever the database's collation.
- **Read your writes.** Once `append` returned, every process reading the store sees the events.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


@dataclass(frozen=True)
class StoredEvent:
    user_id: str
    item_id: str
    behavior: str
    timestamp: int  # epoch seconds
    value: float | None = None
    event_id: str | None = None


class EventStore(Protocol):
    """Append-only events per user, with idempotent appends and per-user erasure."""

    location: str  # where the events live, fit for a log line (never a password)

    def append(self, events: Sequence[StoredEvent]) -> list[bool]:
        """Store the events in one transaction; True where stored, False where a duplicate."""
        ...

    def user_events(self, user_id: str, *, limit: int | None = None) -> list[StoredEvent]:
        """The user's most recent `limit` events (all by default), oldest first."""
        ...

    def erase_user(self, user_id: str, *, now: int | None = None) -> int:
        """Delete the user's events and record the erasure; how many events were deleted."""
        ...

    def is_erased(self, user_id: str) -> bool: ...

    def users_after(self, after: str | None, *, prefix: str = "", limit: int) -> list[str]:
        """Up to `limit` distinct users with stored events, in code-point order of their ids,
        after `after` (None: from the first) and starting with `prefix`."""
        ...

    def erased_among(self, users: Sequence[str]) -> set[str]:
        """Those of `users` who were erased."""
        ...

    def event_counts(self, users: Sequence[str]) -> dict[str, int]:
        """Stored events of each of `users` (users without any are left out)."""
        ...

    def count(self) -> int:
        """Events in the store now."""
        ...

    def all_events(self, *, since: int | None = None, batch: int = 10_000) -> Iterator[StoredEvent]:
        """Every stored event with a timestamp after `since` (all by default), in arrival
        order, read `batch` rows at a time (for exports; events stored meanwhile may appear)."""
        ...

    def close(self) -> None: ...


def is_postgres(location: str | Path) -> bool:
    """Whether `location` names a PostgreSQL database (a `postgresql://` URL)."""
    return str(location).startswith(POSTGRES_SCHEMES)


def open_store(location: str | Path) -> EventStore:
    """The store at `location`: a `postgresql://user:password@host:port/db` URL, or the path of
    an SQLite file (created with its folder when absent).

    Raises InputError, naming the store and the problem, when it cannot be used.
    """
    if is_postgres(location):
        from influrec.serving.postgres_store import PostgresStore

        return PostgresStore(str(location))
    from influrec.serving.sqlite_store import SqliteStore

    return SqliteStore(Path(location))
