"""Mutes over HTTP, on both event stores: stored, listed, undone, applied to every answer, and
erased with the user. A muted event's effect is checked against what-if's deletion of it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from influrec.serving.app import create_app
from influrec.serving.settings import ServiceSettings

KEYS = {
    "reader-key": frozenset({"read"}),
    "writer-key": frozenset({"write"}),
    "admin-key": frozenset({"admin"}),
}
READ = {"Authorization": "Bearer reader-key"}
WRITE = {"Authorization": "Bearer writer-key"}
ADMIN = {"Authorization": "Bearer admin-key"}


@pytest.fixture
def client(served_run: Path, store_location: Path | str) -> Iterator[TestClient]:
    settings = ServiceSettings(served_run, store=store_location, api_keys=KEYS)
    with TestClient(create_app(settings)) as started:
        yield started


def history_of(client: TestClient, user: str) -> list[dict]:
    """The events the model reads (its window), as answers list them, oldest first."""
    answer = client.get(f"/v1/users/{user}/explanations?k=1", headers=READ).json()
    return sorted(answer["recommendations"][0]["events"], key=lambda e: e["position"])


def top(client: TestClient, user: str) -> dict:
    return client.get(f"/v1/users/{user}/recommendations?k=5", headers=READ).json()


def mute(client: TestClient, user: str, **body: object) -> dict:
    answer = client.post(f"/v1/users/{user}/mutes", json=body, headers=WRITE)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_muted_event_leaves_every_answer_and_comes_back(client: TestClient) -> None:
    events = history_of(client, "u1")
    last = events[-1]
    before = top(client, "u1")
    without = client.post(
        "/v1/whatif", json={"user": "u1", "remove": [last["position"]], "k": 5}, headers=READ
    ).json()["after"]
    muted = mute(
        client, "u1", kind="event", item=last["item"], behavior=last["behavior"],
        timestamp=last["timestamp"],
    )  # fmt: skip
    assert muted["kind"] == "event" and muted["start"] == muted["end"] == last["timestamp"]
    assert mute(client, "u1", kind="event", item=last["item"], behavior=last["behavior"],
                timestamp=last["timestamp"]) == muted  # fmt: skip
    after = top(client, "u1")
    assert after["history"]["muted_events"] == 1
    assert after["history"]["events_used"] == before["history"]["events_used"] - 1
    assert [r["item"] for r in after["recommendations"]] == without
    key = ("item", "behavior", "timestamp")
    explained = [tuple(e[f] for f in key) for e in history_of(client, "u1")]
    assert tuple(last[f] for f in key) not in explained  # the window reaches one event further
    assert explained[1:] == [tuple(e[f] for f in key) for e in events[:-1]]
    for path in ("explanations?k=1", "influential-actions?k=3", "why-not?item=i3"):
        answer = client.get(f"/v1/users/u1/{path}", headers=READ).json()
        assert answer["history"]["muted_events"] == 1, path
    whatif = client.post("/v1/whatif", json={"user": "u1"}, headers=READ).json()
    assert whatif["history"]["muted_events"] == 1
    listed = client.get("/v1/users/u1/mutes", headers=READ).json()
    assert listed == {"user": "u1", "mutes": [muted]}
    undone = client.delete(f"/v1/users/u1/mutes/{muted['id']}", headers=WRITE)
    assert undone.status_code == 200 and undone.json()["mutes"] == []
    assert top(client, "u1") == before
    again = client.delete(f"/v1/users/u1/mutes/{muted['id']}", headers=WRITE)
    assert again.status_code == 404 and again.json()["error"]["code"] == "not_found"


def test_behaviour_and_window_mutes_cover_exactly_their_events(client: TestClient) -> None:
    events = history_of(client, "u2")
    behavior = events[-1]["behavior"]
    mute(client, "u2", kind="behavior", behavior=behavior)
    left = history_of(client, "u2")
    assert left and all(e["behavior"] != behavior for e in left)
    count = sum(e["behavior"] == behavior for e in events)
    assert top(client, "u2")["history"]["muted_events"] == count
    start, end = events[1]["timestamp"], events[3]["timestamp"]
    mute(client, "u3", kind="window", start=start, end=end)
    inside = [e for e in history_of(client, "u3") if start <= e["timestamp"] <= end]
    assert inside == []
    # another user's mutes are theirs only
    assert top(client, "u4")["history"]["muted_events"] == 0


def test_mutes_need_scopes_and_valid_bodies(client: TestClient) -> None:
    body = {"kind": "behavior", "behavior": "view"}
    assert client.post("/v1/users/u1/mutes", json=body).status_code == 401
    assert client.post("/v1/users/u1/mutes", json=body, headers=READ).status_code == 403
    assert client.get("/v1/users/u1/mutes", headers=WRITE).status_code == 403
    assert client.delete("/v1/users/u1/mutes/1", headers=READ).status_code == 403
    backwards = client.post(
        "/v1/users/u1/mutes", json={"kind": "window", "start": 9, "end": 3}, headers=WRITE
    )
    assert backwards.status_code == 422 and "start 9 is after end 3" in backwards.text
    for bad in ({"kind": "item", "item": "i1"}, {"kind": "behavior"}, {"behavior": "view"}):
        answer = client.post("/v1/users/u1/mutes", json=bad, headers=WRITE)
        assert answer.status_code == 422, bad
    assert client.get("/v1/users/u1/mutes", headers=READ).json()["mutes"] == []


def test_ids_with_slashes_and_erasure(client: TestClient) -> None:
    """`DELETE /v1/users/a%2Fb/mutes/1` unmutes (it is not the erasure of a user `a/b/mutes/1`),
    and erasing a user erases their mutes."""
    first = mute(client, "a%2Fb", kind="behavior", behavior="view")
    assert client.get("/v1/users/a%2Fb/mutes", headers=READ).json()["user"] == "a/b"
    assert client.delete(f"/v1/users/a%2Fb/mutes/{first['id']}", headers=WRITE).status_code == 200
    mute(client, "u5", kind="behavior", behavior="view")
    assert client.delete("/v1/users/u5", headers=ADMIN).status_code == 200
    assert client.get("/v1/users/u5/mutes", headers=READ).json()["mutes"] == []
