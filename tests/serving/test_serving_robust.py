"""GET /v1/users/{id}/recommendations?robust=true: the library's robust ranking over HTTP,
ingested events included; 422 for an unknown low-intent behaviour."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from test_serving_api import assert_error, auth

from influrec.inference import Recommender
from influrec.influence.engine import extend
from influrec.influence.robust import robust_recommend


def test_robust_recommendations_equal_the_library(client: TestClient, served_run: Path) -> None:
    events = [
        {"user": "u2", "item": item, "behavior": "view", "timestamp": 1_900_000_000 + i}
        for i, item in enumerate(["i7", "i12", "i3"])
    ]
    assert client.post("/v1/events", json={"events": events}, headers=auth()).status_code == 200
    rec = Recommender.load(served_run)
    ingested, unknown = rec.history_from_records(events)
    assert not unknown
    columns = (ingested.items, ingested.behaviors, ingested.timestamps, ingested.values)
    history = extend(rec.user_history("u2"), list(zip(*(c.tolist() for c in columns), strict=True)))

    def items(url: str) -> list[str]:
        response = client.get(url, headers=auth("reader-key"))
        assert response.status_code == 200, response.text
        return [r["item"] for r in response.json()["recommendations"]]

    url = "/v1/users/u2/recommendations?k=5"
    want = robust_recommend(rec, history, k=5, low_intent=["view"])
    assert items(url + "&robust=true&low_intent=view") == [r.item_id for r in want]
    assert items(url) == [r.item_id for r in rec.recommend(history, k=5)]
    bad = client.get(url + "&robust=true&low_intent=click", headers=auth("reader-key"))
    assert (
        "unknown low-intent behaviour 'click'" in assert_error(bad, 422, "invalid_input")["message"]
    )
