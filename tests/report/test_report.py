"""``influrec report``: one self-contained page whose every section holds what the library
answers for the run (a real tiny training, no mocks)."""

from __future__ import annotations

import re
import shutil
from html import escape
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from influrec.cli.main import main
from influrec.data_influence import DataInfluence
from influrec.inference import Recommender
from influrec.influence import api
from influrec.report import write_report
from influrec.report.html import format_number
from influrec.report.users import choose_users

SECTIONS = ("data", "training", "accuracy", "behaviours", "users", "faithfulness", "harmful")
VOID = {"meta", "br", "img", "input", "link", "hr", "wbr", "source", "col", "area", "base"}
SVG_LEAVES = {"rect", "line", "circle", "path", "polyline", "stop"}  # written self-closed


class Page(HTMLParser):
    """Checks that every tag closes in order; collects each section's text, the attributes
    that load something, and the SVGs."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.errors: list[str] = []
        self.text: dict[str, list[str]] = {}
        self.section: str | None = None
        self.loads: list[str] = []
        self.svgs = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "section":
            self.section = found.get("id")
        if tag == "svg":
            self.svgs += 1
        self.loads += [v or "" for k, v in attrs if k in ("src", "href", "action", "srcset")]
        if tag not in VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.loads += [v or "" for k, v in attrs if k in ("src", "href")]

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.open[-1:]}")
            return
        self.open.pop()
        if tag == "section":
            self.section = None

    def handle_data(self, data: str) -> None:
        if self.section:
            self.text.setdefault(self.section, []).append(data)

    def section_text(self, name: str) -> str:
        return " ".join(" ".join(self.text.get(name, [])).split())


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text())
    page.close()
    return page


def test_the_page_is_well_formed_and_loads_nothing(tiny_report: tuple[Path, Path]) -> None:
    _, out = tiny_report
    html = out.read_text()
    page = parse(out)
    assert page.errors == [] and page.open == []
    assert all(v.startswith("#") for v in page.loads), page.loads  # only links inside the page
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert not re.search(r"url\((?!#)", html)  # CSS url() only to the page's own gradients
    assert "http://" not in html and "https://" not in html
    assert page.svgs >= 2 + 1 + 1 + 2 + 2  # training, accuracy, shares, strips, faithfulness


def test_every_section_is_there_with_content(tiny_report: tuple[Path, Path]) -> None:
    _, out = tiny_report
    page = parse(out)
    for name in SECTIONS:
        text = page.section_text(name)
        assert len(text) > 200, (name, text)
        assert "Skipped:" not in text, (name, text)


def test_the_data_section_counts_the_runs_dataset(tiny_report: tuple[Path, Path]) -> None:
    run, out = tiny_report
    rec = Recommender.load(run)
    text = parse(out).section_text("data")
    assert f"events {rec.dataset.events.num_rows:,}" in text
    assert f"users {rec.n_users:,} items {rec.n_items:,}" in text
    for behavior, count in rec.dataset.stats["behaviors"].items():
        assert f"{behavior} {count:,}" in text


def test_each_user_card_says_what_the_library_says(tiny_report: tuple[Path, Path]) -> None:
    run, out = tiny_report
    rec = Recommender.load(run)
    html = out.read_text()
    for user in choose_users(rec, 2, seed=0):
        result = api.explain(rec, rec.user_history(user), k=10, method="loo", measure="margin")
        top = result.recommendations[0]
        assert top.sentence
        card = html[html.index(f"<h3>User {escape(user)}</h3>") :]
        card = card[: card.index("</div>")]
        assert f'<p class="sentence">{escape(top.sentence)}</p>' in card
        assert f"each event&#x27;s effect on #1 {escape(rec.item_label(top.item))}" in card
        for r in result.recommendations:  # the top 10 in order, each with its sentence
            assert escape(r.sentence or "") in card
        ranked = re.findall(r'<td class="num">(\d+)</td><td title="item id ([^"]+)"', card)
        assert [(int(rank), item) for rank, item in ranked][:10] == [
            (r.rank, r.item) for r in result.recommendations
        ]
        # one strip cell per event the model sees, each with its effect in the tooltip
        for e in top.events:
            assert f"event {e.position}: {escape(e.behavior)} of" in card
            assert f"{e.effect:+.4f} rank-margin points" in card


def test_faithfulness_is_the_librarys_curves(tiny_report: tuple[Path, Path]) -> None:
    run, out = tiny_report
    rec = Recommender.load(run)
    curves = api.faithfulness_curves(rec, ["loo", "random"], users=4, seed=0)
    text = parse(out).section_text("faithfulness")
    for method in ("loo", "random"):
        deletion = format_number(float(np.mean(curves.deletion[method])))
        insertion = format_number(float(np.mean(curves.insertion[method])))
        assert f"{method} {deletion} {insertion}" in text
    # the curves' means are the faithfulness report's AUCs for the same users
    report = api.faithfulness_report(rec, ["loo", "random"], users=4, seed=0)
    for method in ("loo", "random"):
        assert np.mean(curves.deletion[method]) == pytest.approx(
            report.metrics[method]["DEL-AUC"], abs=1e-6
        )
        assert np.mean(curves.insertion[method]) == pytest.approx(
            report.metrics[method]["INS-AUC"], abs=1e-6
        )


def test_the_most_harmful_interactions_are_tracins(tiny_report: tuple[Path, Path]) -> None:
    run, out = tiny_report
    scores = DataInfluence(run, checkpoints=1).tracin(validation=True)
    worst = np.argsort(scores.validation, kind="stable")[:10]
    text = parse(out).section_text("harmful")
    assert f"{len(scores.events):,} training interactions" in text
    shown = re.findall(r"-?\d\.\d+e-\d+|-?\d+\.\d{4}", text.split("most harmful:")[1])
    assert shown == [format_number(float(scores.validation[i])) for i in worst]


def test_a_run_without_checkpoints_says_why_tracin_is_skipped(
    tiny_report: tuple[Path, Path], tmp_path: Path
) -> None:
    run, _ = tiny_report
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    shutil.rmtree(copy / "checkpoints")
    out = write_report(copy, tmp_path / "r.html", users=1, share_users=2, faithfulness_users=2)
    page = parse(out)
    assert "Skipped: the run kept no checkpoints" in page.section_text("harmful")
    assert "(skipped)" in out.read_text()  # said in the contents too
    assert "Skipped" not in page.section_text("users")


def test_bad_arguments_are_named(
    tiny_report: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, _ = tiny_report
    argv = ["report", str(run), "--user", "nobody", "--out", str(tmp_path / "r.html")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "unknown user 'nobody'" in err and "--user" in err
    assert not (tmp_path / "r.html").exists()
    assert main(["report", str(run), "--out", str(tmp_path / "missing" / "r.html")]) == 2
    err = capsys.readouterr().err
    assert "missing" in err and "does not exist" in err and "--out" in err
    assert main(["report", str(run), "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
