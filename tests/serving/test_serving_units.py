"""The service's parts on their own: API-key parsing, the SQLite store, metrics, body limit."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from influrec.errors import InputError
from influrec.serving.metrics import Metrics
from influrec.serving.middleware import BodyLimitMiddleware, nesting_depth
from influrec.serving.settings import ServiceSettings, parse_api_keys
from influrec.serving.sqlite_store import SqliteStore
from influrec.serving.store import StoredEvent
from tests_helpers import metric_samples


def test_api_keys_parse_and_admin_implies_read_and_write() -> None:
    keys = parse_api_keys(" k1:read,write ; k2:admin;;k:3:read ")
    assert keys == {
        "k1": frozenset({"read", "write"}),
        "k2": frozenset({"read", "write", "admin"}),
        "k:3": frozenset({"read"}),
    }
    assert parse_api_keys("") == {}
    for bad in ("k1", ":read", "k1:", "k1:read,delete"):
        with pytest.raises(InputError, match=r"INFLUREC_API_KEYS|scopes"):
            parse_api_keys(bad)
    settings = ServiceSettings(Path("runs/x"), api_keys={"a": frozenset({"admin"})})
    assert settings.resolved_keys({"INFLUREC_API_KEYS": "b:read"}) == {
        "a": frozenset({"read", "write", "admin"})
    }
    from_env = ServiceSettings(Path("runs/x"))
    assert from_env.resolved_keys({"INFLUREC_API_KEYS": "b:read"}) == {"b": frozenset({"read"})}
    assert from_env.store_location == Path("runs/x/events.sqlite3")


def event(user: str, item: str, t: int, event_id: str | None = None) -> StoredEvent:
    return StoredEvent(user, item, "view", t, None, event_id)


def test_sqlite_store_is_wal_with_full_sync(tmp_path: Path) -> None:
    """SQLite's durability settings (the contract shared with PostgreSQL is in
    test_store_contract.py)."""
    store = SqliteStore(tmp_path / "s.sqlite3")
    assert store.append([event("u", "late", 20), event("u", "a", 10), event("v", "x", 1)]) == [
        True,
        True,
        True,
    ]
    assert store.append([event("u", "b", 10)]) == [True]
    assert [e.item_id for e in store.user_events("u")] == ["a", "b", "late"]
    assert [e.item_id for e in store.user_events("u", limit=2)] == ["b", "late"]
    connection = store._connection()
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert connection.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    store.close()


def test_metrics_render_escapes_labels_and_accumulates_buckets() -> None:
    metrics = Metrics()
    for seconds in (0.001, 0.02, 0.02, 100.0):
        metrics.observe(method="GET", route='/a"b', status=200, seconds=seconds)
    metrics.count_events(stored=5, duplicates=1)
    text = metrics.render(events_in_store=7)
    assert 'route="/a\\"b"' in text  # the quote is escaped in the exposition text
    samples = metric_samples(text)
    route = {("method", "GET"), ("route", '/a"b')}

    def bucket(le: str) -> float:
        return samples[
            ("influrec_http_request_duration_seconds_bucket", frozenset({*route, ("le", le)}))
        ]

    assert samples[("influrec_http_requests_total", frozenset({*route, ("status", "200")}))] == 4
    assert [bucket("0.005"), bucket("0.025"), bucket("30.0"), bucket("+Inf")] == [1, 3, 3, 4]
    assert samples[("influrec_http_request_duration_seconds_sum", frozenset(route))] == 100.041
    assert samples[("influrec_events_stored_total", frozenset())] == 5
    assert samples[("influrec_events_duplicate_total", frozenset())] == 1
    assert samples[("influrec_store_events", frozenset())] == 7


def run_middleware(headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> tuple[int, bytes]:
    """Status and body the app received, through a 1000-byte BodyLimitMiddleware."""
    seen: dict[str, Any] = {}
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        seen["body"] = body
        await send({"type": "http.response.start", "status": 200, "headers": []})

    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "headers": headers}
    asyncio.run(BodyLimitMiddleware(app, max_bytes=1000)(scope, receive, send))
    return sent[0]["status"], seen.get("body", b"")


def test_body_limit_counts_streamed_bytes_and_replays_small_bodies() -> None:
    assert run_middleware([], [b"x" * 400] * 3) == (413, b"")  # no Content-Length
    assert run_middleware([(b"content-length", b"5000")], [b"x"]) == (413, b"")
    assert run_middleware([], [b"x" * 400, b"y" * 400]) == (200, b"x" * 400 + b"y" * 400)


def reference_depth(value: Any) -> int:
    """Nesting of a parsed JSON value, the obvious recursive way."""
    if isinstance(value, list):
        return 1 + max((reference_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((reference_depth(v) for v in value.values()), default=0)
    return 0


@pytest.mark.parametrize(
    "value",
    [
        1,
        "[[[{{",
        [],
        {"a": [1, {"b": []}], "c": "]]}}\\"},
        [["[", '"]"', "\\\\", ['\\"[']], {"k[": {"{": []}}],
        {"events": [{"user": "u", "item": "i", "value": 1.5}] * 3},
    ],
)
def test_nesting_depth_matches_parsing(value: Any) -> None:
    text = json.dumps(value)
    assert nesting_depth(text) == reference_depth(json.loads(text)), text


@pytest.mark.parametrize("backslashes", range(6))
def test_nesting_depth_counts_escaping_backslashes(backslashes: int) -> None:
    """A quote after an odd run of backslashes is escaped (the string goes on), after an even
    run it closes the string: the bracket after it counts only then."""
    value = [{"s": "\\" * backslashes + '"[' * 2}, [[]]]
    text = json.dumps(value)
    assert nesting_depth(text) == reference_depth(value) == 3, text


def test_nesting_depth_of_an_unclosed_string_full_of_escaped_quotes() -> None:
    """The shape that made a regex scan quadratic: never closed, so nothing after counts."""
    text = '[[{"x": "' + '\\"' * 200_000 + "[[[["
    assert nesting_depth(text) == 3
