"""The report opened in a real headless Chromium: every section renders, every chart is
drawn, and the page asks nothing of any host."""

from __future__ import annotations

from pathlib import Path

from browser.conftest import Page

SECTIONS = ("data", "training", "accuracy", "behaviours", "users", "faithfulness", "harmful")


def test_the_report_renders_every_section_cleanly(
    page: Page, tiny_report: tuple[Path, Path], tmp_path: Path
) -> None:
    _, report = tiny_report
    page.tab.goto(report.as_uri())
    page.tab.wait_for_load_state("load")
    for name in SECTIONS:
        section = page.tab.locator(f"section#{name}")
        assert section.is_visible(), name
        assert len(section.inner_text().strip()) > 200, name
        assert "Skipped:" not in section.inner_text(), name
    svgs = page.tab.locator("svg")
    assert svgs.count() >= 8
    for i in range(svgs.count()):
        svg = svgs.nth(i)
        box = svg.bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 100, i
        assert svg.locator("rect, polyline, circle").count() > 0, i  # something is drawn
    strip = page.tab.locator("section#users svg").first
    assert strip.locator("g > title").count() > 0  # one tooltip per event of the history
    page.assert_clean()
    shot = page.screenshot(tmp_path / "report.png")
    assert shot.stat().st_size > 50_000
