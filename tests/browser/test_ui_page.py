"""The live page (GET /ui) in a real headless Chromium over a real ``influrec serve``: enter the
key, choose a user and a recommended item, switch off the event that supports it most, and see
the very top-k that the what-if API gives for that deletion."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from browser.conftest import Page
from serving.conftest import serve_process
from tests_helpers import train_tiny_run

READ_KEY = "e2e-read"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A served tiny run (users u1..u40, items i1..i30); the client carries the read key."""
    root = tmp_path_factory.mktemp("ui")
    run = train_tiny_run(root)
    with serve_process(run, root / "events.sqlite3", root / "server.log") as (client, _):
        client.headers["Authorization"] = f"Bearer {READ_KEY}"
        yield client


def deciding_case(api: httpx.Client) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A user, one of their top 10 and its top supporting event, whose deletion takes the item
    out of the top 10 (its effect on the rank margin exceeds the margin), so the list changes."""
    for user in api.get("/v1/users", params={"limit": 1000}).json()["users"]:
        explained = api.get(f"/v1/users/{user['user']}/explanations", params={"k": 10}).json()
        for item in explained["recommendations"]:
            top = max(item["events"], key=lambda e: e["effect"])  # the first of equal ones
            if top["effect"] > item["value"] > 0:
                return user["user"], item, top
    raise AssertionError("no event of the tiny run decides an item's place in a top 10")


def connect(page: Page, base: str, key: str, *, keyboard: bool = False) -> None:
    page.tab.goto(f"{base}/ui")
    page.tab.fill("#key", key)
    if keyboard:
        page.tab.press("#key", "Enter")
    else:
        page.tab.click("#connect-button")


def shown_after(page: Page) -> list[str]:
    return page.tab.eval_on_selector_all("#after li", "rows => rows.map(r => r.dataset.item)")


def assert_diverging_colours(page: Page) -> None:
    """Blue behind events that push the item up, orange behind those that pull it down."""
    shown = page.tab.eval_on_selector_all(
        "#events button",
        "bs => bs.map(b => [Number(b.dataset.effect), getComputedStyle(b).backgroundColor])",
    )
    largest = max(abs(effect) for effect, _ in shown)
    signs = set()
    for effect, colour in shown:
        red, _, blue = (int(c) for c in re.findall(r"\d+", colour)[:3])
        if abs(effect) >= largest / 100:  # smaller ones may round to white
            assert (blue > red) == (effect > 0) and (red > blue) == (effect < 0), (effect, colour)
            signs.add(effect > 0)
    assert True in signs


def test_switching_off_the_top_supporting_event_shows_the_whatif_top_k(
    live: httpx.Client, page: Page, tmp_path: Path
) -> None:
    user, item, top = deciding_case(live)
    expected = live.post("/v1/whatif", json={"user": user, "remove": [top["position"]], "k": 10})
    expected_body = expected.json()
    assert expected_body["after"] != expected_body["before"]

    connect(page, str(live.base_url), READ_KEY, keyboard=True)
    page.tab.wait_for_selector(f"#user-list option[value='{user}']", state="attached")
    page.tab.select_option("#user-list", user)
    page.tab.wait_for_selector("#recs button[aria-pressed='true']")
    shown = page.tab.eval_on_selector_all("#recs button", "bs => bs.map(b => b.dataset.item)")
    assert shown == expected_body["before"]  # the page lists the top k the API ranks
    page.tab.focus(f"#recs button[data-item='{item['item']}']")
    page.tab.keyboard.press("Enter")
    heading = page.tab.locator("#history-heading")
    assert heading.inner_text() == f"History, coloured by the effect on {item['item']}"
    page.screenshot(tmp_path / "1-history.png")

    strongest = page.tab.locator("#events button.top-support")
    assert strongest.get_attribute("data-position") == str(top["position"])
    text = strongest.inner_text()
    assert top["item"] in text and "pushes it up" in text and "the strongest push" in text
    assert strongest.locator(".effect").inner_text().startswith("+")  # written, not only hue
    assert_diverging_colours(page)
    legend = page.tab.inner_text("#legend")
    assert "pulls down" in legend and "pushes up" in legend
    assert "rank-margin points" in legend  # the unit the API gives
    strongest.click()
    page.tab.wait_for_selector(f"#after[data-removed='{top['position']}'] li")
    assert shown_after(page) == expected_body["after"]
    assert shown_after(page) != expected_body["before"]
    assert strongest.get_attribute("aria-pressed") == "true"
    dropped = page.tab.inner_text("#dropped")
    assert dropped.startswith("Left the list:") and item["item"] in dropped
    page.screenshot(tmp_path / "2-switched-off.png")

    strongest.focus()  # the keyboard switches it back on
    page.tab.keyboard.press("Space")
    page.tab.wait_for_selector("#after[data-removed='']", state="attached")
    assert shown_after(page) == []
    assert page.tab.inner_text("#whatif-summary").startswith("Every event is on")
    assert strongest.get_attribute("aria-pressed") == "false"
    page.tab.wait_for_selector("#actions tbody tr")  # the influential next actions came too
    page.screenshot(tmp_path / "3-back-on.png")
    page.assert_clean()


def test_a_wrong_key_is_refused_in_plain_words(
    live: httpx.Client, page: Page, tmp_path: Path
) -> None:
    connect(page, str(live.base_url), "not-a-key")
    error = page.tab.locator("#error")
    error.wait_for(state="visible")
    assert "the read key was refused" in error.inner_text().lower()
    assert page.tab.locator("#users").is_hidden()
    page.screenshot(tmp_path / "refused.png")
    # the browser logs the 401 itself; nothing else went wrong and nothing left localhost
    assert [e for e in page.console_errors if "401" not in e] == []
    assert page.failed_requests == [] and page.outside_requests == []


def test_the_user_list_filters_by_id_prefix(live: httpx.Client, page: Page) -> None:
    connect(page, str(live.base_url), READ_KEY)
    page.tab.wait_for_selector("#user-list option[value='u9']", state="attached")
    page.tab.fill("#user-filter", "u3")
    page.tab.wait_for_selector("#user-list option[value='u9']", state="detached")
    values = page.tab.eval_on_selector_all("#user-list option", "os => os.map(o => o.value)")
    expected = live.get("/v1/users", params={"prefix": "u3"}).json()["users"]
    assert values == [u["user"] for u in expected] == ["u3", *(f"u3{d}" for d in range(10))]
    assert page.tab.inner_text("#users-count") == "11 users shown"
    page.tab.fill("#user-filter", "nobody")
    page.tab.wait_for_selector("#user-list option", state="detached")
    assert page.tab.inner_text("#users-count") == "No user id starts with this."
    page.assert_clean()
