"""The online-learning loop live: a real `influrec serve`, a new item's events ingested, then
update (from the store) and reload, while readers ask throughout: no request fails, and the new
item becomes recommendable for a user whose behaviour points to it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from influrec.cli.main import main
from load_generator import Load
from tests_helpers import train_tiny_run

ADMIN = {"Authorization": "Bearer admin-key"}
READ = {"Authorization": "Bearer reader-key"}
START = 1_800_000_000  # after the synthetic data's last event


def pattern(user: str, t: int) -> list[dict[str, object]]:
    """The new behaviour: a view of i3, then a buy of the new item, twice."""
    events: list[dict[str, object]] = []
    for n in range(2):
        events.append({"user": user, "item": "i3", "behavior": "view", "timestamp": t + 20 * n})
        events.append(
            {"user": user, "item": "i-new", "behavior": "buy", "timestamp": t + 20 * n + 10}
        )
    return events


@pytest.mark.slow
def test_ingest_update_reload_makes_a_new_item_recommendable_without_a_failed_request(
    server: Callable, tmp_path: Path
) -> None:
    run = train_tiny_run(tmp_path / "first", epochs=2)
    store, log = tmp_path / "events.sqlite3", tmp_path / "serve.log"
    keys = "admin-key:admin;reader-key:read"
    with (
        server(run, store, log, keys=keys) as (client, _),
        Load(str(client.base_url), [f"u{n}" for n in range(1, 3)], headers=READ, threads=2) as load,
    ):
        events = [e for n in range(1, 31) for e in pattern(f"u{n}", START + 1000 * n)]
        sent = client.post("/v1/events", json={"events": events}, headers=ADMIN)
        assert sent.status_code == 200, sent.text
        probe = {"user": "u35", "item": "i3", "behavior": "view", "timestamp": START + 10**6}
        assert client.post("/v1/events", json={"events": [probe]}, headers=ADMIN).is_success

        def top(k: int = 10) -> list[str]:
            answer = client.get(f"/v1/users/u35/recommendations?k={k}", headers=READ).json()
            return [r["item"] for r in answer["recommendations"]]

        assert "i-new" not in top()  # the served model does not know it
        update = ["update", str(run), "--events", str(store), "--out", str(tmp_path / "run2")]
        assert main([*update, "--epochs", "12", "--lr-scale", "1", "--no-progress"]) == 0
        swapped = client.post(
            "/v1/admin/reload", json={"run": str(tmp_path / "run2")}, headers=ADMIN
        )
        assert swapped.status_code == 200, swapped.text
        assert swapped.json()["items_added"] == 1
        assert "i-new" in top()
    statuses = {status for _, status, _, _ in load.answers}
    assert not load.failures and len(load.answers) > 10 and statuses == {200}, statuses
