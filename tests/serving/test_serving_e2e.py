"""``influrec serve`` as a real process: ingest, answer, erase, get SIGKILLed, restart, and
still hold every acknowledged event exactly once with the erased user still erased."""

from __future__ import annotations

import signal
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from influrec.cli.main import main

ADMIN = {"Authorization": "Bearer e2e-admin"}
READ = {"Authorization": "Bearer e2e-read"}


def stored_rows(store: Path) -> list[tuple]:
    with sqlite3.connect(store) as db:
        return db.execute("SELECT user_id, item_id, event_id FROM events ORDER BY seq").fetchall()


def test_serve_survives_sigkill_with_every_acknowledged_event(
    served_run: Path, tmp_path: Path, server: Callable[..., Any]
) -> None:
    store, log = tmp_path / "events.sqlite3", tmp_path / "server.log"
    batches = [
        [
            {"user": user, "item": f"i{n % 30 + 1}", "behavior": "buy", "event_id": f"{user}-{n}"}
            for n in range(start, start + 5)
        ]
        for user, start in [("u3", 0), ("newbie", 10), ("u5", 20), ("u3", 30)]
    ]
    acknowledged: list[str] = []
    with server(served_run, store, log) as (client, process):
        for batch in batches:
            response = client.post("/v1/events", json={"events": batch}, headers=ADMIN)
            assert response.status_code == 200 and response.json()["stored"] == 5
            acknowledged += [e["event_id"] for e in batch]
        recs = client.get("/v1/users/newbie/recommendations?k=5", headers=READ).json()
        assert recs["cold_start"] is False and recs["history"]["stored_events"] == 5
        explained = client.get("/v1/users/u3/explanations?k=2", headers=READ).json()
        assert len(explained["recommendations"]) == 2
        erased = client.delete("/v1/users/u5", headers=ADMIN).json()
        assert erased == {"user": "u5", "events_deleted": 5, "erased": True}
        assert "influrec_events_stored_total 20.0" in client.get("/metrics").text
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    kept = [e for e in acknowledged if not e.startswith("u5-")]
    assert sorted(row[2] for row in stored_rows(store)) == sorted(kept)

    with server(served_run, store, log) as (client, _):
        assert client.get("/healthz").json()["events_in_store"] == 15
        retry = client.post("/v1/events", json={"events": batches[0]}, headers=ADMIN).json()
        assert retry["stored"] == 0 and retry["duplicates"] == 5
        u5 = client.get("/v1/users/u5/recommendations", headers=READ).json()
        assert u5["cold_start"] is True and u5["history"]["erased"] is True
        u3 = client.get("/v1/users/u3/recommendations", headers=READ).json()
        assert u3["history"]["stored_events"] == 10 and u3["history"]["trained_events"] > 0
    rows = stored_rows(store)
    assert len(rows) == len({r[2] for r in rows}) == 15  # each acknowledged event exactly once


def test_serve_refuses_to_start_without_keys_or_run(
    served_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("INFLUREC_API_KEYS", raising=False)
    assert main(["serve", str(served_run), "--port", "1"]) == 2
    monkeypatch.setenv("INFLUREC_API_KEYS", "k:read")
    assert main(["serve", str(tmp_path / "no-run"), "--port", "1"]) == 2
    monkeypatch.setenv("INFLUREC_API_KEYS", "k:sudo")
    assert main(["serve", str(served_run), "--port", "1"]) == 2
