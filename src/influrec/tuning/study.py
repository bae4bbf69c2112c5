"""Searching configurations with Optuna: each trial a normal training run, scored on validation.

``tune(dataset, space, base, out=Path("study"), trials=20, minutes=30)`` runs Optuna's TPE
sampler over the space's keys. A trial trains ``base`` with the trial's values into
``out/trials/trial-NNNN`` (a normal run folder) and is scored by its best epoch's VALIDATION
NDCG@10; the test targets are never looked at. After every epoch the trial reports its
validation NDCG@10 to the pruner (median or Hyperband), through a training callback, and a
trial the pruner judges hopeless stops there (its run.json says ``"reason": "callback"``).

The study lives in ``out/study.db`` (SQLite) unless ``storage`` names another Optuna storage
(``postgresql://...``); several processes given the same storage and study name share one
study, each adding its own trials. The summary (:mod:`influrec.tuning.summary`) covers every
trial of the study, whichever process ran it.
"""

from __future__ import annotations

import fcntl
import logging
import math
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from influrec.config import ConfigError, ExperimentConfig, config_to_toml
from influrec.data.dataset import EventDataset
from influrec.errors import InputError
from influrec.training.callbacks import EpochEnd, TrainingCallback
from influrec.training.loop import train
from influrec.tuning.space import SearchSpace, with_values

log = logging.getLogger(__name__)
SCORE = "NDCG@10"  # what a trial is scored by, on the validation targets
STUDY_FILE = "study.db"
LOCK_FILE = "study.lock"
PRUNERS = ("median", "hyperband", "none")


def import_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise InputError(
            "influrec tune needs the optuna package; install it with pip install 'influrec[tune]'"
        ) from None
    return optuna


@dataclass(frozen=True)
class TuneSettings:
    """How a search runs: its budget, its storage, its pruner."""

    trials: int = 20  # trials this process runs (at most)
    minutes: float = 0.0  # wall-time budget of this process; 0: none
    storage: str = ""  # an Optuna storage URL; "": sqlite in OUT/study.db
    study_name: str = "influrec"
    pruner: str = "median"  # median | hyperband | none
    seed: int | None = None  # the sampler's seed (None: a fresh one per process)


class PruningCallback(TrainingCallback):
    """Reports each epoch's validation NDCG@10 to an Optuna trial; stops a pruned one."""

    def __init__(self, trial: Any) -> None:
        self.trial = trial

    def on_epoch_end(self, epoch: EpochEnd) -> str | None:
        self.trial.report(epoch.valid[SCORE], epoch.epoch)
        if self.trial.should_prune():
            return f"trial {self.trial.number} pruned (validation {SCORE} {epoch.valid[SCORE]:.4f})"
        return None


def storage_url(out: Path, settings: TuneSettings) -> str:
    return settings.storage or f"sqlite:///{(Path(out) / STUDY_FILE).resolve()}"


def make_pruner(optuna: Any, name: str, epochs: int) -> Any:
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise InputError(f"unknown pruner {name!r}; choose from {', '.join(PRUNERS)}")


def open_study(out: Path, settings: TuneSettings, *, epochs: int = 50) -> Any:
    """The study in ``settings.storage`` (default ``out/study.db``), created if missing."""
    optuna = import_optuna()
    Path(out).mkdir(parents=True, exist_ok=True)
    # processes starting together would each create the storage's tables: one at a time
    with (Path(out) / LOCK_FILE).open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return optuna.create_study(
            storage=storage_url(out, settings),
            study_name=settings.study_name,
            direction="maximize",
            sampler=optuna.samplers.TPESampler(seed=settings.seed),
            pruner=make_pruner(optuna, settings.pruner, epochs),
            load_if_exists=True,
        )


def suggest(trial: Any, space: SearchSpace) -> dict[str, Any]:
    """The trial's value of each dimension of ``space``."""
    values: dict[str, Any] = {}
    for d in space.dimensions:
        if d.is_choice:
            values[d.key] = trial.suggest_categorical(d.key, list(d.choices))
        elif d.integer:
            values[d.key] = trial.suggest_int(d.key, int(d.low), int(d.high), log=d.log)
        else:
            values[d.key] = trial.suggest_float(d.key, d.low, d.high, log=d.log)
    return values


def _objective(
    dataset: EventDataset, space: SearchSpace, base: ExperimentConfig, out: Path, deadline: float
) -> Any:
    optuna = import_optuna()

    def objective(trial: Any) -> float:
        config = with_values(base, suggest(trial, space))  # ConfigError: the trial fails
        trial.set_user_attr("config", config_to_toml(config))
        run_dir = Path(out) / "trials" / f"trial-{trial.number:04d}"
        trial.set_user_attr("run_dir", str(run_dir))
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        left = (deadline - time.monotonic()) / 60
        if base.train.max_minutes == 0 and math.isfinite(left):  # never far past the budget
            config = config.replace(train=config.train.replace(max_minutes=max(left, 0.05)))
        result = train(dataset, config, run_dir, progress=False, callbacks=[PruningCallback(trial)])
        best = result.history[result.best_epoch - 1]["valid"][SCORE] if result.best_epoch else 0.0
        trial.set_user_attr("epochs", result.epochs_run)
        if result.stopped is not None and result.stopped["reason"] == "callback":
            raise optuna.TrialPruned(result.stopped["why"])
        return float(best)

    return objective


def tune(
    dataset: EventDataset,
    space: SearchSpace,
    base: ExperimentConfig,
    *,
    out: Path,
    settings: TuneSettings,
) -> Any:
    """Run up to ``settings.trials`` trials within ``settings.minutes`` into ``out``; returns
    the Optuna study (all its trials, from every process that shares it)."""
    if SCORE.partition("@")[2] not in map(str, base.eval.ks):
        raise InputError(f"tuning scores trials by validation {SCORE}: eval.ks must include 10")
    study = open_study(out, settings, epochs=base.train.epochs)
    budget = settings.minutes * 60 if settings.minutes else math.inf
    deadline = time.monotonic() + budget
    study.optimize(
        _objective(dataset, space, base, Path(out), deadline),
        n_trials=settings.trials,
        timeout=None if math.isinf(budget) else budget,
        catch=(ConfigError,),
        gc_after_trial=True,
    )
    log.info("study %s: %d trials", settings.study_name, len(study.trials))
    return study
