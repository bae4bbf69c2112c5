"""``influrec serve`` as a real process: ingest, answer, erase, get SIGKILLed, restart, and
still hold every acknowledged event exactly once with the erased user still erased."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from influrec.cli.main import main

START_TIMEOUT_S = 90
ADMIN = {"Authorization": "Bearer e2e-admin"}
READ = {"Authorization": "Bearer e2e-read"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(run: Path, store: Path, log: Path) -> Iterator[tuple[httpx.Client, subprocess.Popen]]:
    """A started ``influrec serve``; always killed on the way out."""
    port = free_port()
    env = {**os.environ, "INFLUREC_API_KEYS": "e2e-admin:admin;e2e-read:read"}
    command = [sys.executable, "-m", "influrec.cli.main", "serve", str(run)]
    command += ["--port", str(port), "--store", str(store)]
    with log.open("ab") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert process.poll() is None, f"server exited early:\n{log.read_text()}"
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (
                f"no /healthz in {START_TIMEOUT_S}s:\n{log.read_text()}"
            )
            time.sleep(0.2)
        yield client, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def stored_rows(store: Path) -> list[tuple]:
    with sqlite3.connect(store) as db:
        return db.execute("SELECT user_id, item_id, event_id FROM events ORDER BY seq").fetchall()


def test_serve_survives_sigkill_with_every_acknowledged_event(
    served_run: Path, tmp_path: Path
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
        assert "influrec_events_stored_total 20" in client.get("/metrics").text
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
