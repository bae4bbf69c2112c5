"""Several ``influrec serve`` processes on one real PostgreSQL server: a worker SIGKILLed in the
middle of an ingestion loses and duplicates nothing once the client retries on another worker,
and every worker reads every acknowledged write."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ADMIN = {"Authorization": "Bearer e2e-admin"}
READ = {"Authorization": "Bearer e2e-read"}


def event_ids(url: str) -> list[str]:
    import psycopg

    with psycopg.connect(url) as db:
        rows = db.execute("SELECT event_id FROM influrec_events ORDER BY seq").fetchall()
    return [row[0] for row in rows]


def batch(user: str, start: int, size: int) -> list[dict[str, Any]]:
    return [
        {"user": user, "item": f"i{n % 30 + 1}", "behavior": "view", "event_id": f"{user}-{n}"}
        for n in range(start, start + size)
    ]


def test_two_workers_share_events_and_a_killed_one_loses_nothing(
    served_run: Path, tmp_path: Path, server: Callable[..., Any], postgres_cluster: Any
) -> None:
    url = postgres_cluster.create_database()
    with (
        server(served_run, url, tmp_path / "a.log") as (a, process_a),
        server(served_run, url, tmp_path / "b.log") as (b, _),
    ):
        first = a.post("/v1/events", json={"events": batch("newbie", 0, 5)}, headers=ADMIN)
        assert first.json()["stored"] == 5
        seen = b.get("/v1/users/newbie/recommendations?k=3", headers=READ).json()
        assert seen["history"]["stored_events"] == 5 and seen["cold_start"] is False

        # A big batch goes to worker A, which is killed while it may be mid-transaction.
        big = batch("u7", 0, 1000)
        answers: list[Any] = []

        def send() -> None:
            try:
                answers.append(a.post("/v1/events", json={"events": big}, headers=ADMIN))
            except httpx.TransportError as exc:
                answers.append(exc)

        sender = threading.Thread(target=send)
        sender.start()
        time.sleep(0.05)
        process_a.send_signal(signal.SIGKILL)
        sender.join(timeout=60)
        process_a.wait(timeout=30)
        # The client did not get (or cannot trust) an answer: it retries on worker B.
        retry = b.post("/v1/events", json={"events": big}, headers=ADMIN).json()
        assert retry["stored"] + retry["duplicates"] == 1000

        assert b.delete("/v1/users/newbie", headers=ADMIN).json()["events_deleted"] == 5
    stored = event_ids(url)
    assert sorted(stored) == sorted(e["event_id"] for e in big)  # each once, newbie erased

    with server(served_run, url, tmp_path / "a.log") as (a_again, _):
        assert a_again.get("/healthz").json()["events_in_store"] == 1000
        gone = a_again.get("/v1/users/newbie/recommendations", headers=READ).json()
        assert gone["history"]["erased"] is True and gone["cold_start"] is True
