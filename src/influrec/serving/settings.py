"""What the service needs to start: the run, the event store, API keys and request limits."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from influrec.errors import InputError
from influrec.serving.store import is_postgres

SCOPES = ("read", "write", "admin")
API_KEYS_ENV = "INFLUREC_API_KEYS"


@dataclass(frozen=True)
class Limits:
    """Bounds on one request; anything larger is refused with a 4xx, never truncated silently
    (except ``max_history``: only a user's most recent events are used)."""

    max_batch: int = 1000  # events per POST /v1/events
    max_k: int = 100  # recommendations per answer
    max_explain_k: int = 20  # recommendations explained per answer (each costs a batch of passes)
    max_history: int = 2_000  # most recent events of a user used for a request (reading
    # more from SQLite costs ~8 ms per 1,000 events; the model itself sees the last max_len)
    max_candidates: int = 1000  # items tried by influential-actions (x every behaviour)
    max_edits: int = 100  # additions + removals in one what-if
    max_body_bytes: int = 1_000_000  # request body
    max_json_depth: int = 32  # nesting of a body's arrays and objects (the API needs 3)


@dataclass(frozen=True)
class ServiceSettings:
    """Settings of one service process.

    ``api_keys`` maps a key to its scopes (``admin`` implies ``read`` and ``write``); ``None``
    reads them from the environment variable ``INFLUREC_API_KEYS`` (``key1:read,write;key2:admin``)
    when the app is created. ``store`` is an SQLite file (default ``RUN_DIR/events.sqlite3``)
    or a ``postgresql://`` URL. ``watch_s``: reload whenever the target of ``run_dir`` (a
    symbolic link, e.g. ``current``) changes, checked every ``watch_s`` seconds.
    """

    run_dir: Path
    store: Path | str | None = None
    api_keys: Mapping[str, frozenset[str]] | None = None
    limits: Limits = field(default_factory=Limits)
    watch_s: float | None = None

    @property
    def store_location(self) -> Path | str:
        """The event store: a ``postgresql://`` URL as given, else an SQLite file's path."""
        if self.store is None:
            return Path(self.run_dir) / "events.sqlite3"
        return self.store if is_postgres(self.store) else Path(self.store)

    def resolved_keys(self, environ: Mapping[str, str] | None = None) -> dict[str, frozenset[str]]:
        """The API keys with their expanded scopes (from the settings, else the environment)."""
        if self.api_keys is not None:
            return {
                key: expand_scopes(scopes, where=f"api_keys entry {number}")
                for number, (key, scopes) in enumerate(self.api_keys.items(), start=1)
            }
        env = os.environ if environ is None else environ
        return parse_api_keys(env.get(API_KEYS_ENV, ""))


def expand_scopes(
    scopes: frozenset[str] | set[str] | tuple[str, ...], *, where: str
) -> frozenset[str]:
    """The scopes a key grants; ``where`` names the key's entry in errors (a key itself, even
    part of one, is never shown: error lines end up in logs)."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise InputError(
            f"{where}: scopes must be some of {', '.join(SCOPES)}, got "
            f"{', '.join(sorted(scopes)) or 'none'}"
        )
    return frozenset({"read", "write", "admin"} if "admin" in scopes else scopes)


def parse_api_keys(text: str) -> dict[str, frozenset[str]]:
    """``key1:read,write;key2:admin`` -> {key: scopes}; empty entries are ignored.

    Raises InputError naming the entry (never the whole key) when one is malformed.
    """
    keys: dict[str, frozenset[str]] = {}
    for number, entry in enumerate(text.split(";"), start=1):
        entry = entry.strip()
        if not entry:
            continue
        key, sep, scopes = entry.rpartition(":")
        if not sep or not key.strip():
            raise InputError(
                f"{API_KEYS_ENV} entry {number}: expected KEY:SCOPE[,SCOPE], "
                "e.g. 'k1:read,write;k2:admin'"
            )
        names = {s.strip() for s in scopes.split(",") if s.strip()}
        keys[key.strip()] = expand_scopes(names, where=f"{API_KEYS_ENV} entry {number}")
    return keys
