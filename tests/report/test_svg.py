"""The report's hand-written SVG: round ticks, effect colours, and a history strip that stays
readable at 50 events with long titles (cut under the cell, whole on hover, all escaped)."""

from __future__ import annotations

import re
from html import escape
from html.parser import HTMLParser

import pytest

from influrec.report.svg import (
    DOWN,
    NEUTRAL,
    UP,
    Series,
    StripCell,
    bar_chart,
    effect_colour,
    history_strip,
    line_chart,
    nice_ticks,
)


class Texts(HTMLParser):
    """The contents of an SVG's <text> and <title> elements."""

    def __init__(self) -> None:
        super().__init__()
        self.inside: list[str] = []
        self.texts: list[str] = []
        self.titles: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.inside.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.inside.pop() == tag

    def handle_data(self, data: str) -> None:
        if self.inside and self.inside[-1] == "text":
            self.texts.append(data)
        elif self.inside and self.inside[-1] == "title":
            self.titles.append(data)


def parse_text(svg: str) -> tuple[list[str], list[str]]:
    """(<text> contents, <title> contents) of ``svg``; every element must close."""
    parser = Texts()
    parser.feed(re.sub(r"<(\w+)([^<>]*)/>", r"<\1\2></\1>", svg))  # self-closed -> pairs
    parser.close()
    assert parser.inside == []
    return parser.texts, parser.titles


def hex_of(rgb: tuple[int, int, int]) -> str:
    return "#" + "".join(f"{c:02x}" for c in rgb)


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (0.0, 1.0, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        (4.6, 6.9, [4.5, 5.0, 5.5, 6.0, 6.5, 7.0]),
        (-0.03, 0.05, [-0.04, -0.02, 0.0, 0.02, 0.04, 0.06]),
        (1.0, 8.0, [0.0, 2.0, 4.0, 6.0, 8.0]),
    ],
)
def test_ticks_are_round_and_cover_the_range(low: float, high: float, expected: list) -> None:
    ticks = nice_ticks(low, high)
    assert ticks == pytest.approx(expected)
    assert ticks[0] <= low and ticks[-1] >= high


def test_effect_colours_run_from_blue_through_white_to_red() -> None:
    assert effect_colour(2.0, 2.0) == hex_of(UP)
    assert effect_colour(-2.0, 2.0) == hex_of(DOWN)
    assert effect_colour(0.0, 2.0) == hex_of(NEUTRAL)
    assert effect_colour(9.0, 2.0) == hex_of(UP)  # clipped at the limit
    half = effect_colour(1.0, 2.0)
    assert half not in (hex_of(UP), hex_of(NEUTRAL))


def test_a_strip_of_50_long_titles_is_cut_under_cells_and_whole_on_hover() -> None:
    titles = [f"A Very Long Film Title <{i}> & Its Sequel Part {i} (1997)" for i in range(50)]
    cells = [
        StripCell(effect=(i - 25) / 25, label=t, tooltip=f"{t}: effect {(i - 25) / 25:+.2f}")
        for i, t in enumerate(titles)
    ]
    svg = history_strip(
        cells,
        title="user 7",
        unit="rank-margin points",
        start="2024-01-01",
        end="2024-02-01",
        uid="s7",
    )
    texts, titles_shown = parse_text(svg)
    labels = [t for t in texts if t.startswith("A Very")]
    assert len(labels) == 50 and all(len(label) <= 18 and label.endswith("…") for label in labels)
    for title in titles:  # every full title is in a hover text, escaped in the markup
        assert any(shown.startswith(title) for shown in titles_shown)
        assert escape(title) in svg
    assert (
        "effect in rank-margin points" in texts
        and "oldest (left): 2024-01-01; newest (right): 2024-02-01" in texts
    )
    assert svg.count('id="s7"') == 1 and "url(#s7)" in svg
    xs = [float(x) for x in re.findall(r'<rect x="([\d.]+)" y="34"', svg)]
    assert len(xs) == 50 and max(xs) < 960  # all 50 cells inside the drawing


def test_line_chart_draws_each_series_and_names_them_when_several() -> None:
    two = line_chart(
        [
            Series("loo", [0, 50, 100], [0.3, 0.2, 0.1]),
            Series("random", [0, 50, 100], [0.3, 0.3, 0.1], dashed=True),
        ],
        title="deletion",
        x_label="% deleted",
        y_label="p",
    )
    assert two.count("<polyline") == 2 and two.count("<circle") == 6
    texts, _ = parse_text(two)
    assert {"loo", "random", "% deleted", "p", "deletion"} <= set(texts)
    one = line_chart(
        [Series("loss", [1, 2], [5.0, 4.0])], title="t", x_label="epoch", y_label="nats"
    )
    assert "loss" not in parse_text(one)[0]  # one series: the title says it, no legend


def test_bar_chart_has_one_bar_per_value_with_its_value_on_hover() -> None:
    svg = bar_chart(
        ["model", "popularity"],
        {"kept": [0.28, 0.07], "masked": [0.09, 0.01]},
        title="NDCG@10",
        y_label="NDCG@10",
    )
    _, hovers = parse_text(svg)
    assert [h for h in hovers if "," in h] == [
        "model, kept: 0.280",
        "model, masked: 0.090",
        "popularity, kept: 0.070",
        "popularity, masked: 0.010",
    ]
