"""Real time: ingested events change the next answer at once, retries are idempotent, erasure
is permanent, and the influence answers are computed over the same merged history."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from influrec.data.history import History
from influrec.inference import Recommender
from influrec.serving.settings import Limits


def auth(key: str = "admin-key") -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def rec(served_run: Path) -> Recommender:
    return Recommender.load(served_run)


def post(client: TestClient, events: list[dict]) -> dict:
    response = client.post("/v1/events", json={"events": events}, headers=auth())
    assert response.status_code == 200, response.text
    return response.json()


def recommend(client: TestClient, user: str, query: str = "k=5") -> dict:
    response = client.get(f"/v1/users/{user}/recommendations?{query}", headers=auth())
    assert response.status_code == 200, response.text
    return response.json()


def appended(rec: Recommender, base: History, events: list[dict]) -> History:
    """The reference: ``base`` followed by ``events`` (all later than it), built by hand."""
    return History(
        np.r_[base.items, [rec.item_index[e["item"]] for e in events]].astype(np.int64),
        np.r_[base.behaviors, [rec.behavior_index[e["behavior"]] for e in events]].astype(np.int64),
        np.r_[base.timestamps, [e["timestamp"] for e in events]].astype(np.int64),
        np.r_[base.values, [e.get("value") or 0.0 for e in events]].astype(np.float32),
    )


def top_items(rec: Recommender, history: History, k: int = 5, exclude_seen: bool = True) -> list:
    return [r.item_id for r in rec.recommend(history, k=k, exclude_seen=exclude_seen)]


def test_ingested_events_change_the_next_recommendation(
    client: TestClient, rec: Recommender
) -> None:
    trained = rec.user_history("u2")
    before = recommend(client, "u2")
    assert before["cold_start"] is False
    assert before["history"]["events_used"] == len(trained) == before["history"]["trained_events"]
    assert [r["item"] for r in before["recommendations"]] == top_items(rec, trained)
    later = int(trained.timestamps[-1]) + 60
    events = [
        {"user": "u2", "item": f"i{n}", "behavior": "buy", "timestamp": later + n, "value": 2.0}
        for n in (3, 7, 11)
    ]
    assert post(client, events)["stored"] == 3
    after = recommend(client, "u2")
    assert after["history"]["events_used"] == len(trained) + 3
    assert after["history"]["stored_events"] == 3
    expected = top_items(rec, appended(rec, trained, events))
    assert [r["item"] for r in after["recommendations"]] == expected
    assert expected != [r["item"] for r in before["recommendations"]]
    unmasked = recommend(client, "u2", "k=5&exclude_seen=false")["recommendations"]
    assert [r["item"] for r in unmasked] == top_items(
        rec, appended(rec, trained, events), exclude_seen=False
    )


def test_events_are_merged_in_time_order(client: TestClient, rec: Recommender) -> None:
    """An event dated inside the training history is placed by its time, not appended."""
    trained = rec.user_history("u2")
    assert len(trained) < rec.model.config.max_len  # every event is explained below
    middle = int(trained.timestamps[len(trained) // 2])
    event = {"user": "u2", "item": "i1", "behavior": "view", "timestamp": middle}
    post(client, [event])
    order = np.argsort(np.r_[trained.timestamps, [middle]], kind="stable")
    merged = appended(rec, trained, [event])
    reference = History(*(a[order] for a in vars(merged).values()))
    got = recommend(client, "u2", "k=5&exclude_seen=false")
    assert [r["item"] for r in got["recommendations"]] == top_items(
        rec, reference, exclude_seen=False
    )
    explained = client.get("/v1/users/u2/explanations?k=1", headers=auth()).json()
    events = explained["recommendations"][0]["events"]
    assert [e["timestamp"] for e in events] == reference.timestamps.tolist()
    # on equal times the training event comes first, then the ingested one
    position = len(trained) // 2 + 1
    assert (events[position]["item"], events[position]["behavior"]) == ("i1", "view")
    assert explained["events_explained"] == len(trained) + 1


def test_unknown_user_is_cold_start_until_their_events_arrive(
    client: TestClient, rec: Recommender
) -> None:
    cold = recommend(client, "newcomer")
    assert cold["cold_start"] is True and cold["history"]["events_used"] == 0
    assert [r["item"] for r in cold["recommendations"]] == [r.item_id for r in rec.popular(k=5)]
    events = [{"user": "newcomer", "item": "i5", "behavior": "cart", "timestamp": 100}]
    post(client, events)
    warm = recommend(client, "newcomer")
    assert warm["cold_start"] is False and warm["history"]["stored_events"] == 1
    empty = History(*(np.zeros(0, t) for t in (np.int64, np.int64, np.int64, np.float32)))
    assert [r["item"] for r in warm["recommendations"]] == top_items(
        rec, appended(rec, empty, events)
    )


def test_retried_events_are_stored_once_and_reported(client: TestClient) -> None:
    events = [
        {"user": "u6", "item": "i2", "behavior": "view", "event_id": "a"},
        {"user": "u6", "item": "i3", "behavior": "view", "event_id": "b"},
        {"user": "u6", "item": "i4", "behavior": "view"},  # no id: always stored
    ]
    first = post(client, events)
    assert (first["stored"], first["duplicates"], first["duplicate_event_ids"]) == (3, 0, [])
    retry = post(client, events)
    assert retry["stored"] == 1 and retry["duplicates"] == 2
    assert retry["duplicate_indices"] == [0, 1] and retry["duplicate_event_ids"] == ["a", "b"]
    same_batch = post(client, [{**events[0], "event_id": "c"}, {**events[1], "event_id": "c"}])
    assert same_batch["stored"] == 1 and same_batch["duplicate_indices"] == [1]
    assert recommend(client, "u6")["history"]["stored_events"] == 5
    assert client.get("/healthz").json()["events_in_store"] == 5


def test_unknown_items_are_stored_reported_and_skipped(client: TestClient) -> None:
    result = post(
        client,
        [
            {"user": "u7", "item": "brand-new", "behavior": "buy"},
            {"user": "u7", "item": "i2", "behavior": "wishlist"},
            {"user": "u7", "item": "i2", "behavior": "buy"},
        ],
    )
    assert result["stored"] == 3
    assert result["unknown_items"] == ["brand-new"] and result["unknown_behaviors"] == ["wishlist"]
    history = recommend(client, "u7")["history"]
    assert history["stored_events"] == 1 and history["stored_events_skipped"] == 2


def test_history_limit_keeps_the_most_recent_events(
    make_client: Callable[..., TestClient], rec: Recommender
) -> None:
    client = make_client(Limits(max_history=4))
    trained = rec.user_history("u8")
    later = int(trained.timestamps[-1]) + 10
    post(client, [{"user": "u8", "item": "i9", "behavior": "buy", "timestamp": later}])
    info = recommend(client, "u8")["history"]
    assert info == {
        "events_used": 4,
        "trained_events": 3,
        "stored_events": 1,
        "stored_events_skipped": 0,
        "muted_events": 0,
        "truncated": len(trained) + 1 - 4,
        "erased": False,
    }


def test_delete_erases_events_and_makes_the_user_cold_start(client: TestClient) -> None:
    post(client, [{"user": "u2", "item": "i3", "behavior": "buy", "event_id": "x1"}])
    post(client, [{"user": "u3", "item": "i3", "behavior": "buy"}])
    erased = client.delete("/v1/users/u2", headers=auth())
    assert erased.json() == {"user": "u2", "events_deleted": 1, "erased": True}
    after = recommend(client, "u2")
    assert after["cold_start"] is True and after["history"]["erased"] is True
    assert after["history"]["trained_events"] == 0
    assert client.get("/healthz").json()["events_in_store"] == 1  # u3's event stays
    assert recommend(client, "u3")["history"]["stored_events"] == 1
    # events sent after the erasure are the user's whole history from now on
    post(client, [{"user": "u2", "item": "i4", "behavior": "view"}])
    back = recommend(client, "u2")["history"]
    assert back["trained_events"] == 0 and back["stored_events"] == 1 and back["erased"]
    again = client.delete("/v1/users/u2", headers=auth())
    assert again.json()["events_deleted"] == 1


def test_explanations_cover_every_event_of_the_merged_history(client: TestClient) -> None:
    post(client, [{"user": "u2", "item": "i5", "behavior": "fav"}])
    response = client.get("/v1/users/u2/explanations?k=2", headers=auth("reader-key"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["method"] == "loo" and body["k"] == 2 and len(body["recommendations"]) == 2
    n = body["history"]["events_used"]
    assert body["events_explained"] == n
    for r in body["recommendations"]:
        assert [e["position"] for e in r["events"]] == list(range(n))
        assert r["events"][-1]["item"] == "i5" and r["events"][-1]["behavior"] == "fav"
    top = recommend(client, "u2", "k=2")["recommendations"]  # both leave seen items out
    assert [r["item"] for r in body["recommendations"]] == [r["item"] for r in top]
    ig = client.get("/v1/users/u2/explanations?k=1&method=ig&measure=score", headers=auth())
    assert ig.status_code == 200 and ig.json()["method"] == "ig"
    cold = client.get("/v1/users/nobody/explanations", headers=auth()).json()
    assert cold["cold_start"] is True and cold["recommendations"] == []


def test_whatif_edits_the_merged_history(client: TestClient) -> None:
    body = {"user": "u2", "add": [{"item": "i5", "behavior": "buy"}], "remove": [0], "k": 3}
    response = client.post("/v1/whatif", json=body, headers=auth("reader-key"))
    assert response.status_code == 200, response.text
    result = response.json()
    assert len(result["before"]) == 3 and len(result["after"]) == 3
    assert set(result["rank_changes"]) == set(result["before"]) | set(result["after"])
    assert 0 <= result["jaccard"] <= 1 and result["cold_start"] is False
    top = recommend(client, "u2", "k=3")["recommendations"]  # the one seen-items default
    assert result["before"] == [r["item"] for r in top]
    assert client.get("/healthz").json()["events_in_store"] == 0  # nothing stored
    bad = {"user": "u2", "add": [{"item": "nope"}, {"item": "i1", "behavior": "x"}], "k": 3}
    error = client.post("/v1/whatif", json=bad, headers=auth()).json()["error"]
    assert [d["field"] for d in error["details"]] == ["add.0.item", "add.1.behavior"]
    out_of_range = client.post("/v1/whatif", json={"user": "u2", "remove": [999]}, headers=auth())
    assert out_of_range.status_code == 422
    assert out_of_range.json()["error"]["code"] == "invalid_input"


def test_influential_actions_shape(client: TestClient, rec: Recommender) -> None:
    response = client.get(
        "/v1/users/u2/influential-actions?candidates=5&k=3&top=4", headers=auth("reader-key")
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["candidates"] == 5 * len(rec.behavior_index) and len(body["actions"]) == 4
    for action in body["actions"]:
        assert action["item"] in rec.item_index and action["behavior"] in rec.behavior_index
        assert len(action["new_top"]) == 3 and 0 <= action["churn"] <= 1
    churn = [a["churn"] for a in body["actions"]]
    assert churn == sorted(churn, reverse=True)


def test_why_not_answers_as_the_library_does(client: TestClient, rec: Recommender) -> None:
    from influrec.influence.whynot import why_not

    history = rec.user_history("u2")
    scores = rec.scores([history])[0]
    item = rec.item_ids[int(np.argsort(-scores.numpy())[8]) - 1]
    response = client.get(f"/v1/users/u2/why-not?item={item}&k=3", headers=auth("reader-key"))
    assert response.status_code == 200, response.text
    body = response.json()
    expected = why_not(rec, history, item, k=3).to_dict()
    assert {key: body[key] for key in expected} == expected
    assert body["user"] == "u2" and body["cold_start"] is False
    unknown = client.get("/v1/users/u2/why-not?item=nope", headers=auth("reader-key"))
    assert unknown.status_code == 422 and "nope" in unknown.json()["error"]["message"]
    newcomer = client.get(f"/v1/users/newcomer/why-not?item={item}", headers=auth("reader-key"))
    assert newcomer.status_code == 422 and "no usable history" in newcomer.text
    assert client.get(f"/v1/users/u2/why-not?item={item}").status_code == 401


def test_a_stored_event_the_run_trained_on_is_used_once(
    client: TestClient, rec: Recommender
) -> None:
    """After `influrec update` trained on the store, its events are in the training history:
    the service does not read them a second time from the store."""
    trained = rec.user_history("u6")
    behaviors = {index: name for name, index in rec.behavior_index.items()}
    item = rec.item_ids[int(trained.items[-1]) - 1]
    behavior = behaviors[int(trained.behaviors[-1])]
    again = {"user": "u6", "item": item, "behavior": behavior}
    post(client, [{**again, "timestamp": int(trained.timestamps[-1])}])
    info = recommend(client, "u6")["history"]
    assert info["stored_events"] == 0 and info["stored_events_skipped"] == 1
    post(client, [{**again, "timestamp": int(trained.timestamps[-1]) + 1}])  # a new event
    info = recommend(client, "u6")["history"]
    assert info["stored_events"] == 1 and info["stored_events_skipped"] == 1
