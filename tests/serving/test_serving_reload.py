"""Model versions and live swaps: every answer names its model, `POST /v1/admin/reload` and
`serve --watch` swap runs under load without a failed or mixed answer, bad runs are refused."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from influrec.run import MODEL_FILE
from influrec.serving.versions import model_version
from load_generator import Load
from tests_helpers import train_tiny_run

ADMIN = {"Authorization": "Bearer admin-key"}
READ = {"Authorization": "Bearer reader-key"}
USERS = [f"u{n}" for n in range(1, 7)]


@pytest.fixture(scope="module")
def other_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny run's data trained for two epochs: same vocabulary, other weights."""
    return train_tiny_run(tmp_path_factory.mktemp("other"), epochs=2)


@pytest.fixture(scope="module")
def narrow_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run over 20 items only (i1..i20): it lacks items the tiny run knows."""
    return train_tiny_run(tmp_path_factory.mktemp("narrow"), items=20)


def reload(
    client: TestClient | httpx.Client, run: Path | None = None, **body: object
) -> httpx.Response:
    payload = {**body, **({} if run is None else {"run": str(run)})}
    return client.post("/v1/admin/reload", json=payload, headers=ADMIN)


def test_answers_name_their_model_and_a_reload_swaps_it(
    client: TestClient, served_run: Path, other_run: Path
) -> None:
    first, second = model_version(served_run).id, model_version(other_run).id
    assert first != second and first.startswith("run@") and len(first) == len("run@") + 12
    answer = client.get("/v1/users/u1/recommendations", headers=READ)
    assert answer.json()["model"] == answer.headers["X-Model-Version"] == first
    assert client.get("/healthz").json()["model"] == first
    swapped = reload(client, other_run)
    assert swapped.status_code == 200, swapped.text
    body = swapped.json()
    assert body["model"] == second and body["previous_model"] == first
    assert body["items_added"] == 0 and body["run"] == str(other_run.resolve())
    for path in ("recommendations", "explanations?k=2", "why-not?item=i3"):
        answer = client.get(f"/v1/users/u1/{path}", headers=READ)
        assert answer.json()["model"] == answer.headers["X-Model-Version"] == second, path
    assert client.get("/healthz").json()["model"] == second
    assert reload(client).json()["model"] == first  # no run: the one the service started with


def test_reload_needs_an_admin_key(client: TestClient, other_run: Path) -> None:
    body = {"run": str(other_run)}
    assert client.post("/v1/admin/reload", json=body).status_code == 401
    bad = {"Authorization": "Bearer nobody"}
    assert client.post("/v1/admin/reload", json=body, headers=bad).status_code == 401
    for key in ("reader-key", "writer-key"):
        refused = client.post(
            "/v1/admin/reload", json=body, headers={"Authorization": f"Bearer {key}"}
        )
        assert refused.status_code == 403 and "admin" in refused.json()["error"]["message"]
    assert client.get("/healthz").json()["run"] == "run"
    assert client.get("/healthz").json()["model"] != model_version(other_run).id


def damaged_copy(run: Path, root: Path) -> Path:
    copy = root / "damaged"
    shutil.copytree(run, copy)
    weights = (copy / MODEL_FILE).read_bytes()
    (copy / MODEL_FILE).write_bytes(weights[: len(weights) // 2])
    return copy


def test_a_bad_run_is_refused_and_the_old_model_keeps_serving(
    client: TestClient, served_run: Path, tmp_path: Path
) -> None:
    before = client.get("/v1/users/u2/recommendations", headers=READ).json()
    (tmp_path / "empty").mkdir()
    cases = {
        tmp_path / "empty": "no run.json",
        tmp_path / "absent": "no run.json",
        damaged_copy(served_run, tmp_path): "does not load",
    }
    for run, reason in cases.items():
        refused = reload(client, run)
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert error["code"] == "reload_refused" and reason in error["message"], error
        assert str(run) in error["message"] and "the current model stays" in error["message"]
        assert client.get("/v1/users/u2/recommendations", headers=READ).json() == before
    malformed = client.post("/v1/admin/reload", json={"run": 3}, headers=ADMIN)
    assert malformed.status_code == 422 and malformed.json()["error"]["code"] == "validation_error"


def test_a_model_missing_stored_items_is_refused_unless_forced(
    client: TestClient, served_run: Path, narrow_run: Path
) -> None:
    from influrec.inference import Recommender

    narrow = set(Recommender.load(narrow_run).item_ids)
    lost = sorted(set(Recommender.load(served_run).item_ids) - narrow)[0]
    event = {"user": "u1", "item": lost, "behavior": "view", "timestamp": 2_000_000_000}
    headers = {"Authorization": "Bearer writer-key"}
    assert client.post("/v1/events", json={"events": [event]}, headers=headers).status_code == 200
    refused = reload(client, narrow_run)
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert "does not know 1 items and 0 behaviours" in error["message"]
    assert lost in error["details"][0]["message"]
    assert client.get("/healthz").json()["model"] == model_version(served_run).id
    forced = reload(client, narrow_run, force=True)
    assert forced.status_code == 200 and forced.json()["stored_items_unknown"] == 1
    answer = client.get("/v1/users/u1/recommendations", headers=READ).json()
    assert answer["history"]["stored_events_skipped"] == 1


def point(link: Path, run: Path) -> None:
    """Switch ``link`` to ``run`` in one step (a new link renamed over the old)."""
    fresh = link.with_name(link.name + ".new")
    fresh.symlink_to(run.resolve())
    os.replace(fresh, link)


def wait_for_model(client: httpx.Client, model: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while client.get("/healthz").json()["model"] != model:
        assert time.monotonic() < deadline, f"the service never served {model}"
        time.sleep(0.1)


def test_swaps_under_load_fail_no_request_and_mix_no_models(
    server: Callable, served_run: Path, other_run: Path, tmp_path: Path
) -> None:
    """A real `influrec serve --watch` on a `current` link, three reader threads throughout;
    six swaps, three through POST /v1/admin/reload and three by moving the link."""
    link = tmp_path / "current"
    link.symlink_to(served_run.resolve())
    versions = {model_version(run).id: run for run in (served_run, other_run)}
    first, second = list(versions)
    keys = "admin-key:admin;reader-key:read"
    options = ("--watch", "--watch-every", "0.2")
    log = tmp_path / "serve.log"
    with server(link, tmp_path / "events.sqlite3", log, keys=keys, options=options) as (client, _):
        expected: dict[tuple[str, str], list[str]] = {}  # (model, user) -> its top 5
        for model in (first, second):
            assert reload(client, versions[model]).json()["model"] == model
            for user in USERS:
                answer = client.get(f"/v1/users/{user}/recommendations?k=5", headers=READ).json()
                expected[model, user] = [r["item"] for r in answer["recommendations"]]
        assert any(expected[first, u] != expected[second, u] for u in USERS)
        with Load(str(client.base_url), USERS, headers=READ) as load:
            for swap in range(6):
                model = first if swap % 2 == 0 else second
                time.sleep(0.5)
                if swap < 3:
                    assert reload(client, versions[model]).json()["model"] == model
                else:
                    point(link, versions[model])
                    wait_for_model(client, model)
            time.sleep(0.5)
    assert load.failures == []
    statuses = [status for _, status, _, _ in load.answers]
    assert len(statuses) > 50 and set(statuses) == {200}, sorted(set(statuses))
    seen = set()
    for user, _, header, body in load.answers:
        assert body is not None and body["model"] == header
        assert [r["item"] for r in body["recommendations"]] == expected[header, user]
        seen.add(header)
    assert seen == {first, second}
    assert f"-> {other_run.resolve()}: serving {second}" in log.read_text()


def test_watch_needs_a_link(served_run: Path) -> None:
    env = {**os.environ, "INFLUREC_API_KEYS": "k:read"}
    command = [sys.executable, "-m", "influrec.cli.main", "serve", str(served_run), "--watch"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert f"--watch: {served_run} is not a symbolic link" in done.stderr
