"""Items by their titles, times as dates and explanations in plain words, on a slice of the
real ML-100k (skipped when ../shared/datasets/ml-100k is absent)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from influrec.cli.main import main
from influrec.inference import Recommender
from tests_helpers import ml100k_slice_run, ml100k_titles


@pytest.fixture(scope="module")
def ml_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ml100k_slice_run(tmp_path_factory.mktemp("ml100k-names"))


def output(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    capsys.readouterr()
    assert main(argv) == 0
    return capsys.readouterr().out


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # rich tables: no title wrapped over two lines


def longest_user(run: Path) -> str:
    rec = Recommender.load(run)
    return max(rec.user_index, key=lambda u: len(rec.user_history(u)))


@pytest.mark.usefixtures("wide")
def test_recommend_names_movies(ml_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    user, titles = longest_user(ml_run), ml100k_titles()
    payload = json.loads(output(capsys, ["recommend", str(ml_run), "--user", user, "--json"]))
    recs = payload["recommendations"]
    assert all(r["title"] == titles[r["item_id"]] for r in recs)
    assert list(recs[0]) == ["rank", "item_idx", "item_id", "title", "score"]
    text = output(capsys, ["recommend", str(ml_run), "--user", user, "--k", "3"])
    assert all(titles[r["item_id"]] in text for r in recs[:3])


@pytest.mark.usefixtures("wide")
def test_explain_opens_with_a_sentence_in_titles(
    ml_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    user, titles = longest_user(ml_run), ml100k_titles()
    total = len(Recommender.load(ml_run).user_history(user))
    assert total > 20  # the window (max_len 20) covers only the last events
    argv = ["explain", str(ml_run), "--user", user, "--k", "2"]
    result = json.loads(output(capsys, [*argv, "--json"]))
    first = result["recommendations"][0]
    assert first["title"] == titles[first["item"]]
    assert all(e["title"] == titles[e["item"]] for e in first["events"])
    assert first["sentence"].startswith(f"{first['title']} is recommended")
    assert result["history_events"] == total and result["unit"].startswith("rank-margin points")
    assert isinstance(first["events"][0]["timestamp"], int)  # epoch seconds stay in JSON
    text = output(capsys, argv)
    lines = text.splitlines()
    assert lines[0].startswith("unit: rank-margin points")
    assert lines[1] == first["sentence"]
    assert lines[2] == f"effects in rank-margin points; the last 20 of {total} events; 8 shown"
    strongest = max(first["events"], key=lambda e: abs(e["effect"]))
    assert titles[strongest["item"]] in text
    assert re.search(r"199[78]-\d\d-\d\d \d\d:\d\d", text)  # ML-100k was rated in 1997-98
    assert not re.search(r"\b8[78]\d{7}\b", text)  # no epoch seconds in the table


@pytest.mark.usefixtures("wide")
def test_whatif_counterfactual_actions_name_movies(
    ml_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    user, titles = longest_user(ml_run), ml100k_titles()
    top = json.loads(output(capsys, ["recommend", str(ml_run), "--user", user, "--k", "1",
                                     "--json"]))["recommendations"][0]  # fmt: skip
    cf = ["counterfactual", str(ml_run), "--user", user, "--item", top["item_id"], "--k", "3"]
    assert titles[top["item_id"]] in output(capsys, cf)
    assert json.loads(output(capsys, [*cf, "--json"]))["title"] == titles[top["item_id"]]
    whatif = ["whatif", str(ml_run), "--user", user, "--remove", "0", "--k", "3"]
    answer = json.loads(output(capsys, [*whatif, "--json"]))
    assert answer["titles"] == {i: titles[i] for i in {*answer["before"], *answer["after"]}}
    assert titles[answer["after"][0]] in output(capsys, whatif)
    actions = ["influential-actions", str(ml_run), "--user", user, "--candidates", "5"]
    found = json.loads(output(capsys, [*actions, "--top", "2", "--json"]))["actions"]
    assert all(a["title"] == titles[a["item"]] for a in found)
    assert titles[found[0]["item"]] in output(capsys, [*actions, "--top", "2"])


def test_plot_labels_and_attention_carry_no_sentence(ml_run: Path) -> None:
    from influrec.influence import api

    rec, titles = Recommender.load(ml_run), ml100k_titles()
    history = rec.user_history(longest_user(ml_run))
    result = api.explain(rec, history, k=2)
    _, rows, columns = api.effects_matrix(result)
    first = result.recommendations[0]
    assert rows[0] == f"1. {titles[first.item]}"
    assert columns == [f"{titles[e.item]} (rate)" for e in first.events]
    attention = api.explain(rec, history, k=2, method="attention")
    assert all(r.sentence is None for r in attention.recommendations)  # weights are no causes


def test_an_items_file_name_column_names_items(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    rows = ["user,item,behavior,time"]
    for u in range(12):  # each user walks through 8 of 10 items, one a day
        rows += [f"u{u},p{(u + t) % 10},view,{86400 * (100 + t)}" for t in range(8)]
    (tmp_path / "log.csv").write_text("\n".join(rows) + "\n")
    names = {f"p{i}": f"Shoe model {i}" for i in range(9)}  # p9 has no name
    lines = ["item_id,name", *(f"{i},{n}" for i, n in names.items()), "p9,"]
    (tmp_path / "items.csv").write_text("\n".join(lines) + "\n")
    data, run = tmp_path / "data", tmp_path / "run"
    argv = ["data", "prepare", str(tmp_path / "log.csv"), "--format", "csv", "--out", str(data)]
    mapping = "user=user,item=item,behavior=behavior,time=time"
    assert main([*argv, "--map", mapping, "--items-file", str(tmp_path / "items.csv")]) == 0
    settings = ["model.max_len=8", "model.d_model=8", "model.layers=1", "train.epochs=1"]
    train = ["train", str(data), "--out", str(run), "--no-progress"]
    assert main([*train, *(p for s in settings for p in ("--set", s))]) == 0
    explain = ["explain", str(run), "--user", "u3", "--k", "1"]
    result = json.loads(output(capsys, [*explain, "--json"]))
    events = result["recommendations"][0]["events"]
    assert [e.get("title") for e in events] == [names.get(e["item"]) for e in events]
    text = output(capsys, explain)
    assert "1970-04-1" in text and "view" in text  # day 100 onwards, as a date
    strongest = max(events, key=lambda e: abs(e["effect"]))
    assert names.get(strongest["item"], strongest["item"]) in text


def test_taobao_items_are_shown_by_id_and_category(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    category = {f"{2300 + i}": f"{4500 + i % 3}" for i in range(10)}  # item -> category
    rows = []  # UserBehavior.csv: user, item, category, behaviour, time; no header
    for u in range(12):
        for t in range(8):
            item = f"{2300 + (u + t) % 10}"
            behavior = "buy" if t == 7 else "pv"
            rows.append(f"{u + 1},{item},{category[item]},{behavior},{1511544070 + 600 * t}")
    (tmp_path / "UserBehavior.csv").write_text("\n".join(rows) + "\n")
    data, run = tmp_path / "data", tmp_path / "run"
    prepare = ["data", "prepare", str(tmp_path / "UserBehavior.csv"), "--format", "taobao"]
    assert main([*prepare, "--out", str(data)]) == 0
    settings = ["model.max_len=8", "model.d_model=8", "model.layers=1", "train.epochs=1"]
    train = ["train", str(data), "--out", str(run), "--no-progress"]
    assert main([*train, *(p for s in settings for p in ("--set", s))]) == 0
    shown = lambda item: f"item {item} (category {category[item]})"  # noqa: E731
    recommend = ["recommend", str(run), "--user", "3", "--k", "2"]
    top = json.loads(output(capsys, [*recommend, "--json"]))["recommendations"]
    assert all("title" not in r for r in top)  # a category is no title: JSON keeps the id
    text = output(capsys, recommend)
    assert all(shown(r["item_id"]) in text for r in top)
    explain = ["explain", str(run), "--user", "3", "--k", "1"]
    first = json.loads(output(capsys, [*explain, "--json"]))["recommendations"][0]
    assert first["sentence"].startswith(f"{shown(first['item'])} is recommended")
    text = output(capsys, explain)
    assert f"#1 {shown(first['item'])} (score" in text
    strongest = max(first["events"], key=lambda e: abs(e["effect"]))
    assert shown(strongest["item"]) in text and "2017-11-2" in text
