"""``influrec demo`` on a tiny setting: it shows the user's top-10 with the reasons for each, in
the words and numbers the library gives for the run it trained, and the planted-cause check."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import pytest

from influrec import Recommender, explain
from influrec.cli.main import main
from influrec.influence.planted import (
    first_user_with_planted_cause,
    planted_cause_of_user,
    planted_cause_rate,
)
from influrec.influence.sentences import Effect, because, event_words

TINY = ["model.d_model=16", "model.layers=1", "model.max_len=8", "train.epochs=1"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("demo") / "out"
    argv = ["demo", "--out", str(out), "--users", "30", *(p for s in TINY for p in ("--set", s))]
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:  # a module fixture cannot use capsys
        patch.setattr(sys, "stdout", printed)
        assert main(argv) == 0
    return out, printed.getvalue()


def test_the_stages_come_in_order(demo: tuple[Path, str]) -> None:
    out, text = demo
    heads = ["1. data", "2. train", "3. evaluate", "4. recommend and explain", "5. planted causes"]
    positions = [text.index(h) for h in heads]
    assert positions == sorted(positions)
    assert (out / "data" / "ground_truth.parquet").exists() and (out / "run" / "run.json").exists()


def test_each_recommendation_has_its_reasons_in_words(demo: tuple[Path, str]) -> None:
    out, text = demo
    rec = Recommender.load(out / "run")
    user = first_user_with_planted_cause(rec.dataset, max_len=8)
    assert user is not None and f"user {user} (" in text
    why = explain(rec, rec.user_history(user), k=10)
    lines = re.findall(r"^ *(\d+)\. (i\d+ is recommended.*)$", text, flags=re.MULTILINE)
    assert [int(rank) for rank, _ in lines] == list(range(1, 11))
    for (_, sentence), item in zip(lines, why.recommendations, strict=True):
        effects = [Effect(e.item, e.behavior, e.effect) for e in item.events]
        assert sentence == because(item.item, effects)
    assert text.count("rank-margin points") == 1  # the unit, named once


def test_the_planted_cause_is_checked_for_the_user_and_across_users(
    demo: tuple[Path, str],
) -> None:
    out, text = demo
    rec = Recommender.load(out / "run")
    user = first_user_with_planted_cause(rec.dataset, max_len=8)
    assert user is not None
    case = planted_cause_of_user(rec, user)
    assert case is not None
    verdict = "recovered." if case.recovered else "NOT recovered."
    cause = f"was caused by {event_words(case.cause)} (event {case.cause.position})"
    assert cause in text
    found = f"ranks first {event_words(case.found)} (event {case.found.position}, "
    assert found in text and f"log-probability points): {verdict}" in text
    rate = planted_cause_rate(rec, users=100)
    assert f"Across {rate.users:,} users" in text
    assert f"first for {rate.recovered:.0%} of them" in text and f"{rate.chance:.0%})." in text


def test_the_demo_writes_its_report_and_says_where(demo: tuple[Path, str]) -> None:
    out, text = demo
    assert text.index("6. report") > text.index("5. planted causes")
    report = out / "report.html"
    assert f"{report}" in text.replace("\n", "")
    page = report.read_text()
    assert page.startswith("<!DOCTYPE html>") and '<section id="users">' in page
