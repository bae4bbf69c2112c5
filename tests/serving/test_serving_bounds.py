"""Numbers at the HTTP boundary: values and times the model can read, bounded k, clamped to
the catalogue, and the limits published in the OpenAPI schema."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from influrec.serving.app import create_app
from influrec.serving.schemas import MAX_ABS_VALUE, MAX_TIMESTAMP
from influrec.serving.settings import Limits, ServiceSettings
from influrec.serving.store import EventStore, StoredEvent
from tests_helpers import train_tiny_run

ADMIN = {"Authorization": "Bearer admin-key"}
KEYS = {"admin-key": frozenset({"admin"})}


@pytest.fixture(scope="module")
def value_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny run whose model reads event values (a value embedding), items i1..i30."""
    return train_tiny_run(tmp_path_factory.mktemp("values"), extra=("model.use_value=true",))


def start(run: Path, store: Path, limits: Limits | None = None) -> TestClient:
    settings = ServiceSettings(run, store=store, api_keys=KEYS, limits=limits or Limits())
    return TestClient(create_app(settings))


def event(user: str, **fields: object) -> dict:
    return {"user": user, "item": "i3", "behavior": "buy", **fields}


def test_values_the_model_cannot_read_are_refused_naming_the_field(
    value_run: Path, tmp_path: Path
) -> None:
    with start(value_run, tmp_path / "e.sqlite3") as client:
        for value in (1e39, -1e39, 3e38, -3e38, MAX_ABS_VALUE * 1.001, 1e20):
            body = {"events": [event("ok"), event("big", value=value)]}
            response = client.post("/v1/events", json=body, headers=ADMIN)
            assert response.status_code == 422, (value, response.text)
            error = response.json()["error"]
            assert error["code"] == "validation_error"
            assert [(d["index"], d["field"]) for d in error["details"]] == [(1, "value")]
            assert "1000000000000000" in error["details"][0]["message"]
        assert client.get("/healthz").json()["events_in_store"] == 0
        # the bound itself is accepted, and the model still answers with finite scores
        for value in (MAX_ABS_VALUE, -MAX_ABS_VALUE):
            body = {"events": [event(f"edge{value}", value=value, timestamp=MAX_TIMESTAMP)]}
            assert client.post("/v1/events", json=body, headers=ADMIN).status_code == 200
            recs = client.get(f"/v1/users/edge{value}/recommendations?k=5", headers=ADMIN).json()
            assert len(recs["recommendations"]) == 5
            assert all(math.isfinite(r["score"]) for r in recs["recommendations"])


def test_stored_rows_out_of_bounds_are_skipped_not_fed_to_the_model(
    value_run: Path, tmp_path: Path
) -> None:
    """A store written before the bounds (or by hand) must not turn answers into []."""
    store = EventStore(tmp_path / "old.sqlite3")
    store.append(
        [
            StoredEvent("old", "i3", "buy", 100, 3e38),  # finite in float32, NaN in the model
            StoredEvent("old", "i4", "buy", 101, 1e39),  # inf in float32
            StoredEvent("old", "i5", "buy", -5, None),
            StoredEvent("old", "i6", "buy", 102, 2.5),
        ]
    )
    store.close()
    with start(value_run, tmp_path / "old.sqlite3") as client:
        recs = client.get("/v1/users/old/recommendations?k=5", headers=ADMIN).json()
        assert recs["history"]["stored_events"] == 1
        assert recs["history"]["stored_events_skipped"] == 3
        assert len(recs["recommendations"]) == 5
        whatif = client.post("/v1/whatif", json={"user": "old", "k": 3}, headers=ADMIN).json()
        assert all(change["before"] >= 1 for change in whatif["rank_changes"].values())


@pytest.mark.parametrize(
    "timestamp", [-1, 2**63, 2**64, -(2**63) - 1, 10**30, MAX_TIMESTAMP + 1, 1.5e9, "1700000000"]
)
def test_timestamps_out_of_int64_or_absurd_are_refused(
    value_run: Path, tmp_path: Path, timestamp: object
) -> None:
    with start(value_run, tmp_path / "e.sqlite3") as client:
        body = {"events": [event("t", timestamp=timestamp)]}
        response = client.post("/v1/events", json=body, headers=ADMIN)
        assert response.status_code == 422, response.text
        details = response.json()["error"]["details"]
        assert [(d["index"], d["field"]) for d in details] == [(0, "timestamp")]
        assert client.get("/healthz").json()["events_in_store"] == 0


def test_whatif_added_events_carry_no_unbounded_numbers(value_run: Path, tmp_path: Path) -> None:
    with start(value_run, tmp_path / "e.sqlite3") as client:
        for extra in ({"value": 1e39}, {"timestamp": 2**70}):
            body = {"user": "u2", "add": [{"item": "i3", **extra}], "k": 3}
            response = client.post("/v1/whatif", json=body, headers=ADMIN)
            assert response.status_code == 422, response.text
            (detail,) = response.json()["error"]["details"]
            assert detail["field"] == f"add.0.{next(iter(extra))}"
