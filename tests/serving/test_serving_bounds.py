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
from influrec.serving.sqlite_store import SqliteStore
from influrec.serving.store import StoredEvent
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
    store = SqliteStore(tmp_path / "old.sqlite3")
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


def test_k_over_the_catalogue_is_clamped_and_never_lists_padding(
    value_run: Path, tmp_path: Path
) -> None:
    """30 items in the run; k up to the limits (100, and 50 explained here) is answered."""
    limits = Limits(max_explain_k=50)
    with start(value_run, tmp_path / "e.sqlite3", limits) as client:
        ids = {f"i{n}" for n in range(1, 31)}
        for user in ("u2", "nobody"):
            recs = client.get(
                f"/v1/users/{user}/recommendations?k=100&exclude_seen=false", headers=ADMIN
            ).json()
            items = [r["item"] for r in recs["recommendations"]]
            assert recs["k"] == 30 and len(items) == 30 and set(items) == ids, user
            every = {"user": user, "k": 100, "exclude_seen": False}
            whatif = client.post("/v1/whatif", json=every, headers=ADMIN)
            assert whatif.status_code == 200, whatif.text
            body = whatif.json()
            assert body["k"] == 30 and set(body["before"]) == set(body["after"]) == ids
            ranks = [c[when] for c in body["rank_changes"].values() for when in ("before", "after")]
            assert all(1 <= rank <= 30 for rank in ranks)  # equal scores share a rank
            actions = client.get(
                f"/v1/users/{user}/influential-actions?k=100&candidates=1000&top=3",
                headers=ADMIN,
            )
            assert actions.status_code == 200, actions.text
            assert actions.json()["k"] == 30
            assert all(len(a["new_top"]) == 30 for a in actions.json()["actions"])
        for measure, k in (("score", 30), ("margin", 29)):  # a margin needs a (k+1)-th item
            explained = client.get(
                f"/v1/users/u2/explanations?k=40&measure={measure}&exclude_seen=false",
                headers=ADMIN,
            ).json()
            assert explained["k"] == k and len(explained["recommendations"]) == k
            for r in explained["recommendations"]:
                assert math.isfinite(r["value"]), (measure, r)
                assert all(math.isfinite(e["effect"]) for e in r["events"]), (measure, r)


def test_openapi_publishes_the_configured_limits_of_k_and_candidates(
    value_run: Path, tmp_path: Path
) -> None:
    limits = Limits(max_k=7, max_explain_k=4, max_candidates=9, max_batch=11, max_edits=5)
    with start(value_run, tmp_path / "e.sqlite3", limits) as client:
        spec = client.get("/openapi.json").json()
        bounds = {}
        for path, operations in spec["paths"].items():
            for operation in operations.values():
                for p in operation.get("parameters", []):
                    if p["name"] in ("k", "candidates"):
                        bounds[(path, p["name"])] = (p["schema"]["minimum"], p["schema"]["maximum"])
        users = "/v1/users/{user_id}"
        assert bounds == {
            (f"{users}/recommendations", "k"): (1, 7),
            (f"{users}/explanations", "k"): (1, 4),
            (f"{users}/influential-actions", "k"): (1, 7),
            (f"{users}/influential-actions", "candidates"): (1, 9),
            (f"{users}/why-not", "k"): (1, 7),
            (f"{users}/why-not", "candidates"): (1, 9),
        }
        schemas = spec["components"]["schemas"]
        whatif = schemas["WhatIfRequest"]["properties"]
        assert (whatif["k"]["minimum"], whatif["k"]["maximum"]) == (1, 7)
        assert whatif["add"]["maxItems"] == whatif["remove"]["maxItems"] == 5
        assert schemas["EventBatch"]["properties"]["events"]["maxItems"] == 11
        assert "x-influrec" not in str(spec)
        # and the service holds to what it publishes
        for path, code in [
            ("/v1/users/u2/recommendations?k=7", 200),
            ("/v1/users/u2/recommendations?k=8", 422),
            ("/v1/users/u2/explanations?k=5", 422),
            ("/v1/users/u2/influential-actions?candidates=9&k=2", 200),
            ("/v1/users/u2/influential-actions?candidates=10", 422),
        ]:
            assert client.get(path, headers=ADMIN).status_code == code, path
        assert (
            client.post("/v1/whatif", json={"user": "u2", "k": 8}, headers=ADMIN).status_code == 422
        )
