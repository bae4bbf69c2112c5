"""Incremental training: a trained run learns from new events without a full retrain.

`update_run(run, new_events, out)` writes a new run folder that continues ``run``:

1. The new events are appended to the run's dataset (:func:`~influrec.data.merge.append_events`):
   every index keeps its meaning, new users and new items take the next ones. A behaviour the
   run does not know is an error (the model has no embedding for it).
2. The model is rebuilt at the grown sizes and starts from the run's weights. A new item's own
   embedding starts at the **mean of the existing items' embeddings** (likewise any other table
   that grows by item or feature value); where the model uses item features or item text, those
   are added on top as for any item, so a new item with features or text starts from them.
3. AdamW starts from the run's optimizer moments (its best epoch's checkpoint, else its last);
   rows of new items start with zero moments. The learning rate restarts at ``lr_scale`` times
   the run's peak and decays (cosine) over the update's steps.
4. Training samples are windows over every new event that has an earlier event of its user
   (each window reaching back ``model.max_len`` events, so new events are predicted in their
   context), plus a **replay** sample of the windows a full training would cut from the older
   events, so that ``replay`` is their share of all windows: the model keeps what it knew
   instead of drifting to the newest period alone (``replay`` 0: new events only).
5. Each epoch is validated on the run's split of the grown dataset, as ``train`` does; the
   validation targets may include new events the update trained on, so the figure measures fit;
   measure updates on later events with ``bench/online.py``.

``run.json`` of the new run has the parent's ``lineage`` plus one step: ``{"kind": "update",
"parent", "at", "events_added", "new_users", "new_items", "time_span", "replay", ...}``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
import pyarrow as pa
import torch

from influrec import run as run_folder
from influrec.config import save_config
from influrec.data.dataset import EventDataset
from influrec.data.merge import Appended, append_events
from influrec.data.sequences import history_windows, training_windows
from influrec.data.store_export import forget_users
from influrec.errors import DamagedRunError, InputError
from influrec.training.loop import Trainer, TrainResult
from influrec.training.resume import check_run_dir
from influrec.training.schedule import lr_factor
from influrec.training.setup import require_targets

DEFAULT_REPLAY = 0.5  # share of replayed windows; measured in bench/online.py (docs/online.md)
DEFAULT_LR_SCALE = 0.5  # an update's peak learning rate, as a share of the run's


@dataclass(frozen=True)
class UpdateSettings:
    """How an update trains (the parent run's config gives everything else)."""

    epochs: int = 3
    max_minutes: float | None = None  # stop after the first batch past this budget
    replay: float = DEFAULT_REPLAY  # share of samples that replay older events, in [0, 1)
    lr_scale: float = DEFAULT_LR_SCALE
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.replay < 1:
            raise InputError(f"replay must be in [0, 1), got {self.replay}", setting="replay")
        if self.epochs < 1:
            raise InputError(f"epochs must be >= 1, got {self.epochs}", setting="epochs")
        if self.lr_scale <= 0:
            raise InputError(f"lr_scale must be > 0, got {self.lr_scale}", setting="lr_scale")


@dataclass(frozen=True)
class UpdateResult:
    run_dir: Path
    training: TrainResult
    step: dict[str, Any]  # the lineage step recorded in run.json


def update_run(
    run_dir: Path,
    new_events: pa.Table | EventDataset,
    out_dir: Path,
    *,
    settings: UpdateSettings | None = None,
    source: str | None = None,
    erased_users: Collection[str] = (),
    progress: bool | None = None,
) -> UpdateResult:
    """Train the run in ``run_dir`` on ``new_events`` (a RAW_SCHEMA table, or a prepared
    dataset whose item metadata and text then come along) into the new run ``out_dir``.

    ``erased_users`` are left out of the run's data (and so of the replay), as an export of
    the event store leaves them out.

    Raises InputError when ``run_dir`` is not a run, ``out_dir`` is not empty, the events use
    an unknown behaviour, or none of them is new to the run.
    """
    settings = settings or UpdateSettings()
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    info = run_folder.read_run_info(run_dir)
    check_run_dir(out_dir, resume=False)
    parent = forget_users(run_folder.load_run_dataset(run_dir, info), set(erased_users))
    meta = text = None
    if isinstance(new_events, EventDataset):
        meta, text = new_events.items, new_events.item_text
        new_events = _raw(new_events)
    if new_events.num_rows == 0:
        raise InputError(f"{source or 'the new events'}: no events to update {run_dir} with")
    appended = append_events(
        parent, new_events, new_items_meta=meta, new_item_text=text, source=source
    )
    if appended.events == 0:
        raise InputError(
            f"{source or 'the new events'}: all {new_events.num_rows} events are already in "
            f"the data of {run_dir}; export only newer events (a later 'since' time) first"
        )
    updater = Updater(run_dir, info, appended, out_dir, settings, progress=progress)
    result = updater.fit()
    save_config(info.config, out_dir / "config.toml")  # the parent's, not the update's view
    return UpdateResult(out_dir, result, updater.lineage_step)


def _raw(dataset: EventDataset) -> pa.Table:
    """A prepared dataset's events as a RAW_SCHEMA table."""
    events = dataset.events
    return pa.table(
        {name: events.column(name).cast(pa.string()) for name in ("user_id", "item_id", "behavior")}
        | {name: events.column(name) for name in ("timestamp", "value", "row")}
    )


class Updater(Trainer):
    """A Trainer that starts from a trained run and trains on the appended events."""

    def __init__(
        self,
        parent_dir: Path,
        parent: run_folder.RunInfo,
        appended: Appended,
        out_dir: Path,
        settings: UpdateSettings,
        *,
        progress: bool | None = None,
    ) -> None:
        train = parent.config.train.replace(
            epochs=settings.epochs, max_minutes=settings.max_minutes or 0.0
        )
        super().__init__(
            appended.dataset, parent.config.replace(train=train), out_dir, progress=progress
        )
        self.parent_dir, self.parent, self.settings = parent_dir, parent, settings
        self.windows, replayed = self._update_windows(appended.added)
        require_targets(self.windows, self.split, self.config)
        weights = parent_dir / run_folder.MODEL_FILE
        grow_into(cast(torch.nn.Module, self.model), run_folder.read_weights(weights), weights)
        optimizer_from = self._restore_moments()
        self.total_steps = math.ceil(len(self.windows[0]) / train.batch_size) * train.epochs
        peak = train.lr * settings.lr_scale
        for group in self.optimizer.param_groups:
            group["lr"] = group["initial_lr"] = peak
        self.schedule = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda step: lr_factor(
                step, warmup=0, total=self.total_steps, min_ratio=train.min_lr_ratio
            ),
        )
        span = appended.time_span
        self.lineage_step: dict[str, Any] = {
            "kind": "update",
            "parent": str(parent_dir.resolve()),
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "events_added": appended.events,
            "new_users": appended.new_users,
            "new_items": appended.new_items,
            "time_span": None if span is None else {"min": span[0], "max": span[1]},
            "samples": {"new": len(self.windows[0]) - replayed, "replayed": replayed},
            "replay": settings.replay,
            "epochs": settings.epochs,
            "lr": peak,
            "optimizer_from": optimizer_from,
        }

    def _update_windows(self, added: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], int]:
        """Windows over every new event with history, plus replayed windows of older events;
        and how many were replayed.

        With ``train.samples = "windows"`` each user's run of new events is cut into windows
        as training cuts them, each then reaching back to ``model.max_len`` events so the new
        events are predicted with their context (the older events in it are targets again).
        With ``"prefixes"`` every new event is one sample with its last ``max_len`` events.
        """
        data, max_len = self.data, self.config.model.max_len
        has_history = np.ones(len(data), bool)
        has_history[data.user_start[1:][data.user_end[1:] > data.user_start[1:]]] = False
        new = added[has_history[added]]
        old = np.setdiff1d(np.flatnonzero(has_history), added)
        if self.config.train.samples == "prefixes":
            new_windows = history_windows(data, new, max_len=max_len)
            old_windows = history_windows(data, old, max_len=max_len)
        else:
            new_windows = training_windows(data, new, max_len=max_len)
            ends = new_windows[1]
            new_windows = (np.maximum(data.user_start[data.user[ends]], ends - max_len), ends)
            old_windows = training_windows(data, old, max_len=max_len)
        share = self.settings.replay
        wanted = min(len(old_windows[0]), round(len(new_windows[0]) * share / (1 - share)))
        rng = np.random.default_rng(self.settings.seed)
        pick = rng.choice(len(old_windows[0]), size=wanted, replace=False)
        starts = np.r_[new_windows[0], old_windows[0][pick]]
        ends = np.r_[new_windows[1], old_windows[1][pick]]
        return (starts.astype(np.int64), ends.astype(np.int64)), wanted

    def _restore_moments(self) -> str:
        """Load the parent's AdamW moments, grown to the new sizes; where they came from."""
        saved = run_folder.saved_checkpoints(self.parent_dir)
        if not saved:
            return "fresh (the run kept no checkpoint)"
        best = [c for c in saved if c.epoch == self.parent.best_epoch]
        checkpoint = (best or saved)[-1]
        state = torch.load(checkpoint.folder / run_folder.TRAINER_FILE, weights_only=True)
        optimizer = state["optimizer"]
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        for index, moments in optimizer["state"].items():
            for key in ("exp_avg", "exp_avg_sq"):
                moments[key] = _grown(moments[key], params[index].detach(), fill="zero")
        optimizer["param_groups"] = [
            {**saved_group, "lr": group["lr"]}
            for saved_group, group in zip(
                optimizer["param_groups"], self.optimizer.state_dict()["param_groups"], strict=True
            )
        ]
        try:
            self.optimizer.load_state_dict(optimizer)
        except (ValueError, KeyError, RuntimeError) as exc:
            raise DamagedRunError(
                checkpoint.folder / run_folder.TRAINER_FILE,
                f"does not fit the run's optimizer ({exc})",
                run_folder.CHECKPOINT_REMEDY,
            ) from None
        return str(checkpoint.folder.relative_to(self.parent_dir))

    def run_info(self, *, finished: bool) -> run_folder.RunInfo:
        """The run.json of a run trained from scratch, with the parent's config (the update's
        own settings are in its lineage step) and the parent's lineage plus this step."""
        info = super().run_info(finished=finished)
        step = getattr(self, "lineage_step", None)
        lineage = [*self.parent.lineage, *([step] if step is not None else [])]
        return dataclasses.replace(info, config=self.parent.config, lineage=lineage)


