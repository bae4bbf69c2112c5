"""HTTP answers name items by their titles (a slice of ML-100k, skipped when it is absent)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from influrec.serving.app import create_app
from influrec.serving.settings import ServiceSettings
from tests_helpers import ml100k_slice_run, ml100k_titles

READ = {"Authorization": "Bearer reader-key"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    root = tmp_path_factory.mktemp("serving-names")
    settings = ServiceSettings(
        ml100k_slice_run(root),
        store=root / "events.sqlite3",
        api_keys={"reader-key": frozenset({"read"})},
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_recommendations_and_explanations_carry_titles(client: TestClient) -> None:
    titles = ml100k_titles()
    recs = client.get("/v1/users/13/recommendations?k=3", headers=READ).json()
    assert [r["title"] for r in recs["recommendations"]] == [
        titles[r["item"]] for r in recs["recommendations"]
    ]
    explained = client.get("/v1/users/13/explanations?k=1", headers=READ).json()
    first = explained["recommendations"][0]
    assert first["title"] == titles[first["item"]]
    assert first["sentence"].startswith(f"{first['title']} is recommended")
    assert all(e["title"] == titles[e["item"]] for e in first["events"])
    assert explained["history_events"] > explained["events_explained"] == len(first["events"])
