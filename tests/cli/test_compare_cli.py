"""`influrec evaluate RUN --compare RUN2,...`: runs of different families on one prepared dataset
in one table (each row what the run's own `evaluate` reports), and the refusal of runs prepared
from other data or split otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from influrec.cli.main import main
from influrec.evaluation.compare import compare_runs, data_fingerprint
from influrec.run import load_run_dataset, read_run_info
from tests_helpers import train_tiny_run

TINY = ["model.max_len=12", "model.d_model=16", "model.layers=1", "train.epochs=1"]
TINY += ["train.batch_size=32", "eval.ks=[1,10]"]


def train_beside(run: Path, name: str, *settings: str) -> Path:
    """Another tiny run on ``run``'s prepared dataset (root/data), in root/``name``."""
    out = run.parent / name
    argv = ["train", str(run.parent / "data"), "--out", str(out), "--no-progress"]
    assert main([*argv, *(p for s in (*TINY, *settings) for p in ("--set", s))]) == 0
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A transformer run and a gru run on one synthetic dataset."""
    transformer = train_tiny_run(tmp_path_factory.mktemp("compare"), epochs=1)
    return transformer, train_beside(transformer, "gru-run", "model.architecture=gru")


def json_out(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    capsys.readouterr()
    assert main(argv) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_runs_of_two_families_in_one_table(
    runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    transformer, gru = runs
    argv = ["evaluate", str(transformer), "--baselines", "popularity", "--compare", str(gru)]
    both = json_out(capsys, [*argv, "--json"])
    assert [(r["label"], r["architecture"]) for r in both["runs"]] == [
        ("run", "transformer"),
        ("gru-run", "gru"),
    ]
    assert both["split"] == "test" and both["targets"] == 40
    for row, run in zip(both["runs"], runs, strict=True):
        own = json_out(capsys, ["evaluate", str(run), "--json", "--baselines", "popularity"])
        metrics = {k: v for k, v in row.items() if k not in ("label", "run", "architecture")}
        assert {"HR@1", "NDCG@10", "masked"} <= set(metrics) and row["run"] == str(run)
        assert metrics == {k: own[k] for k in metrics}  # every metric, both conventions
        assert both["baselines"] == own["baselines"]  # same data, same split: same baselines
    assert both["runs"][0]["NDCG@10"] != both["runs"][1]["NDCG@10"]  # two different models

    capsys.readouterr()
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "run (transformer)" in text and "gru-run (gru)" in text and "popularity" in text
    assert text.count("NDCG@10") == 2  # one table per masking convention, not one per run
    assert f"{both['runs'][1]['NDCG@10']:.4f}" in text


def test_runs_on_other_data_or_split_otherwise_are_refused(
    runs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    transformer, _ = runs
    other = train_tiny_run(tmp_path / "other", users=30, epochs=1)
    capsys.readouterr()
    assert main(["evaluate", str(transformer), "--compare", str(other)]) == 2
    err = capsys.readouterr().err
    assert f"cannot compare runs {transformer} and {other}" in err
    assert "prepared from different data" in err
    temporal = train_beside(transformer, "temporal-run", "data.split=temporal")
    assert main(["evaluate", str(transformer), "--compare", str(temporal)]) == 2
    err = capsys.readouterr().err
    assert "split differently (data.split=leave_one_out vs temporal" in err
    assert str(temporal) in err
    assert main(["evaluate", str(transformer), "--compare", f"{temporal},{transformer}"]) == 2
    assert f"run {transformer} is given twice" in capsys.readouterr().err


def test_the_fingerprint_sees_one_changed_event(runs: tuple[Path, Path]) -> None:
    transformer, gru = runs
    dataset = load_run_dataset(transformer, read_run_info(transformer))
    same = load_run_dataset(gru, read_run_info(gru))
    assert data_fingerprint(dataset) == data_fingerprint(same)
    items = dataset.events.column("item_idx").to_numpy().copy()
    items[5] = items[5] % dataset.n_items + 1
    index = dataset.events.column_names.index("item_idx")
    changed = dataset.events.set_column(index, "item_idx", [items.astype(items.dtype)])
    same.events = changed.cast(dataset.events.schema)
    assert data_fingerprint(dataset) != data_fingerprint(same)


def test_compare_runs_without_runs_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="no runs"):
        compare_runs([])
