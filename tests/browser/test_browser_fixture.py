"""The browser fixture itself catches what the page tests rely on it to catch."""

from __future__ import annotations

import pytest

from browser.conftest import Page


def test_console_errors_and_outside_requests_are_recorded(page: Page, tmp_path) -> None:
    html = tmp_path / "bad.html"
    html.write_text(
        "<h1>hello</h1><script>console.error('broken');"
        "fetch('https://example.org/x').catch(() => {});</script>"
    )
    page.tab.goto(html.as_uri())
    page.tab.wait_for_timeout(300)
    assert page.tab.inner_text("h1") == "hello"
    assert page.console_errors and "broken" in page.console_errors[0]
    assert page.outside_requests == ["https://example.org/x"]
    with pytest.raises(AssertionError, match="console errors"):
        page.assert_clean()
    assert page.screenshot(tmp_path / "bad.png").stat().st_size > 0


def test_a_clean_page_passes(page: Page, tmp_path) -> None:
    html = tmp_path / "ok.html"
    html.write_text("<p id=x>fine</p>")
    page.tab.goto(html.as_uri())
    assert page.tab.inner_text("#x") == "fine"
    page.assert_clean()
