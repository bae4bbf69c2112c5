"""``GET /ui``: the page and its two assets, served from the package without a key; the data
the page shows still needs one."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from importlib import resources
from pathlib import Path

from fastapi.testclient import TestClient

from influrec.serving.page import ASSETS
from serving.test_serving_api import assert_error, auth

ROOT = Path(__file__).resolve().parents[2]


def test_page_and_assets_are_served_without_a_key(client: TestClient) -> None:
    page = client.get("/ui")
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert client.get("/ui/").text == page.text
    assert client.head("/ui").status_code == 200
    html = page.text
    assert '<script src="/ui/ui.js"' in html and 'href="/ui/ui.css"' in html
    for path, kind in (("/ui/ui.js", "text/javascript"), ("/ui/ui.css", "text/css")):
        asset = client.get(path)
        assert asset.status_code == 200 and asset.headers["content-type"].startswith(kind)
        assert asset.headers["x-content-type-options"] == "nosniff"
        assert len(asset.text) > 1000
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert_error(client.get("/ui/other.js"), 404, "not_found")
    assert_error(client.get("/ui/../healthz.js"), 404, "not_found")
    assert "/ui" not in client.get("/openapi.json").json()["paths"]  # not part of the API


def test_the_page_reaches_nothing_outside_and_calls_only_api_routes(client: TestClient) -> None:
    texts = {name: client.get(f"/ui/{name}").text for name in ("ui.js", "ui.css")}
    texts["index.html"] = client.get("/ui").text
    for name, text in texts.items():
        hosts = re.findall(r"(?i)\b(?:https?:)?//([^/\"'\s<>`]+)", text)
        assert hosts == [], f"{name} names outside hosts {hosts}"
        assert "localStorage" not in text and "sessionStorage" not in text and "cookie" not in text
    called = set(re.findall(r"[`\"](/v1/[a-z-]+)", texts["ui.js"]))
    called |= {
        f"/v1/users/{{user_id}}/{p}" for p in re.findall(r"\$\{path\}/([a-z-]+)", texts["ui.js"])
    }
    assert called == {
        "/v1/users",
        "/v1/whatif",
        "/v1/users/{user_id}/explanations",
        "/v1/users/{user_id}/influential-actions",
    }
    assert called <= set(client.get("/openapi.json").json()["paths"])


def test_the_data_the_page_shows_still_needs_the_read_key(client: TestClient) -> None:
    assert client.get("/ui").status_code == 200
    for path in ("/v1/users", "/v1/users/u2/explanations", "/v1/users/u2/influential-actions"):
        assert_error(client.get(path), 401, "unauthorized")
        assert_error(client.get(path, headers=auth("writer-key")), 403, "forbidden")
    assert_error(client.post("/v1/whatif", json={"user": "u2"}), 401, "unauthorized")
    assert client.get("/v1/users", headers=auth("reader-key")).status_code == 200


def test_the_page_files_ship_in_the_package() -> None:
    """Present beside the code and matched by pyproject's package data (a wheel has them)."""
    folder = resources.files("influrec.serving") / "ui"
    assert sorted(p.name for p in folder.iterdir()) == sorted(ASSETS)
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["influrec.serving"]
    for name in ASSETS:
        assert any(fnmatch.fnmatch(f"ui/{name}", p) for p in patterns), name
