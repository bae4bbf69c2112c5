"""Resuming: only an existing run with a checkpoint, only with the run's config (except the keys
that change neither the model nor its data), epochs read from state.json, never folder names."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file

from influrec.cli.main import main
from influrec.config import load_config
from influrec.data.synthesize import synthesize_dataset
from influrec.data.synthetic import SynthConfig
from influrec.errors import InputError
from influrec.run import saved_checkpoints
from influrec.training.loop import train
from tests_helpers import train_tiny_run


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 2-epoch run (checkpoints of epochs 1 and 2)."""
    return train_tiny_run(tmp_path_factory.mktemp("resume"), users=40, epochs=2)


@pytest.fixture
def run(finished: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(finished, copy)
    return copy


def resume(run: Path, *settings: str, data: Path | None = None) -> list[str]:
    sets = [part for s in settings for part in ("--set", s)]
    data = data or run / "data"
    return ["train", str(data), "--out", str(run), "--resume", "--no-progress", *sets]


def error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    return err


def test_resume_needs_a_run_with_a_checkpoint(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing"
    assert "no such run folder" in error(capsys, resume(missing, data=run / "data"))
    assert not missing.exists()  # no silent fresh start
    shutil.rmtree(run / "checkpoints")
    assert "no checkpoint was saved" in error(capsys, resume(run))
    dataset = synthesize_dataset(SynthConfig(n_users=30, n_items=20, seed=1))
    with pytest.raises(InputError, match="no such run folder"):
        train(dataset, load_config(), missing, resume=True, progress=False)
    assert not missing.exists()


def test_a_changed_config_names_each_key_with_old_and_new_value(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = error(capsys, resume(run, "model.d_model=32", "train.lr=0.01", "train.epochs=5"))
    assert "model.d_model: 16 -> 32" in err and "train.lr: 0.001 -> 0.01" in err
    assert "train.epochs:" not in err  # may change
    assert "only train.epochs, train.patience" in err  # the rule is in the message
    other = run.parent / "other.toml"
    other.write_text("[model]\nd_model = 16\nlayers = 1\nmax_len = 12\n")
    err = error(capsys, [*resume(run), "--config", str(other)])  # defaults elsewhere
    assert "train.batch_size: 32 -> 128" in err


def test_a_different_dataset_is_refused(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other"
    assert main(["data", "synth", "--out", str(other), "--users", "40", "--items", "25"]) == 0
    err = error(capsys, resume(run, "train.epochs=3", data=other))
    assert "different dataset" in err and "n_items: 30 -> 25" in err


def test_a_finished_run_is_extended_from_its_last_checkpoint(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = {
        c.epoch: load_file(str(c.folder / "model.safetensors")) for c in saved_checkpoints(run)
    }
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert main(resume(run, "train.epochs=4", "train.patience=20")) == 0, capsys.readouterr().err
    info = json.loads((run / "run.json").read_text())
    assert info["epochs_run"] == 4 and info["finished"]
    assert info["config"]["train"]["epochs"] == 4
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2, 3, 4]
    assert lines[:2] == history  # epochs 1-2 were not trained again
    assert lines[2]["step"] > history[-1]["step"]
    after = {c.epoch: c.folder for c in saved_checkpoints(run)}
    assert set(after) == {2, 3, 4}  # keep_checkpoints=3 pruned epoch 1
    for name, tensor in before[2].items():
        assert load_file(str(after[2] / "model.safetensors"))[name].equal(tensor)


def test_checkpoint_epochs_come_from_state_json_not_names(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folders = {c.epoch: c.folder for c in saved_checkpoints(run)}
    folders[1].rename(folders[1].with_name("zz-renamed"))  # sorts last by name
    folders[2].rename(folders[2].with_name("aa-renamed"))
    assert [c.epoch for c in saved_checkpoints(run)] == [1, 2]
    assert main(resume(run, "train.epochs=3")) == 0, capsys.readouterr().err
    names = {c.epoch: c.folder.name for c in saved_checkpoints(run)}
    assert names == {1: "zz-renamed", 2: "aa-renamed", 3: "epoch-0003"}  # continued from 2
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]


def test_an_early_stopped_run_goes_on_only_with_more_patience(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dataset = synthesize_dataset(SynthConfig(n_users=40, n_items=20, mean_events=10, seed=3))
    flat = ["model.d_model=16", "model.layers=1", "model.max_len=8", "eval.ks=[1,10]"]
    flat += ["train.lr=1e-12", "train.patience=1", "train.batch_size=32"]  # nothing improves
    run = tmp_path / "run"
    assert train(dataset, load_config(None, [*flat, "train.epochs=5"]), run, progress=False)
    assert json.loads((run / "run.json").read_text())["epochs_run"] == 2
    more = load_config(None, [*flat, "train.epochs=6"])
    with caplog.at_level("WARNING"):
        result = train(dataset, more, run, resume=True, progress=False)
    assert result.epochs_run == 2 and "raise train.patience" in caplog.text
    patient = load_config(None, [*flat, "train.epochs=6", "train.patience=3"])
    assert train(dataset, patient, run, resume=True, progress=False).epochs_run == 4
