"""The whole online loop on a live service: a new item's events are ingested, the store is
exported, the run updated and reloaded, and the item becomes recommendable for a user whose
behaviour points to it, while a load generator sees no failed request."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from influrec.cli.main import main
from influrec.serving.versions import model_version
from load_generator import Load
from tests_helpers import train_tiny_run

KEYS = "admin-key:admin;reader-key:read;writer-key:write"
READ = {"Authorization": "Bearer reader-key"}
WRITE = {"Authorization": "Bearer writer-key"}
ADMIN = {"Authorization": "Bearer admin-key"}
NEW = "i-new"  # an item no run has seen
T0 = 1_800_000_000  # after the synthetic data's times


def planted_events() -> list[dict]:
    """40 new users who, six times each, view i5 and then buy the new item."""
    pair = [("i5", "view"), (NEW, "buy")]
    return [
        {"user": f"n{u}", "item": item, "behavior": behavior, "timestamp": T0 + 1000 * u + t}
        for u in range(40)
        for t, (item, behavior) in enumerate(pair * 6)
    ]


@pytest.mark.slow
def test_ingest_export_update_reload_makes_a_new_item_recommendable_under_load(
    server: Callable, tmp_path: Path
) -> None:
    run = train_tiny_run(tmp_path / "first")
    store, data, updated = tmp_path / "events.sqlite3", tmp_path / "logged", tmp_path / "second"
    probe = "probe-user"  # their last event is a view of i5, which points to the new item
    history = [{"user": probe, "item": "i3", "behavior": "view", "timestamp": T0 + 99_000}]
    history += [{"user": probe, "item": "i5", "behavior": "view", "timestamp": T0 + 99_010}]
    with server(run, store, tmp_path / "serve.log", keys=KEYS) as (client, _):

        def top(user: str) -> dict:
            return client.get(f"/v1/users/{user}/recommendations?k=5", headers=READ).json()

        with Load(str(client.base_url), ["u1", "u2", probe, "n3"], headers=READ) as load:
            for chunk in range(0, len(planted_events()), 200):
                body = {"events": planted_events()[chunk : chunk + 200]}
                ingested = client.post("/v1/events", json=body, headers=WRITE).json()
                assert ingested["unknown_items"] == [NEW]
            client.post("/v1/events", json={"events": history}, headers=WRITE)
            before = top(probe)
            assert before["model"] == model_version(run).id
            assert NEW not in [r["item"] for r in before["recommendations"]]
            assert main(["data", "export-store", str(store), "--out", str(data)]) == 0
            argv = ["update", str(run), "--events", str(data), "--out", str(updated)]
            assert main([*argv, "--epochs", "20", "--lr-scale", "1", "--no-progress"]) == 0
            swapped = client.post("/v1/admin/reload", json={"run": str(updated)}, headers=ADMIN)
            assert swapped.status_code == 200, swapped.text
            assert swapped.json()["items_added"] == 1
            assert swapped.json()["stored_items_unknown"] == 0
            after = top(probe)
            assert after["model"] == model_version(updated).id
            assert NEW in [r["item"] for r in after["recommendations"]], after
            assert after["history"]["events_used"] == 2  # trained now: used once, not twice
            assert after["history"]["stored_events_skipped"] == 2
    assert load.failures == []
    statuses = [status for _, status, _, _ in load.answers]
    assert len(statuses) > 20 and set(statuses) == {200}, sorted(set(statuses))
    assert {header for _, _, header, _ in load.answers} == {
        model_version(run).id,
        model_version(updated).id,
    }
