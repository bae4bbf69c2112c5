"""The run folder module: run.json as a typed RunInfo, checkpoints described by their
state.json (never by their folder's name), and TracIn's need for the recorded lr_sum."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from influrec.config import ExperimentConfig
from influrec.data_influence.tracin import tracin_checkpoints
from influrec.errors import DamagedRunError, InputError
from influrec.inference import Recommender
from influrec.run import RUN_FILE, RunInfo, load_model, read_run_info, saved_checkpoints
from tests_helpers import train_tiny_run


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_run(tmp_path_factory.mktemp("run"), epochs=2, extra=("train.keep_every=1",))


def test_run_info_is_typed_and_writes_back_the_same_json(run: Path) -> None:
    info = read_run_info(run)
    assert isinstance(info, RunInfo) and isinstance(info.config, ExperimentConfig)
    assert info.finished and info.epochs_run == 2 and info.best_epoch in (1, 2)
    assert info.to_dict() == json.loads((run / RUN_FILE).read_text())
    model, loaded = load_model(run)
    assert loaded == info and model.n_items == info.n_items


def test_an_older_run_json_reads_with_the_summary_defaults(run: Path, tmp_path: Path) -> None:
    old = tmp_path / "old"
    shutil.copytree(run, old)
    full = json.loads((old / RUN_FILE).read_text())
    kept = {k: full[k] for k in ("format_version", "config", "n_items", "n_behaviors")}
    (old / RUN_FILE).write_text(json.dumps(kept))
    info = read_run_info(old)
    assert (info.feature_values, info.feature_width, info.training_windows) == (0, 1, None)
    assert not info.finished and info.config == read_run_info(run).config


def test_checkpoint_epochs_come_from_their_state_not_their_folder(
    run: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "renamed"
    shutil.copytree(run, copy)
    (copy / "checkpoints" / "epoch-0001").rename(copy / "checkpoints" / "epoch-0099")
    saved = saved_checkpoints(copy)
    assert [c.epoch for c in saved] == [1, 2]
    assert saved[0].folder.name == "epoch-0099"
    assert saved[0].lr_sum is not None and 0 < saved[0].lr_sum < saved[1].lr_sum


def test_tracin_refuses_checkpoints_without_a_learning_rate_sum(run: Path, tmp_path: Path) -> None:
    old = tmp_path / "old"
    shutil.copytree(run, old)
    config = read_run_info(old).config
    weights = tracin_checkpoints(old, config, n_windows=10, n_targets=10)
    assert [w.epoch for w in weights] == [1, 2] and all(w.weight > 0 for w in weights)
    state_file = saved_checkpoints(old)[1].folder / "state.json"
    state = json.loads(state_file.read_text())
    del state["lr_sum"]
    state_file.write_text(json.dumps(state))
    with pytest.raises(InputError, match=r"epoch-0002: its state.json records no learning-rate"):
        tracin_checkpoints(old, config, n_windows=10, n_targets=10)


def test_a_run_of_an_unregistered_architecture_is_an_input_error_naming_run_json(
    run: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    shutil.copytree(run, other)
    info = json.loads((other / RUN_FILE).read_text())
    info["config"]["model"]["architecture"] = "rnn"  # a family this installation lacks
    (other / RUN_FILE).write_text(json.dumps(info))
    pattern = r"run\.json: model\.architecture must name a registered model \(.*\), got 'rnn'"
    with pytest.raises(DamagedRunError, match=pattern):
        load_model(other)


def test_an_unknown_user_is_named_in_library_terms(run: Path) -> None:
    with pytest.raises(InputError, match=r"unknown user 'nobody': not in the run's dataset$"):
        Recommender.load(run).user_history("nobody")
