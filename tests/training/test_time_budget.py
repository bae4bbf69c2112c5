"""What training shows off a terminal (one line per epoch, or nothing with --no-progress), and
``train.max_minutes`` stopping inside an epoch: the cut epoch is validated and checkpointed,
the run is usable, and resuming it ends where an uninterrupted run ends."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from influrec.cli.main import main
from influrec.config import load_config
from influrec.data.dataset import EventDataset
from influrec.data.synthesize import synthesize_dataset
from influrec.data.synthetic import SynthConfig
from influrec.run import read_run_info, saved_checkpoints
from influrec.training.loop import train
from influrec.training.progress import EpochLines, clock

SMALL = ["model.max_len=12", "model.d_model=16", "model.layers=1", "train.keep_checkpoints=10"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("budget") / "data"
    assert main(["data", "synth", "--out", str(folder), "--users", "40", "--items", "30"]) == 0
    return folder


def cli_train(data: Path, run: Path, *settings: str, flags: tuple[str, ...] = ()) -> list[str]:
    sets = [part for s in [*SMALL, *settings] for part in ("--set", s)]
    return ["train", str(data), "--out", str(run), *flags, *sets]


def test_off_a_terminal_training_writes_one_line_per_epoch(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(cli_train(data_dir, tmp_path / "run", "train.epochs=2")) == 0
    err = capsys.readouterr().err.splitlines()  # pytest's stderr is not a terminal: no bar
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    epochs = [line for line in err if line.startswith("epoch ")]
    assert len(epochs) == 2 and len(err) == 3, err
    for line, record in zip(epochs, records, strict=True):
        assert line.startswith(f"epoch {record['epoch']}/2  loss {record['loss']:.4f}  ")
        valid = record["valid"]
        assert f"valid NDCG@10 {valid['NDCG@10']:.4f} HR@10 {valid['HR@10']:.4f} " in line
        assert f"MRR@10 {valid['MRR@10']:.4f}" in line
        assert " elapsed " in line and " eta " in line
    assert epochs[1].endswith("eta 0s")  # the last epoch leaves nothing to wait for
    assert err[2] == "stopped: all 2 epochs trained (step 4)"


def test_no_progress_writes_nothing_to_stderr(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    argv = cli_train(data_dir, tmp_path / "run", "train.epochs=1", flags=("--no-progress",))
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "trained" in captured.out


def test_the_time_budget_stops_inside_an_epoch_and_the_run_is_usable(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    # 6 ms of budget and an epoch of many small batches: the budget runs out inside epoch 1
    argv = cli_train(
        data_dir, run, "train.epochs=3", "train.batch_size=2", "train.max_minutes=1e-4"
    )
    capsys.readouterr()
    assert main(argv) == 0
    out, err = capsys.readouterr()
    stopped = read_run_info(run).stopped
    assert stopped is not None and stopped["reason"] == "max_minutes"
    assert stopped["epoch"] == 1 and 1 <= stopped["batch"] < stopped["batches_per_epoch"]
    assert stopped["step"] == stopped["batch"]
    [checkpoint] = saved_checkpoints(run)
    assert checkpoint.folder.name == "epoch-0001-partial" and checkpoint.step == stopped["step"]
    state = json.loads((checkpoint.folder / "state.json").read_text())
    assert (
        state["stopped"] == stopped
        and state["history"][0]["partial"]["batches"] == stopped["batch"]
    )
    said = f"reached in epoch 1, after batch {stopped['batch']} of {stopped['batches_per_epoch']}"
    assert said in err and "time budget train.max_minutes=0.0001" in " ".join(out.split())
    assert (run / "model.safetensors").exists()  # the cut epoch was validated: a best model
    assert main(["evaluate", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["targets"] == 40


@pytest.fixture(scope="module")
def dataset() -> EventDataset:
    return synthesize_dataset(SynthConfig(n_users=60, n_items=30, mean_events=12, seed=3))


def test_a_run_cut_inside_an_epoch_resumes_to_the_uninterrupted_result(
    dataset: EventDataset, tmp_path: Path
) -> None:
    settings = [*SMALL, "train.epochs=2", "train.batch_size=16", "train.warmup_steps=2"]
    full = train(dataset, load_config(None, settings), tmp_path / "full", progress=False)
    cut_config = load_config(None, [*settings, "train.max_minutes=1e-9"])
    cut = train(dataset, cut_config, tmp_path / "cut", progress=False)
    batches = full.history[0]["step"]
    assert cut.stopped == {
        "reason": "max_minutes",
        "epoch": 1,
        "step": 1,
        "batch": 1,
        "batches_per_epoch": batches,
    }
    # the same budget again trains nothing and leaves the cut epoch as it was
    again = train(dataset, cut_config, tmp_path / "cut", resume=True, progress=False)
    assert again.stopped == cut.stopped and again.history == cut.history
    resumed = train(
        dataset,
        load_config(None, [*settings, "train.max_minutes=0"]),
        tmp_path / "cut",
        resume=True,
        progress=False,
    )
    assert resumed.stopped == {"reason": "epochs", "epoch": 2, "step": 2 * batches}
    assert [r["epoch"] for r in resumed.history] == [1, 2]
    assert not any("partial" in r for r in resumed.history)
    for mine, theirs in zip(resumed.history, full.history, strict=True):
        assert mine["step"] == theirs["step"]
        assert mine["loss"] == pytest.approx(theirs["loss"], rel=1e-5)  # cut epoch's loss too
        assert mine["valid"]["NDCG@10"] == pytest.approx(theirs["valid"]["NDCG@10"], abs=1e-6)
    names = [c.folder.name for c in saved_checkpoints(tmp_path / "cut")]
    assert names == ["epoch-0001", "epoch-0002"]  # the partial checkpoint is superseded
    a = load_file(str(tmp_path / "full" / "checkpoints" / "epoch-0002" / "model.safetensors"))
    b = load_file(str(tmp_path / "cut" / "checkpoints" / "epoch-0002" / "model.safetensors"))
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=1e-5, atol=1e-6)
    lines = (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    info = read_run_info(tmp_path / "cut")
    assert info.finished and info.epochs_run == 2 and info.stopped == resumed.stopped


def test_the_eta_is_the_epochs_left_at_the_mean_epoch_time_capped_by_the_budget() -> None:
    stream = io.StringIO()
    lines = EpochLines(epochs=10, monitor="HR@5", budget_seconds=600, stream=stream)
    valid = {"HR@5": 0.5, "NDCG@5": 0.25, "MRR@5": 0.125, "HR@10": 0.75}
    record = {"epoch": 2, "loss": 3.0, "valid": valid, "elapsed_seconds": 80.0}
    lines.epoch(record, best=0.5, best_epoch=2, done=2)  # 8 epochs of 40 s left: 5:20
    lines.epoch({**record, "elapsed_seconds": 400.0}, best=0.5, best_epoch=2, done=2)
    first, second = stream.getvalue().splitlines()
    assert first == (
        "epoch 2/10  loss 3.0000  valid HR@5 0.5000 NDCG@5 0.2500 MRR@5 0.1250  "
        "best 0.5000 (epoch 2)  elapsed 1:20  eta 5:20"
    )
    assert second.endswith("elapsed 6:40  eta 3:20")  # capped: 200 s of budget are left
    assert clock(3725) == "1:02:05" and clock(42.4) == "42s"
