from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from influrec.cli.main import main
from influrec.data.times import readable_time
from tests_helpers import train_tiny_run


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_run(tmp_path_factory.mktemp("influence-cli"))


def json_out(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_explain_json_and_plot(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = json_out(capsys, ["explain", str(run), "--user", "u2", "--k", "3", "--json"])
    assert result["method"] == "loo" and len(result["recommendations"]) == 3
    event = result["recommendations"][0]["events"][0]
    assert set(event) == {"position", "item", "behavior", "timestamp", "effect"}
    groups = json_out(
        capsys, ["explain", str(run), "--user", "u2", "--k", "2", "--groups", "behavior", "--json"]
    )
    first = groups["recommendations"][0]
    total = sum(g["shapley"] for g in first["groups"])
    assert abs(total - (first["value"] - first["empty_value"])) < 1e-4
    ranked = json_out(
        capsys, ["explain", str(run), "--user", "u2", "--k", "2", "--measure", "rank", "--json"]
    )
    assert ranked["recommendations"][1]["value"] < -1.5  # the second item: rank 2, p/2 <= 0.5
    assert main(["explain", str(run), "--user", "u2", "--method", "ig", "--measure", "rank"]) == 2
    assert "not differentiable" in capsys.readouterr().err
    plot = tmp_path / "heat.png"
    assert main(["explain", str(run), "--user", "u2", "--method", "ig", "--plot", str(plot)]) == 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"plot written to {plot}" in capsys.readouterr().out
    history = tmp_path / "h.json"
    history.write_text(
        json.dumps([{"item": "i1", "behavior": "view"}, {"item": "i2"}, {"item": "nope"}])
    )
    adhoc = json_out(capsys, ["explain", str(run), "--history", str(history), "--k", "2", "--json"])
    assert adhoc["unknown"] == ["event 2: unknown item 'nope'"]
    assert [e["item"] for e in adhoc["recommendations"][0]["events"]] == ["i1", "i2"]


def test_counterfactual_whatif_actions_faithfulness(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    top = json_out(capsys, ["recommend", str(run), "--user", "u2", "--k", "1", "--json"])
    item = top["recommendations"][0]["item_id"]
    cf = json_out(capsys, ["counterfactual", str(run), "--user", "u2", "--item", item, "--json"])
    assert {"removed", "size", "valid", "new_rank"} <= set(cf) and cf["size"] == len(cf["removed"])
    wi = json_out(
        capsys, ["whatif", str(run), "--user", "u2", "--add", "i3:buy", "--remove", "0", "--json"]
    )
    assert len(wi["before"]) == 10 and len(wi["after"]) == 10 and 0 <= wi["jaccard"] <= 1
    acts = json_out(
        capsys,
        [
            "influential-actions",
            str(run),
            "--user",
            "u2",
            "--candidates",
            "5",
            "--top",
            "3",
            "--json",
        ],
    )
    assert acts["candidates"] == 20 and len(acts["actions"]) == 3
    report = json_out(
        capsys, ["faithfulness", str(run), "--users", "5", "--methods", "loo,random", "--json"]
    )
    assert set(report["metrics"]) == {"loo", "random"} and "planted_cause" in report
    assert main(["whatif", str(run), "--user", "u2", "--add", "i3:teleport"]) == 2
    assert "unknown behaviour 'teleport'" in capsys.readouterr().err


def text_out(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    capsys.readouterr()
    assert main(argv) == 0
    return capsys.readouterr().out


def test_explain_text_shows_shapley_standard_errors_and_the_ig_gap(
    run: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    argv = ["explain", str(run), "--user", "u2", "--k", "1"]
    shapley = json_out(capsys, [*argv, "--method", "shapley", "--json"])["recommendations"][0]
    text = text_out(capsys, [*argv, "--method", "shapley"])
    assert "± std. error" in text and "16 sampled permutations" in text
    strongest = max(shapley["events"], key=lambda e: abs(e["effect"]))
    effect, error = f"{strongest['effect']:+.4f}", f"{strongest['standard_error']:.4f}"
    assert re.search(rf"{re.escape(effect)} \S +{error} ", text)  # the same row
    ig = json_out(capsys, [*argv, "--method", "ig", "--json"])["recommendations"][0]
    text = text_out(capsys, [*argv, "--method", "ig"])
    assert f"completeness gap {ig['completeness_gap']:.4f}" in text and "(50 steps" in text
    assert "std. error" not in text and "completeness" not in text_out(capsys, argv)  # loo


def test_every_plot_names_user_items_unit_and_says_where_it_went(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from influrec.inference import Recommender

    rec = Recommender.load(run)
    effects, groups = tmp_path / "effects.svg", tmp_path / "groups.svg"
    argv = ["explain", str(run), "--user", "u2", "--k", "2"]
    assert f"plot written to {effects}" in text_out(capsys, [*argv, "--plot", str(effects)])
    svg = effects.read_text()
    result = json_out(capsys, [*argv, "--json"])
    first = result["recommendations"][0]
    assert "user u2: effect of each past event" in svg and "(rank-margin points)" in svg
    assert f"1. {rec.item_label(first['item'])}" in svg  # item i7 (category c2)
    event = first["events"][-1]
    day = readable_time(event["timestamp"])[:10]
    assert f"{rec.item_label(event['item'])} ({event['behavior']}, {day})" in svg
    # explain --groups --plot draws the groups' Shapley values (it used to write nothing)
    said = text_out(capsys, [*argv, "--groups", "behavior", "--plot", str(groups)])
    assert f"plot written to {groups}" in said and groups.stat().st_size > 0
    svg = groups.read_text()
    assert "user u2: Shapley value of each behaviour type" in svg
    assert "Shapley value (rank-margin points)" in svg and "events)" in svg
    assert f"1. {rec.item_label(first['item'])}" in svg
    # with --json, stdout stays JSON and the path goes to stderr
    groups.unlink()
    capsys.readouterr()
    assert main([*argv, "--groups", "time", "--json", "--plot", str(groups)]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["by"] == "time" and f"plot written to {groups}" in captured.err
    assert "last" in groups.read_text()  # the time windows: last hour, last day...
