from __future__ import annotations

import json
from pathlib import Path

import pytest

from influrec.cli.main import main
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
