from __future__ import annotations

import json
from pathlib import Path

import pytest

from influrec.config import load_config
from influrec.data.dataset import EventDataset
from influrec.data.synthesize import synthesize_dataset
from influrec.data.synthetic import SynthConfig
from influrec.evaluation.runs import evaluate_run
from influrec.training.callbacks import EpochEnd, TrainEnd, TrainingCallback, TrainStart
from influrec.training.loop import train
from influrec.training.progress import stop_sentence

TINY = [
    "model.max_len=12",
    "model.d_model=16",
    "model.layers=1",
    "train.batch_size=32",
    "train.warmup_steps=2",
    "eval.ks=[1,5,10]",
]


@pytest.fixture(scope="module")
def dataset() -> EventDataset:
    return synthesize_dataset(SynthConfig(n_users=60, n_items=30, mean_events=10, seed=3))


class Recorder(TrainingCallback):
    """Keeps what each hook received; asks to stop after ``stop_after`` epochs."""

    wants_test = True

    def __init__(self, stop_after: int | None = None) -> None:
        self.stop_after = stop_after
        self.calls: list[str] = []
        self.starts: list[TrainStart] = []
        self.epochs: list[EpochEnd] = []
        self.ends: list[TrainEnd] = []

    def on_train_start(self, start: TrainStart) -> None:
        self.calls.append("start")
        self.starts.append(start)

    def on_epoch_end(self, epoch: EpochEnd) -> str | None:
        self.calls.append("epoch")
        self.epochs.append(epoch)
        if self.stop_after is not None and epoch.epoch >= self.stop_after:
            return "validation too low"
        return None

    def on_train_end(self, end: TrainEnd) -> None:
        self.calls.append("end")
        self.ends.append(end)


def test_a_callback_sees_every_epoch_and_the_test_metrics(
    dataset: EventDataset, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    recorder, silent = Recorder(), TrainingCallback()
    config = load_config(None, [*TINY, "train.epochs=3"])
    result = train(dataset, config, run, progress=False, callbacks=[recorder, silent])
    assert recorder.calls == ["start", "epoch", "epoch", "epoch", "end"]
    assert recorder.starts[0].epoch == 0 and recorder.starts[0].parameters > 0
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [e.epoch for e in recorder.epochs] == [1, 2, 3]
    for seen, line in zip(recorder.epochs, lines, strict=True):
        assert seen.loss == line["loss"] and seen.record == line
        assert seen.valid["NDCG@10"] == line["valid"]["NDCG@10"]
        assert "seen_items_masked" not in seen.valid  # numbers only
    assert recorder.epochs[-1].best == result.best_metric
    end = recorder.ends[0]
    assert end.best_epoch == result.best_epoch and end.stopped == result.stopped
    # the test metrics are those of the run's best model on the test targets
    test = evaluate_run(run, split="test").model.unmasked
    assert end.test is not None and end.test["NDCG@10"] == pytest.approx(test["NDCG@10"])


def test_a_stop_request_stops_training_and_is_recorded(
    dataset: EventDataset, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    recorder, after = Recorder(stop_after=2), Recorder()
    config = load_config(None, [*TINY, "train.epochs=6"])
    result = train(dataset, config, run, progress=False, callbacks=[recorder, after])
    assert result.epochs_run == 2 and len(after.epochs) == 2  # later callbacks still see it
    stopped = json.loads((run / "run.json").read_text())["stopped"]
    assert stopped == {
        "reason": "callback",
        "by": "Recorder",
        "why": "validation too low",
        "epoch": 2,
        "step": result.stopped["step"] if result.stopped else -1,
    }
    assert stop_sentence(stopped, config.train) == (
        "stopped after epoch 2 by Recorder: validation too low"
    )
