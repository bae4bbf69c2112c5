from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from influrec.cli.main import main
from influrec.config import load_config
from influrec.data.synthesize import synthesize_dataset
from influrec.data.synthetic import SynthConfig
from influrec.training.loop import train
from influrec.tuning.study import PruningCallback, TuneSettings, open_study

optuna = pytest.importorskip("optuna")

BASE = [
    "model.max_len=10",
    "model.d_model=16",
    "model.layers=1",
    "train.batch_size=32",
    "train.warmup_steps=2",
    "train.epochs=2",
    "eval.ks=[1,10]",
]
SPACE = """
[space]
model.d_model = [8, 16]
train.lr = { low = 1e-3, high = 1e-2, log = true }
"""


def setup(root: Path) -> tuple[Path, Path, list[str]]:
    assert (
        main(["data", "synth", "--out", str(root / "data"), "--users", "40", "--items", "25"]) == 0
    )
    space = root / "space.toml"
    space.write_text(SPACE)
    settings = [part for o in BASE for part in ("--set", o)]
    return root / "data", space, settings


def test_a_pruned_trial_stops_training_at_the_epoch_it_is_pruned(tmp_path: Path) -> None:
    dataset = synthesize_dataset(SynthConfig(n_users=40, n_items=25, mean_events=10, seed=2))
    study = optuna.create_study(
        direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=2.0)
    )
    trial = study.ask()  # NDCG is below 2: pruned at its first report
    config = load_config(None, [*BASE, "train.epochs=5"])
    result = train(
        dataset, config, tmp_path / "run", progress=False, callbacks=[PruningCallback(trial)]
    )
    assert result.epochs_run == 1
    stopped = json.loads((tmp_path / "run" / "run.json").read_text())["stopped"]
    assert stopped["reason"] == "callback" and stopped["by"] == "PruningCallback"
    assert trial.number == 0 and list(study.trials[0].intermediate_values) == [1]


def test_a_search_scores_trials_on_validation_and_writes_the_best_config(tmp_path: Path) -> None:
    data, space, settings = setup(tmp_path)
    out = tmp_path / "study"
    args = [
        "tune",
        str(data),
        "--space",
        str(space),
        "--trials",
        "3",
        "--out",
        str(out),
        "--seed",
        "0",
    ]
    assert main([*args, *settings]) == 0
    rows = list(csv.DictReader((out / "trials.csv").open()))
    assert [int(r["number"]) for r in rows] == [0, 1, 2]
    study = open_study(out, TuneSettings())
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert complete
    for t in study.trials:
        run = Path(t.user_attrs["run_dir"])
        epochs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        info = json.loads((run / "run.json").read_text())
        if t.state.name == "COMPLETE":  # the best epoch's VALIDATION NDCG@10
            assert t.value == epochs[info["best_epoch"] - 1]["valid"]["NDCG@10"]
        else:
            assert t.state.name == "PRUNED" and info["stopped"]["reason"] == "callback"
        assert load_config(run / "config.toml").model.d_model == t.params["model.d_model"]
    best = max(complete, key=lambda t: t.value)
    config = load_config(out / "best.toml")  # what `influrec train --config` reads
    assert config.model.d_model == best.params["model.d_model"]
    assert config.train.lr == pytest.approx(best.params["train.lr"])
    assert config.train.max_minutes == 0  # the base's, not the trial's time cap
    assert (out / "history.png").stat().st_size > 1000


@pytest.mark.slow  # two processes, each starting Python and torch: about a minute
def test_two_worker_processes_share_one_sqlite_study(tmp_path: Path) -> None:
    data, space, settings = setup(tmp_path)
    out = tmp_path / "study"
    command = [sys.executable, "-m", "influrec.cli.main", "tune", str(data), "--space", str(space)]
    command += ["--trials", "2", "--out", str(out), "--pruner", "none", *settings]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    workers = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for _ in range(2)
    ]
    for worker in workers:
        output, _ = worker.communicate(timeout=600)
        assert worker.returncode == 0, output.decode()
    study = open_study(out, TuneSettings())
    assert sorted(t.number for t in study.trials) == [0, 1, 2, 3]
    by_worker: dict[str, int] = {}
    for t in study.trials:
        assert t.state.name == "COMPLETE"
        by_worker[t.user_attrs["worker"]] = by_worker.get(t.user_attrs["worker"], 0) + 1
        assert Path(t.user_attrs["run_dir"], "model.safetensors").exists()
    assert sorted(by_worker.values()) == [2, 2]  # each process ran its own two trials


def test_a_bad_space_file_fails_before_any_trial(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, space, settings = setup(tmp_path)
    space.write_text("[space]\ntrain.lr = { low = 1e-2, high = 1e-4 }\n")
    out = tmp_path / "study"
    assert (
        main(
            [
                "tune",
                str(data),
                "--space",
                str(space),
                "--trials",
                "2",
                "--out",
                str(out),
                *settings,
            ]
        )
        == 2
    )
    assert "train.lr: low must be below high" in capsys.readouterr().err
    assert not out.exists()
