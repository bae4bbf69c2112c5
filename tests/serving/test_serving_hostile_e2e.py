"""Hostile requests against a real uvicorn server (the TestClient builds its own ASGI scope,
so only a real server shows how paths are decoded and what reaches the log): any stored user id
can be read and erased, odd bodies get the documented 422, and API keys are never echoed."""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from influrec.cli.main import main

ADMIN = {"Authorization": "Bearer e2e-admin"}
ODD_IDS = [
    "a/b",
    "/lead",
    "trail/",
    "a//b",
    "50%",
    "a%2Fb",  # literally percent, 2, F: must not be read as "a/b"
    "with space",
    "ünï/çødé 東京",
    "x/recommendations",  # ends like a route
    "q?x=1#frag",
    "%2E%2E",
    "...",
    ".",  # dot segments: sent as %2E, or the client itself removes them from the path
    "..",
]


def path_of(user: str, suffix: str = "") -> str:
    encoded = quote(user, safe="")
    if user in (".", ".."):
        encoded = encoded.replace(".", "%2E")
    return f"/v1/users/{encoded}{suffix}"


def rows_of(store: Path, user: str) -> int:
    with sqlite3.connect(store) as db:
        return int(
            db.execute("SELECT count(*) FROM events WHERE user_id = ?", (user,)).fetchone()[0]
        )


def test_odd_user_ids_are_read_and_erased_through_a_real_server(
    served_run: Path, tmp_path: Path, server: Callable[..., Any]
) -> None:
    store, log = tmp_path / "events.sqlite3", tmp_path / "server.log"
    users = [*ODD_IDS, "a"]  # "a" is a prefix of "a/b" and must survive its erasure
    events = [
        {"user": user, "item": f"i{n + 1}", "behavior": "buy", "timestamp": 100 + n}
        for user in users
        for n in range(2)
    ]
    with server(served_run, store, log) as (client, _):
        assert client.post("/v1/events", json={"events": events}, headers=ADMIN).json()[
            "stored"
        ] == 2 * len(users)
        for user in ODD_IDS:
            for suffix in (
                "/recommendations?k=3",
                "/explanations?k=2",
                "/influential-actions?k=2&candidates=3&top=2",
            ):
                response = client.get(path_of(user, suffix), headers=ADMIN)
                assert response.status_code == 200, (user, suffix, response.text)
                body = response.json()
                assert body["user"] == user and body["history"]["stored_events"] == 2, (user, body)
            whatif = client.post(
                "/v1/whatif", json={"user": user, "k": 3, "remove": [1]}, headers=ADMIN
            )
            assert whatif.status_code == 200 and whatif.json()["history"]["stored_events"] == 2
            erased = client.delete(path_of(user), headers=ADMIN)
            assert erased.json() == {"user": user, "events_deleted": 2, "erased": True}, user
            assert rows_of(store, user) == 0, user
            after = client.get(path_of(user, "/recommendations"), headers=ADMIN).json()
            assert after["history"]["erased"] is True and after["cold_start"] is True
        assert rows_of(store, "a") == 2
    with sqlite3.connect(store) as db:
        erased_ids = {row[0] for row in db.execute("SELECT user_id FROM erased_users")}
        left = {row[0] for row in db.execute("SELECT DISTINCT user_id FROM events")}
    assert erased_ids == set(ODD_IDS) and left == {"a"}


SECRET = "Qz7vXk2LpW9rT4mB"  # a key nobody has: distinctive, so any echo of it can be found


def leaks(text: str, key: str = SECRET, part: int = 5) -> list[str]:
    """The pieces of ``key`` (``part`` characters or more) that appear in ``text``."""
    return [key[i : i + part] for i in range(len(key) - part + 1) if key[i : i + part] in text]


def test_bad_keys_are_never_echoed_in_answers_or_the_log(
    served_run: Path, tmp_path: Path, server: Callable[..., Any]
) -> None:
    log = tmp_path / "server.log"
    basic = base64.b64encode(f"{SECRET}:x".encode()).decode()
    headers = [
        {"Authorization": f"Bearer {SECRET}"},
        {"Authorization": f"bearer {SECRET}"},
        {"Authorization": f"Bearer {SECRET} trailing"},
        {"Authorization": SECRET},
        {"Authorization": f"Basic {basic}"},
        {"Authorization": f"Token {SECRET}"},
        {"X-API-Key": SECRET},
        {"Authorization": f"Bearer {SECRET[:-1]}"},  # a near miss of a key
    ]
    recs = "/v1/users/u2/recommendations"
    with server(served_run, tmp_path / "events.sqlite3", log) as (client, _):
        answers = [client.get(recs, headers=h) for h in headers]
        answers += [client.post("/v1/whatif", json={"user": "u2"}, headers=h) for h in headers]
        answers += [
            client.get(f"{recs}?api_key={SECRET}"),
            client.get(f"{recs}?k={SECRET}&api_key={SECRET}", headers=ADMIN),
            client.delete(f"/v1/users/u2?token={SECRET}", headers={"Authorization": SECRET}),
        ]
        for answer in answers:
            assert answer.status_code in (401, 422), answer.text
            assert answer.json()["error"]["code"] in ("unauthorized", "validation_error")
            shown = answer.text + "".join(f"{k}: {v}" for k, v in answer.headers.items())
            assert leaks(shown) == [], (answer.request.url, answer.request.headers, shown)
    text = log.read_text()
    assert text.count("GET /v1/users/{user_id}/recommendations 401") == len(headers) + 1
    assert leaks(text) == [], text


@pytest.mark.parametrize("entry", [f"{SECRET}:sudo", f"{SECRET}:", f"ok:read;{SECRET}:root"])
def test_a_malformed_key_entry_is_named_by_number_not_by_key(
    served_run: Path, entry: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("INFLUREC_API_KEYS", entry)
    assert main(["serve", str(served_run), "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "INFLUREC_API_KEYS entry" in err and leaks(err, part=4) == [], err


def test_bodies_that_are_not_utf8_or_too_deep_get_the_422_shape(
    served_run: Path, tmp_path: Path, server: Callable[..., Any]
) -> None:
    json_type = {**ADMIN, "content-type": "application/json"}
    bodies = {
        "latin-1": '{"events": [{"user": "é", "item": "i3", "behavior": "buy"}]}'.encode("latin-1"),
        "utf-16": '{"user": "u2"}'.encode("utf-16"),
        "bare bytes": b"\xff\xfe\x00garbage",
        "10,000 nested lists": b"[" * 10_000 + b"]" * 10_000,
        "deep in a field": b'{"user": "u2", "remove": ' + b"[" * 100 + b"]" * 100 + b"}",
        "nested objects": b'{"a": ' * 5_000 + b"1" + b"}" * 5_000,
    }
    with server(served_run, tmp_path / "events.sqlite3", tmp_path / "server.log") as (client, _):
        for name, body in bodies.items():
            for path in ("/v1/events", "/v1/whatif"):
                answer = client.post(path, content=body, headers=json_type)
                assert answer.status_code == 422, (name, path, answer.text)
                error = answer.json()["error"]
                assert set(error) == {"code", "message", "details"}, name
                assert error["code"] == "validation_error"
                assert [d["field"] for d in error["details"]] == ["body"], (name, error)
        # brackets inside strings are data, not nesting
        user = "[" * 200
        event = {"user": user, "item": "i3", "behavior": "buy"}
        assert (
            client.post("/v1/events", json={"events": [event]}, headers=ADMIN).json()["stored"] == 1
        )
        assert client.get(path_of(user, "/recommendations"), headers=ADMIN).json()["user"] == user
