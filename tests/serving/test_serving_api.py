"""The HTTP contract: auth and scopes, validation and limits, error format, metrics, OpenAPI."""

from __future__ import annotations

import argparse
import re
import typing
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from influrec.cli.main import build_parser
from influrec.influence.attribution import leave_one_out
from influrec.influence.measurement import MEASURES, InTopK, Measure
from influrec.influence.methods import METHODS, Method
from influrec.serving.app import create_app
from influrec.serving.settings import API_KEYS_ENV, Limits, ServiceSettings
from tests_helpers import metric_samples

EVENT = {"user": "u2", "item": "i3", "behavior": "buy"}


def auth(key: str = "admin-key") -> dict[str, str]:
    """Keys of the conftest: reader-key (read), writer-key (write), admin-key (admin)."""
    return {"Authorization": f"Bearer {key}"}


def assert_error(response: typing.Any, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    return body["error"]


def test_healthz_needs_no_key(client: TestClient) -> None:
    health = client.get("/healthz").json()
    model = health.pop("model")
    assert health == {"status": "ok", "run": "run", "items": 30, "users": 40, "events_in_store": 0}
    assert model.startswith("run@") and len(model) == len("run@") + 12


def test_every_v1_route_needs_a_key_with_the_right_scope(client: TestClient) -> None:
    recs = "/v1/users/u2/recommendations"
    missing = client.get(recs)
    assert_error(missing, 401, "unauthorized")
    assert missing.headers["www-authenticate"] == "Bearer"
    assert_error(client.get(recs, headers=auth("no-such-key")), 401, "unauthorized")
    assert_error(client.get(recs, headers={"Authorization": "Basic eDp5"}), 401, "unauthorized")
    # read cannot write, write cannot read, neither can erase
    refused = client.post("/v1/events", json={"events": [EVENT]}, headers=auth("reader-key"))
    assert_error(refused, 403, "forbidden")
    assert_error(client.get(recs, headers=auth("writer-key")), 403, "forbidden")
    for key in ("reader-key", "writer-key"):
        assert_error(client.delete("/v1/users/u2", headers=auth(key)), 403, "forbidden")
    for path in ("explanations", "influential-actions"):
        assert_error(client.get(f"/v1/users/u2/{path}"), 401, "unauthorized")
    assert_error(client.post("/v1/whatif", json={"user": "u2"}), 401, "unauthorized")
    # nothing was stored by the refused write; an unauthenticated bad body is still a 401
    assert client.get("/healthz").json()["events_in_store"] == 0
    assert_error(client.post("/v1/events", json={"events": "nope"}), 401, "unauthorized")
    # admin implies read and write
    admin = auth("admin-key")
    assert client.post("/v1/events", json={"events": [EVENT]}, headers=admin).status_code == 200
    assert client.get(recs, headers=admin).status_code == 200
    assert (
        client.post("/v1/events", json={"events": [EVENT]}, headers=auth("writer-key")).json()[
            "stored"
        ]
        == 1
    )
    assert client.get(recs, headers=auth("reader-key")).status_code == 200


def test_keys_from_the_environment(
    served_run: typing.Any, tmp_path: typing.Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(API_KEYS_ENV, "env-read:read;env-boss:admin")
    app = create_app(ServiceSettings(served_run, store=tmp_path / "e.sqlite3"))
    with TestClient(app) as client:
        recs = "/v1/users/u2/recommendations"
        assert client.get(recs, headers=auth("env-read")).status_code == 200
        assert client.delete("/v1/users/u9", headers=auth("env-read")).status_code == 403
        assert client.delete("/v1/users/u9", headers=auth("env-boss")).status_code == 200
        assert client.get(recs, headers=auth("admin-key")).status_code == 401


def test_invalid_events_are_all_refused_with_per_event_details(client: TestClient) -> None:
    batch = [
        EVENT,
        {"user": "u2", "item": "", "behavior": "buy"},
        {"user": 7, "item": "i3", "behavior": "buy", "timestamp": "12"},
        {"user": "u2", "item": "i3", "behavior": "buy", "value": "high", "extra": 1},
        {"user": "u2", "item": "i3"},
    ]
    error = assert_error(
        client.post("/v1/events", json={"events": batch}, headers=auth()), 422, "validation_error"
    )
    found = {(d["index"], d["field"]) for d in error["details"]}
    assert found == {
        (1, "item"),
        (2, "user"),
        (2, "timestamp"),
        (3, "value"),
        (3, "extra"),
        (4, "behavior"),
    }
    assert all(d["message"] for d in error["details"])
    assert client.get("/healthz").json()["events_in_store"] == 0  # all or nothing
    for body in ({"events": []}, {}, {"events": [EVENT], "more": 1}):
        assert_error(client.post("/v1/events", json=body, headers=auth()), 422, "validation_error")
    broken = client.post(
        "/v1/events", content=b"{not json", headers={**auth(), "content-type": "application/json"}
    )
    assert_error(broken, 422, "validation_error")


def test_batch_and_body_limits(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    too_many = {"events": [EVENT] * 1001}
    assert_error(client.post("/v1/events", json=too_many, headers=auth()), 413, "batch_too_large")
    assert (
        client.post("/v1/events", json={"events": [EVENT] * 1000}, headers=auth()).json()["stored"]
        == 1000
    )
    small = make_client(Limits(max_body_bytes=2_000))
    big = {"events": [EVENT] * 100}  # ~5 kB
    assert_error(small.post("/v1/events", json=big, headers=auth()), 413, "payload_too_large")

    def chunks() -> typing.Iterator[bytes]:  # no Content-Length: counted while reading
        yield b'{"events": ['
        yield b",".join([b'{"user": "u2", "item": "i3", "behavior": "buy"}'] * 100)
        yield b"]}"

    chunked = small.post("/v1/events", content=chunks(), headers=auth())
    assert_error(chunked, 413, "payload_too_large")
    assert small.get("/healthz").json()["events_in_store"] == 0


def test_k_and_candidates_are_bounded(client: TestClient) -> None:
    for path in [
        "/v1/users/u2/recommendations?k=101",
        "/v1/users/u2/recommendations?k=0",
        "/v1/users/u2/recommendations?k=ten",
        "/v1/users/u2/explanations?k=21",
        "/v1/users/u2/explanations?method=magic",
        "/v1/users/u2/influential-actions?candidates=1001",
        "/v1/users/u2/influential-actions?k=101",
    ]:
        response = client.get(path, headers=auth())
        assert response.status_code == 422, (path, response.text)
        assert response.json()["error"]["details"][0]["field"] in (
            "k",
            "query.k",
            "query.method",
            "candidates",
        ), (path, response.text)
    assert client.get("/v1/users/u2/recommendations?k=100", headers=auth()).status_code == 200
    whatif = {"user": "u2", "k": 101}
    assert_error(client.post("/v1/whatif", json=whatif, headers=auth()), 422, "validation_error")
    long_id = "u" * 300
    too_long = client.get(f"/v1/users/{long_id}/recommendations", headers=auth())
    assert_error(too_long, 422, "validation_error")


def test_unknown_routes_and_methods_use_the_error_format(client: TestClient) -> None:
    assert_error(client.get("/v2/nothing"), 404, "not_found")
    assert_error(client.post("/healthz"), 405, "method_not_allowed")


def test_metrics_count_requests_by_route_and_status_and_events(client: TestClient) -> None:
    client.get("/v1/users/u2/recommendations", headers=auth())
    client.get("/v1/users/u3/recommendations", headers=auth())
    client.get("/v1/users/u3/recommendations")
    events = [{**EVENT, "event_id": f"m{i}"} for i in range(3)]
    client.post("/v1/events", json={"events": events}, headers=auth())
    client.post("/v1/events", json={"events": events}, headers=auth())  # 3 duplicates
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    samples = metric_samples(response.text)
    route = {("method", "GET"), ("route", "/v1/users/{user_id}/recommendations")}
    requests = "influrec_http_requests_total"
    assert samples[(requests, frozenset({*route, ("status", "200")}))] == 2
    assert samples[(requests, frozenset({*route, ("status", "401")}))] == 1
    assert samples[("influrec_http_request_duration_seconds_count", frozenset(route))] == 3
    buckets = [
        value
        for (name, labels), value in samples.items()
        if name == "influrec_http_request_duration_seconds_bucket" and route <= labels
    ]
    assert len(buckets) == 13 and max(buckets) == 3  # 12 bounds and +Inf
    assert samples[("influrec_events_stored_total", frozenset())] == 3
    assert samples[("influrec_events_duplicate_total", frozenset())] == 3
    assert samples[("influrec_store_events", frozenset())] == 3


def test_openapi_documents_the_routes_and_the_bearer_scheme(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert {
        "/v1/events",
        "/v1/users/{user_id}/recommendations",
        "/v1/users/{user_id}/explanations",
        "/v1/whatif",
        "/v1/users/{user_id}/influential-actions",
        "/v1/users/{user_id}",
        "/healthz",
        "/metrics",
    } <= set(spec["paths"])
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    post = spec["paths"]["/v1/events"]["post"]
    assert {"401", "403", "413", "422"} <= set(post["responses"])
    # the schemas' descriptions are read by API users: plain words, no Python cross-references
    described = {
        n: d["description"] for n, d in spec["components"]["schemas"].items() if "description" in d
    }
    assert described["Explanations"].startswith("Each of the user's top k items")
    assert not [n for n, text in described.items() if ":class:" in text or "influrec." in text]


def _choices(parser: argparse.ArgumentParser, command: str, option: str) -> list[str]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    action = next(a for a in sub.choices[command]._actions if option in a.option_strings)
    return list(action.choices or [])


def _query_enum(spec: dict, path: str, name: str) -> list[str]:
    parameters = spec["paths"][path]["get"]["parameters"]
    return next(p["schema"]["enum"] for p in parameters if p["name"] == name)


def test_cli_choices_and_http_enums_are_the_registries(client: TestClient) -> None:
    """One list of methods and one of measures: the CLI and the OpenAPI document read them."""
    spec = client.get("/openapi.json").json()
    path = "/v1/users/{user_id}/explanations"
    methods = [name for name, m in METHODS.items() if m.explains]
    assert "loo" in methods and "random" in METHODS and "random" not in methods
    assert _choices(build_parser(), "explain", "--method") == methods
    assert _query_enum(spec, path, "method") == methods
    assert _choices(build_parser(), "explain", "--measure") == list(MEASURES)
    assert (
        _query_enum(spec, path, "measure") == list(MEASURES) == ["margin", "score", "logp", "rank"]
    )


def test_a_registered_method_and_measure_become_cli_choices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(METHODS, "occlusion", Method("occlusion", leave_one_out, "test entry"))
    monkeypatch.setitem(
        MEASURES, "top1", Measure("top1", lambda item, k: InTopK(item, 1), "t", "u")
    )
    parser = build_parser()
    assert "occlusion" in _choices(parser, "explain", "--method")
    assert "top1" in _choices(parser, "explain", "--measure")


def test_docs_page_is_self_contained_and_covers_every_route(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    page = client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    html = page.text
    hosts = re.findall(r"(?i)\b(?:https?:)?//([^/\"'\s<>]+)", html)
    assert [h for h in hosts if h.split(":")[0] not in ("127.0.0.1", "localhost")] == []
    assert "<script" not in html.lower() and "src=" not in html.lower()
    for path in spec["paths"]:
        assert path in html
    for name in spec["components"]["schemas"]:
        assert f'id="schema-{name}"' in html
    assert "maximum 100" in html  # the published limit of k
    assert_error(client.get("/redoc"), 404, "not_found")