def _grown(old: torch.Tensor, new: torch.Tensor, *, fill: str) -> torch.Tensor:
    """``old`` at the shape of ``new`` when only its first dimension grew: old rows kept,
    the added rows zero (``fill="zero"``) or the mean of the old rows past row 0, the padding
    (``fill="mean"``). Any other shape change is a damaged run."""
    if old.shape == new.shape:
        return old
    if old.dim() != new.dim() or old.shape[1:] != new.shape[1:] or old.shape[0] > new.shape[0]:
        raise ValueError(f"cannot grow {tuple(old.shape)} into {tuple(new.shape)}")
    grown = torch.zeros_like(new)
    grown[: old.shape[0]] = old
    if fill == "mean" and old.shape[0] > 1:
        grown[old.shape[0] :] = old[1:].float().mean(dim=0).to(old.dtype)
    return grown


def grow_into(model: torch.nn.Module, weights: dict[str, torch.Tensor], source: Path) -> None:
    """Load a run's ``weights`` into ``model`` built at grown sizes: parameters that grew
    keep their rows and take the mean of them for the new ones; buffers (item features,
    text, cold flags) stay as the grown model's content set them."""
    state = model.state_dict()
    buffers = {name for name, _ in model.named_buffers()}
    for name, tensor in state.items():
        if name in weights and name not in buffers:
            try:
                state[name] = _grown(weights[name], tensor, fill="mean")
            except ValueError as exc:
                raise DamagedRunError(
                    Path(source),
                    f"weights do not fit the run's model ({name}: {exc})",
                    run_folder.RUN_REMEDY,
                ) from None
    model.load_state_dict(state)
