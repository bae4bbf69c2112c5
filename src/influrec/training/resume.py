"""Starting a run folder, or resuming one: what resuming checks (that there is a checkpoint to
continue from, and that the config and the dataset are the ones the run was trained with) and
how the trainer is put back in the checkpoint's state.

A new run needs a missing or empty folder (:mod:`influrec.folders`); its ``run.json`` is written
first, marking the folder as a run.

Resuming continues from the run's last checkpoint (the newest epoch in the checkpoints'
state.json files). The config may differ from the run's only in :data:`RESUMABLE_KEYS`, which
change neither the model's shape nor its data: raising ``train.epochs`` extends a finished
run (the learning-rate schedule then spans the new number of epochs), raising
``train.patience`` lets an early-stopped one go on. Any other difference is an error that lists
each key with its old and new value.

A run that ``train.max_minutes`` stopped inside an epoch resumes inside it (:func:`reopen_partial`):
the rest of that epoch is trained as an uninterrupted run would have trained it.
:func:`stop_info` says why a run stops (all epochs, patience, the time budget), as run.json and
the last checkpoint's state.json record it.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from influrec import run as run_folder
from influrec.config import ExperimentConfig, save_config
from influrec.data.dataset import EventDataset
from influrec.errors import DamagedRunError, InputError
from influrec.folders import check_output_dir

if TYPE_CHECKING:
    from influrec.training.loop import Trainer

log = logging.getLogger(__name__)

RESUMABLE_KEYS = (
    "train.epochs",
    "train.patience",
    "train.max_minutes",
    "train.keep_checkpoints",
    "train.keep_every",
    "train.threads",
    "train.device",
    "eval.batch_size",
    "train.tracking",
    "train.tracking_uri",
    "train.tracking_experiment",
)


class ResumeMismatchError(InputError):
    """The config or dataset given for resuming differs from the run's.

    ``changes`` holds ``(key, old, new)`` for each difference.
    """

    def __init__(self, message: str, changes: list[tuple[str, Any, Any]]) -> None:
        super().__init__(message)
        self.changes = changes


def check_run_dir(run_dir: Path, *, resume: bool) -> None:
    """``run_dir`` can receive a new run (missing or empty) or, with ``resume``, has a run
    to continue; InputError otherwise."""
    if resume:
        run_folder.last_checkpoint(run_dir)
    else:
        check_output_dir(Path(run_dir), run_folder.RUN_FOLDER, overwrite=False)


def open_run_dir(trainer: Trainer, *, resume: bool) -> None:
    """Put ``trainer`` in its last checkpoint's state (``resume``) or start its new run
    folder; a folder that exists and is not empty is never trained into afresh."""
    if resume:
        restore(trainer, run_folder.last_checkpoint(trainer.run_dir))
        return
    if not trainer.ranks.writes:  # rank 0 starts the folder
        return
    check_run_dir(trainer.run_dir, resume=False)
    trainer.run_dir.mkdir(parents=True, exist_ok=True)
    run_folder.write_run_info(trainer.run_dir, trainer.run_info(finished=False))
    trainer.dataset.save(trainer.run_dir / "data")
    save_config(trainer.config, trainer.run_dir / "config.toml")


def check_config(run_dir: Path, info: run_folder.RunInfo, config: ExperimentConfig) -> None:
    """``config`` may differ from the run's only in :data:`RESUMABLE_KEYS`."""
    changes = [c for c in info.config.changes(config) if c[0] not in RESUMABLE_KEYS]
    if changes:
        listed = ", ".join(f"{key}: {old!r} -> {new!r}" for key, old, new in changes)
        raise ResumeMismatchError(
            f"{run_dir}: cannot resume with a changed config ({listed}); only "
            f"{', '.join(RESUMABLE_KEYS)} may change when resuming (the run's config is in "
            f"{Path(run_dir) / 'config.toml'})",
            changes,
        )


def check_dataset(run_dir: Path, info: run_folder.RunInfo, dataset: EventDataset) -> None:
    """``dataset`` has the sizes of the one the run was trained on (kept in its ``data/``)."""
    recorded = info.dataset
    now = {
        "n_items": dataset.n_items,
        "n_behaviors": len(dataset.behaviors) - 1,
        **{k: dataset.stats.get(k) for k in ("users", "items", "events", "source")},
    }
    before = {"n_items": info.n_items, "n_behaviors": info.n_behaviors, **recorded}
    changes = [(k, before[k], v) for k, v in now.items() if k in before and before[k] != v]
    if changes:
        listed = ", ".join(f"{key}: {old!r} -> {new!r}" for key, old, new in changes)
        raise ResumeMismatchError(
            f"{run_dir}: cannot resume on a different dataset ({listed}); resume with the "
            f"run's own copy, {Path(run_dir) / 'data'}",
            changes,
        )


