"""``GET /v1/users``: every user with a history, a page at a time, in id order."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from influrec.inference import Recommender
from serving.test_serving_api import assert_error, auth

READ = auth("reader-key")


def every_page(client: TestClient, **params: object) -> tuple[list[dict], int]:
    """All users, following ``next_after``; also how many pages that took."""
    users: list[dict] = []
    after, pages = None, 0
    while True:
        query = {**params, **({"after": after} if after is not None else {})}
        page = client.get("/v1/users", params=query, headers=READ)
        assert page.status_code == 200, page.text
        body = page.json()
        users += body["users"]
        pages += 1
        after = body["next_after"]
        if after is None:
            return users, pages
        assert after == body["users"][-1]["user"]


def test_pages_list_every_run_user_once_in_id_order_with_their_events(
    client: TestClient, served_run: Path
) -> None:
    users, pages = every_page(client, limit=7)
    run = Recommender.load(served_run)
    assert [u["user"] for u in users] == sorted(run.user_index)  # u1, u10, u11, ... u9
    assert pages == 6  # 40 users, 7 a page: the sixth page holds the last 5
    for u in users:
        assert u["trained_events"] == len(run.user_history(u["user"])) > 0
        assert u["stored_events"] == 0
    first = client.get("/v1/users", params={"limit": 3}, headers=READ).json()
    assert [u["user"] for u in first["users"]] == ["u1", "u10", "u11"]
    assert first["next_after"] == "u11"


def test_prefix_ingested_and_erased_users(client: TestClient) -> None:
    prefixed, _ = every_page(client, prefix="u3", limit=4)
    assert [u["user"] for u in prefixed] == ["u3", *(f"u3{d}" for d in range(10))]
    assert every_page(client, prefix="nobody")[0] == []
    events = [
        {"user": user, "item": "i2", "behavior": "buy", "event_id": f"{user}-{n}"}
        for n, user in enumerate(["newbie", "newbie", "u3", "u5", "a/b"])
    ]
    assert client.post("/v1/events", json={"events": events}, headers=auth()).status_code == 200
    assert client.delete("/v1/users/u7", headers=auth()).status_code == 200  # no stored events
    assert client.delete("/v1/users/u5", headers=auth()).status_code == 200
    client.post("/v1/events", json={"events": [{**events[3], "event_id": "again"}]}, headers=auth())
    users = {u["user"]: u for u in every_page(client, limit=5)[0]}
    assert "u7" not in users and len(users) == 40 - 1 + 2  # u7 erased; newbie and a/b added
    assert users["newbie"] == {"user": "newbie", "trained_events": 0, "stored_events": 2}
    assert users["u5"] == {"user": "u5", "trained_events": 0, "stored_events": 1}
    assert users["u3"]["stored_events"] == 1 and users["u3"]["trained_events"] > 0
    assert list(users) == sorted(users)
    erased_only, _ = every_page(client, prefix="u7")
    assert erased_only == []


def test_users_needs_a_read_key_and_bounded_input(client: TestClient) -> None:
    assert_error(client.get("/v1/users"), 401, "unauthorized")
    assert_error(client.get("/v1/users", headers=auth("no-such-key")), 401, "unauthorized")
    assert_error(client.get("/v1/users", headers=auth("writer-key")), 403, "forbidden")
    for params in ({"limit": 0}, {"limit": 1001}, {"after": "x" * 257}, {"limit": "ten"}):
        error = assert_error(
            client.get("/v1/users", params=params, headers=READ), 422, "validation_error"
        )
        assert error["details"][0]["field"] == f"query.{next(iter(params))}"
    spec = client.get("/openapi.json").json()
    listed = spec["paths"]["/v1/users"]["get"]
    assert {p["name"] for p in listed["parameters"]} == {"limit", "after", "prefix"}
    assert listed["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/UserList"
    }
