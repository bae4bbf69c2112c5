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
- **Erasure.** Erasing a user deletes their events and mutes and records the erasure in the
  same transaction, so it survives restarts.
- **Mutes** (:mod:`influrec.mutes`) are stored per user with an id; adding one whose spec is
  stored already returns the stored one (a retry never stores it twice); removing is by id.
- **Order.** A user's events come back in time order, ties in arrival order; users come back
  in code-point order of their ids (`users_after`), whatever the database's collation.
- **Read your writes.** Once `append` returned, every process reading the store sees the events.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from influrec.mutes import Mute

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


@dataclass(frozen=True)
class StoredEvent:
    user_id: str
    item_id: str
    behavior: str
    timestamp: int  # epoch seconds
    value: float | None = None
    event_id: str | None = None


# The columns of a stored mute, in the order `mute_from_row` reads them (both back ends).
MUTE_COLUMNS = [
    "mute_id", "user_id", "kind", "item_id", "behavior", "start_ts", "end_ts", "created_at"
]  # fmt: skip


def mute_from_row(row: Sequence[object]) -> Mute:
    """A mute from a row of `MUTE_COLUMNS` (its user id is the caller's)."""
    mute_id, _, kind, item_id, behavior, start, end, created_at = row
    return Mute(
        str(kind),
        item_id=None if item_id is None else str(item_id),
        behavior=None if behavior is None else str(behavior),
        start=None if start is None else int(start),  # type: ignore[call-overload]
        end=None if end is None else int(end),  # type: ignore[call-overload]
        mute_id=int(mute_id),  # type: ignore[call-overload]
        created_at=int(created_at),  # type: ignore[call-overload]
    )


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
        """Delete the user's events and mutes and record the erasure; how many events were
        deleted."""
        ...

    def add_mute(self, user_id: str, mute: Mute, *, now: int | None = None) -> Mute:
        """Store the mute (or find the equal one stored already); it, with its id and time."""
        ...

    def remove_mute(self, user_id: str, mute_id: int) -> bool:
        """Delete the user's mute ``mute_id``; False if the user has no such mute."""
        ...

    def mutes(self, user_id: str) -> list[Mute]:
        """The user's mutes, oldest first."""
        ...

    def vocabulary(self) -> tuple[set[str], set[str]]:
        """The distinct items and behaviours of the stored events."""
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
