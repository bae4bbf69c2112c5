"""`influrec runs compare RUN1 RUN2 ...`: config differences and metrics from the runs' files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from influrec.cli.main import main
from influrec.config import load_config
from influrec.data.synthesize import synthesize_dataset
from influrec.data.synthetic import SynthConfig
from influrec.evaluation.runs import evaluate_run
from influrec.training.loop import train

TINY = ["model.max_len=10", "model.layers=1", "train.batch_size=32", "eval.ks=[1,10]"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("runs")
    dataset = synthesize_dataset(SynthConfig(n_users=40, n_items=25, mean_events=10, seed=5))
    small = load_config(None, [*TINY, "model.d_model=8", "train.epochs=1"])
    large = load_config(None, [*TINY, "model.d_model=16", "train.epochs=2", "train.lr=0.003"])
    train(dataset, small, root / "small", progress=False)
    train(dataset, large, root / "large", progress=False)
    return root / "small", root / "large"


def best_valid(run: Path) -> dict:
    info = json.loads((run / "run.json").read_text())
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return lines[info["best_epoch"] - 1]["valid"]


def test_the_table_lists_only_the_differing_keys_and_each_runs_metrics(
    runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    small, large = runs
    assert main(["runs", "compare", str(small), str(large), "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert table["differences"] == {
        "model.d_model": [8, 16],
        "train.epochs": [1, 2],
        "train.lr": [0.001, 0.003],
    }
    for row, run in zip(table["runs"], runs, strict=True):
        assert row["label"] == run.name and row["test"] == {}
        assert row["valid"]["NDCG@10"] == best_valid(run)["NDCG@10"]
    assert [row["epochs"] for row in table["runs"]] == [1, 2]
    assert main(["runs", "compare", str(small), str(large)]) == 0
    text = capsys.readouterr().out
    assert "model.d_model" in text and "valid NDCG@10" in text and "eval.ks" not in text
    assert f"{best_valid(large)['NDCG@10']:.4f}" in text


def test_test_metrics_are_the_runs_evaluations(
    runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["runs", "compare", *map(str, runs), "--test", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["runs"]
    for row, run in zip(rows, runs, strict=True):
        expected = evaluate_run(run, split="test").model.unmasked["NDCG@10"]
        assert row["test"]["NDCG@10"] == pytest.approx(expected)


def test_one_run_or_a_folder_that_is_no_run_is_refused(
    runs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["runs", "compare", str(runs[0])]) == 2
    assert "give two or more runs to compare, got 1" in capsys.readouterr().err
    assert main(["runs", "compare", str(runs[0]), str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err
