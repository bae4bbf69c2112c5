"""The explain plots stay readable with 50 events: no two event labels overlap, the text is
not shrunk below 7 points, and the long titles are cut with an ellipsis."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest

from influrec.cli.plots import LABEL_CHARS, effects_figure, groups_figure, save
from influrec.influence.results import (
    EventEffect,
    ExplainResult,
    GroupEffect,
    GroupExplainResult,
    ItemExplanation,
    ItemGroupExplanation,
)

pytest.importorskip("matplotlib")

TITLES = [f"A Rather Long Movie Title Number {i}: The Sequel ({1990 + i % 10})" for i in range(60)]


def label(item: str) -> str:
    return TITLES[int(item[1:])]


def fifty_events() -> ExplainResult:
    events = [
        EventEffect(
            position=p, item=f"m{p}", behavior="rate", timestamp=880_000_000 + 3600 * p,
            effect=(-1) ** p * p / 50,
        )
        for p in range(50)
    ]  # fmt: skip
    recs = [
        ItemExplanation(
            rank=r + 1, item=f"m{50 + r}", score=1.0, measurement="m", value=0.5, events=events
        )
        for r in range(5)
    ]
    return ExplainResult(method="loo", measure="margin", k=5, recommendations=recs)


def overlapping(texts: list[Any], renderer: Any) -> list[tuple[str, str]]:
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts if t.get_text()]
    return [(a, b) for (a, x), (b, y) in pairwise(boxes) if x.overlaps(y)]


def test_fifty_events_keep_their_labels_apart_and_readable() -> None:
    fig = effects_figure(fifty_events(), who="user 42", label=label)
    fig.tight_layout()
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    ticks = ax.get_xticklabels()
    assert len(ticks) == 50 and not overlapping(ticks, renderer)
    assert not overlapping(ax.get_yticklabels(), renderer)
    assert min(t.get_fontsize() for t in [*ticks, *ax.get_yticklabels()]) >= 7
    first = ticks[0].get_text()
    assert first.startswith(TITLES[0][: LABEL_CHARS - 1]) and "…" in first
    assert first.endswith("(rate, 1997-11-20)")
    assert ax.get_title().startswith("user 42: effect of each past event on each recommendation")
    assert fig.axes[1].get_ylabel() == "effect (rank-margin points)"
    assert ax.get_yticklabels()[0].get_text().startswith("1. A Rather Long Movie Title Number 50")


def test_groups_write_each_value(tmp_path: Any) -> None:
    groups = [GroupEffect(group=g, events=n, leave_group_out=v, shapley=v)
              for g, n, v in (("view", 30, 0.4), ("buy", 2, -0.25))]  # fmt: skip
    recs = [ItemGroupExplanation(rank=1, item="m3", value=0.2, empty_value=0.05, groups=groups)]
    result = GroupExplainResult(by="behavior", measure="logp", k=1, recommendations=recs)
    path = tmp_path / "groups.svg"
    save(groups_figure(result, who="user 7", label=label), path)
    svg = path.read_text()
    for text in ("+0.40", "-0.25", "view (30 events)", "buy (2 events)", "user 7: Shapley value",
                 "(log-probability points)", "1. A Rather Long Movie Title Number 3"):  # fmt: skip
        assert text in svg
