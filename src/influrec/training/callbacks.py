"""Callbacks: how anything outside the training loop follows a run (trackers, a tuner's pruner).

A callback is an object with three hooks, each called with a small frozen record:

- ``on_train_start(TrainStart)`` once, before the first epoch (of a new or resumed run);
- ``on_epoch_end(EpochEnd)`` after every epoch is validated, with its training loss and its
  validation metrics; it returns ``None`` to go on, or a sentence saying why training should
  stop now (a pruned trial, say). Training then stops as it does for early stopping: the
  epoch is checkpointed, and run.json's ``stopped`` records ``{"reason": "callback", "by":
  the callback's class name, "why": the sentence, "epoch", "step"}``;
- ``on_train_end(TrainEnd)`` once, after run.json is written as finished, with the test
  metrics of the best model when any callback declares ``wants_test = True``.

Subclass :class:`TrainingCallback` and override the hooks you need. The loop knows callbacks
only through :class:`CallbackList`; it never checks what a callback is.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from influrec.config import ExperimentConfig
from influrec.evaluation.runs import evaluate_run

if TYPE_CHECKING:
    from influrec.training.loop import Trainer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainStart:
    """A run about to train its first epoch (``epoch`` > 0: a resumed run)."""

    run_dir: Path
    config: ExperimentConfig
    epoch: int  # epochs already trained (0 for a new run)
    parameters: int  # trainable parameters of the model


@dataclass(frozen=True)
class EpochEnd:
    """One validated epoch: what its line in metrics.jsonl holds, with the main values named."""

    run_dir: Path
    epoch: int  # epochs trained so far, this one included (1 after the first)
    step: int  # optimizer steps so far
    loss: float  # mean training loss over the epoch's targets
    valid: dict[str, float]  # validation metrics, e.g. {"NDCG@10": 0.04, "HR@10": 0.08}
    monitor: str  # train.monitor, a key of ``valid``
    best: float  # the best monitored validation value so far, this epoch included
    partial: bool  # the time budget cut the epoch short
    record: dict[str, Any] = field(default_factory=dict)  # the metrics.jsonl line


@dataclass(frozen=True)
class TrainEnd:
    """A finished run: its summary (as run.json records it) and, when asked for, test metrics."""

    run_dir: Path
    config: ExperimentConfig
    epochs_run: int
    best_epoch: int
    best_valid: float  # the best monitored validation value (train.monitor)
    seconds: float  # training time
    stopped: dict[str, Any] | None  # why training stopped (run.json's ``stopped``)
    test: dict[str, float] | None = None  # the best model on the test targets


class TrainingCallback:
    """Does nothing at every hook; subclasses override the hooks they need."""

    wants_test: ClassVar[bool] = False  # True: on_train_end receives the test metrics

    def on_train_start(self, start: TrainStart) -> None:
        """Before the first epoch of this call to ``fit``."""

    def on_epoch_end(self, epoch: EpochEnd) -> str | None:
        """After each validated epoch; a sentence to stop training now, or None."""
        return None

    def on_train_end(self, end: TrainEnd) -> None:
        """After run.json is written as finished."""


def _numbers(metrics: dict[str, Any]) -> dict[str, float]:
    """The numeric metrics of a headline dict (its ``seen_items_masked`` label left out)."""
    return {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


class CallbackList:
    """The callbacks of one training run, called in order at each hook."""

    def __init__(self, callbacks: Sequence[TrainingCallback] = ()) -> None:
        self.callbacks = list(callbacks)

    def train_start(self, trainer: Trainer) -> None:
        start = TrainStart(
            trainer.run_dir, trainer.config, trainer.epoch, trainer.model.num_parameters()
        )
        for callback in self.callbacks:
            callback.on_train_start(start)

    def epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> dict[str, Any] | None:
        """Every callback sees the epoch; the first stop request becomes the ``stopped`` info."""
        epoch = EpochEnd(
            run_dir=trainer.run_dir,
            epoch=trainer.epoch,
            step=trainer.step,
            loss=float(record["loss"]),
            valid=_numbers(record["valid"]),
            monitor=trainer.config.train.monitor,
            best=trainer.best_metric,
            partial="partial" in record,
            record=record,
        )
        stop: dict[str, Any] | None = None
        for callback in self.callbacks:
            why = callback.on_epoch_end(epoch)
            if why is not None and stop is None:
                by = type(callback).__name__
                stop = {"reason": "callback", "by": by, "why": why}
                stop |= {"epoch": trainer.epoch, "step": trainer.step}
        return stop

    def train_end(self, trainer: Trainer) -> None:
        if not self.callbacks:
            return
        test = None
        if any(callback.wants_test for callback in self.callbacks) and trainer.best_epoch:
            report = evaluate_run(
                trainer.run_dir, split="test", device=str(trainer.device), progress=trainer.bar
            )
            test = _numbers(report.model.headline(mask_seen=trainer.config.eval.mask_seen))
        end = TrainEnd(
            run_dir=trainer.run_dir,
            config=trainer.config,
            epochs_run=trainer.epoch,
            best_epoch=trainer.best_epoch,
            best_valid=trainer.best_metric,
            seconds=trainer.seconds,
            stopped=trainer.stopped,
            test=test,
        )
        for callback in self.callbacks:
            callback.on_train_end(end)