def restore(trainer: Trainer, checkpoint: run_folder.Checkpoint) -> None:
    """Put ``trainer`` in the state of ``checkpoint`` after checking the config and dataset."""
    info = run_folder.read_run_info(trainer.run_dir)
    check_config(trainer.run_dir, info, trainer.config)
    try:
        check_dataset(trainer.run_dir, info, trainer.dataset)
    except ResumeMismatchError:
        run_folder.load_run_dataset(trainer.run_dir, info)  # blames run.json if it was edited
        raise
    trainer_state, state = run_folder.load_checkpoint(checkpoint.folder, trainer.model)
    try:
        trainer.optimizer.load_state_dict(trainer_state["optimizer"])
        trainer.schedule.load_state_dict(trainer_state["schedule"])
        torch.set_rng_state(trainer_state["torch_rng"])
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise DamagedRunError(
            checkpoint.folder / run_folder.TRAINER_FILE,
            f"does not fit this model's optimizer ({type(exc).__name__})",
            run_folder.CHECKPOINT_REMEDY,
        ) from None
    if "cuda_rng" in trainer_state and trainer.device.type == "cuda":
        torch.cuda.set_rng_state(trainer_state["cuda_rng"])
    trainer.epoch, trainer.step = state["epoch"], state["step"]
    # The rate of the next step from the schedule as configured now: unchanged for a plain
    # resume, and for an extended run (more epochs) the stretched schedule from this step on.
    schedule = trainer.schedule
    for group, base, factor in zip(
        trainer.optimizer.param_groups, schedule.base_lrs, schedule.lr_lambdas, strict=True
    ):
        group["lr"] = base * factor(trainer.step)
    trainer.best_metric, trainer.best_epoch = state["best_metric"], state["best_epoch"]
    trainer.stale, trainer.seconds = state["stale"], state["seconds"]
    trainer.lr_sum = float(state.get("lr_sum", math.nan))  # unknown in runs before it was kept
    trainer.history = state["history"]
    # epochs after the checkpoint (written before a crash) are trained again: forget them
    if trainer.ranks.writes:
        write_history(trainer.run_dir, trainer.history)
    log.info("resumed %s at epoch %d", trainer.run_dir, trainer.epoch)
    train = trainer.config.train
    if trainer.epoch < train.epochs and trainer.stale >= train.patience:
        log.warning(
            "%s stopped early (%d epochs without improvement, train.patience=%d): no epoch will "
            "be trained; raise train.patience to continue it",
            trainer.run_dir,
            trainer.stale,
            train.patience,
        )


def write_history(run_dir: Path, history: list[dict[str, Any]]) -> None:
    """Rewrite ``metrics.jsonl`` as ``history``, one JSON line per epoch."""
    lines = "".join(json.dumps(record) + "\n" for record in history)
    (Path(run_dir) / "metrics.jsonl").write_text(lines)


def reopen_partial(trainer: Trainer) -> tuple[int, tuple[float, int]]:
    """Before training on: when the last epoch was cut short by ``train.max_minutes``, forget
    its record (the epoch is now finished, and recorded when it ends) and return the batches
    it trained, which the epoch skips, with their loss sum and targets; else ``(0, (0, 0))``.

    The rest of the epoch is exactly what an uninterrupted run trains: the epoch's batch
    order comes from the seed and the epoch number, and the optimizer, schedule and RNG states
    from the checkpoint. A best model found at the cut stays the best until beaten.
    """
    if not trainer.history or "partial" not in trainer.history[-1]:
        return 0, (0.0, 0)
    record = trainer.history.pop()
    trainer.epoch -= 1
    if trainer.ranks.writes:
        write_history(trainer.run_dir, trainer.history)
    part = record["partial"]
    return int(part["batches"]), (float(record["loss"]) * part["targets"], int(part["targets"]))


def stop_info(trainer: Trainer, budget_seconds: float) -> dict[str, Any] | None:
    """Why training stops now, or None while it goes on: ``{"reason": "epochs" | "patience"
    | "max_minutes", "epoch": epochs trained into, "step": optimizer steps}``, plus ``batch``
    and ``batches_per_epoch`` when the time budget cut the last epoch short."""
    train = trainer.config.train
    partial = trainer.history[-1].get("partial") if trainer.history else None
    if trainer.epoch - (partial is not None) >= train.epochs:
        reason = "epochs"
    elif trainer.stale >= train.patience:
        reason = "patience"
    elif trainer.seconds >= budget_seconds:
        reason = "max_minutes"
    else:
        return None
    info: dict[str, Any] = {"reason": reason, "epoch": trainer.epoch, "step": trainer.step}
    if partial is not None:
        info.update(batch=partial["batches"], batches_per_epoch=partial["of"])
    return info
