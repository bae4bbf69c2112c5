"""Any user id that can be stored can be read and erased, through a real uvicorn server (the
TestClient builds its own ASGI scope, so only a real server shows how paths are decoded)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

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
