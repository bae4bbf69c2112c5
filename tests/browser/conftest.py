"""A real headless Chromium for the page tests, driven by Playwright.

Playwright's own browser download cannot run here, so the tests drive the system's Chromium
(Debian's `chromium` package, which `.ci/run` installs). Where it or Playwright is missing the
tests skip and say why. Each page collects console errors and failed requests so a test can
assert that a page rendered cleanly; requests to any host other than localhost are refused
and recorded, since the pages must not reach outside.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_FLAGS = [
    "--no-sandbox",  # the tests run as root in CI
    "--disable-gpu",
    "--disable-background-networking",  # no calls home on a closed network
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
LOCAL_HOSTS = ("127.0.0.1", "localhost")


def chromium_binary() -> str | None:
    """The system Chromium: $INFLUREC_CHROMIUM, else the first of chromium/chromium-browser."""
    explicit = os.environ.get("INFLUREC_CHROMIUM")
    if explicit:
        return explicit
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class Page:
    """A browser tab and what went wrong while it was used."""

    tab: Any  # playwright.sync_api.Page
    console_errors: list[str] = field(default_factory=list)
    outside_requests: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)

    def screenshot(self, path: Path) -> Path:
        self.tab.screenshot(path=str(path), full_page=True)
        return path

    def assert_clean(self) -> None:
        """No console error, no failed request, no request beyond localhost."""
        assert not self.console_errors, f"console errors: {self.console_errors}"
        assert not self.failed_requests, f"failed requests: {self.failed_requests}"
        assert not self.outside_requests, f"requests outside localhost: {self.outside_requests}"


def missing(reason: str) -> None:
    """Skip, or fail where the browser is required ($INFLUREC_REQUIRE_BROWSER=1, as in CI)."""
    if os.environ.get("INFLUREC_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser tests required but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium per test module. Not per session: Playwright's sync API keeps an asyncio
    loop running in the main thread while it is open, and every later test that calls
    ``asyncio.run`` (the serving middleware tests) would fail with "cannot be called from a
    running event loop"."""
    binary = chromium_binary()
    if binary is None:
        missing("no Chromium on this machine (install Debian's chromium; .ci/run does)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=binary, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Page]:
    """A fresh tab in its own context (no shared storage between tests)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    watched = Page(tab)
    tab.on(
        "console",
        lambda message: (
            watched.console_errors.append(message.text) if message.type == "error" else None
        ),
    )
    tab.on("pageerror", lambda error: watched.console_errors.append(str(error)))
    tab.on("requestfailed", lambda request: watched.failed_requests.append(request.url))

    def route(route: Any) -> None:
        url = route.request.url
        host = url.split("//", 1)[-1].split("/", 1)[0].split(":", 1)[0]
        if url.startswith(("file:", "data:", "blob:", "about:")) or host in LOCAL_HOSTS:
            route.continue_()
        else:
            watched.outside_requests.append(url)
            route.abort()

    context.route("**/*", route)
    yield watched
    context.close()
