"""Training: one explicit loop over epochs, with evaluation, checkpoints and early stopping.

An epoch covers every training target exactly once (windows from
:func:`~influrec.data.sequences.training_windows`), in batches of similar length so little
compute goes to padding. After each epoch the model is evaluated on the validation targets
(never the test targets); the best epoch's weights become the run's ``model.safetensors``.
"""

from __future__ import annotations

import logging
import math
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from influrec import __version__
from influrec import run as run_folder
from influrec.config import ExperimentConfig
from influrec.data.batching import batch_windows
from influrec.data.dataset import EventDataset
from influrec.data.sequences import SequenceData, prefix_windows, training_windows
from influrec.data.splits import make_split
from influrec.evaluation.protocol import TargetEvaluation, evaluate_targets, model_score_fn
from influrec.models import build_model
from influrec.progress import steps
from influrec.training.averaging import average_best, best_epochs
from influrec.training.callbacks import CallbackList, TrainingCallback
from influrec.training.content import ItemContent
from influrec.training.losses import (
    bce_loss,
    full_softmax_loss,
    sampled_softmax_loss,
    seen_pairs,
    with_unavailable,
)
from influrec.training.progress import EpochLines, MetricsLog, stop_sentence
from influrec.training.ranks import SINGLE, Ranks
from influrec.training.resume import (
    check_run_dir,
    open_run_dir,
    reopen_partial,
    stop_info,
)
from influrec.training.schedule import epoch_batches, lr_factor
from influrec.training.setup import (
    param_groups,
    proposal_log_q,
    require_targets,
    seed_everything,
    select_device,
)
from influrec.training.tracking import trackers

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    run_dir: Path
    best_epoch: int
    best_metric: float
    epochs_run: int
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped: dict[str, Any] | None = None  # why training stopped (see stop_info)


class Trainer:
    """Trains a model on ``dataset`` into ``run_dir`` (see :mod:`influrec.run`)."""

    def __init__(
        self,
        dataset: EventDataset,
        config: ExperimentConfig,
        run_dir: Path,
        *,
        progress: bool | None = None,
        callbacks: Sequence[TrainingCallback] = (),
        ranks: Ranks = SINGLE,
    ) -> None:
        self.dataset, self.config, self.run_dir = dataset, config, Path(run_dir)
        self.ranks = ranks  # which process of how many: rank 0 alone writes the run folder
        # trackers (train.tracking) and the caller's callbacks: influrec.training.callbacks;
        # on rank 0 only (the other ranks follow its verdict)
        followers = [*trackers(config.train), *callbacks] if ranks.writes else []
        self.callbacks = CallbackList(followers)
        # progress: True shows a line per epoch (and a bar on a terminal), None only on a
        # terminal, False nothing
        self.lines = sys.stderr.isatty() if progress is None else progress
        self.bar: bool | None = None if self.lines else False  # steps(): on a terminal only
        self.device = select_device(config.train.device)
        if config.train.threads > 0:
            torch.set_num_threads(config.train.threads)
        seed_everything(config.train.seed)
        self.data = SequenceData.from_dataset(dataset)
        self.split = make_split(self.data, config.data)
        windows = prefix_windows if config.train.samples == "prefixes" else training_windows
        self.windows = windows(self.data, self.split.train, max_len=config.model.max_len)
        require_targets(self.windows, self.split, config)
        self.content = ItemContent.of(dataset, config.model, self.data, self.windows)
        self.feature_sizes = self.content.sizes  # build_model's keywords, also in run.json
        self.model = build_model(
            config.model,
            n_items=self.data.n_items,
            n_behaviors=self.data.n_behaviors,
            **self.feature_sizes,
        )
        self.content.apply(self.model)
        self.unavailable = self.content.unavailable()
        self.model.to(self.device)
        self.optimizer = torch.optim.AdamW(
            param_groups(self.model, config.train.weight_decay), lr=config.train.lr
        )
        steps_per_epoch = math.ceil(len(self.windows[0]) / config.train.batch_size)
        self.total_steps = steps_per_epoch * config.train.epochs
        self.schedule = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda step: lr_factor(
                step,
                warmup=config.train.warmup_steps,
                total=self.total_steps,
                min_ratio=config.train.min_lr_ratio,
            ),
        )
        self.log_q = proposal_log_q(self.data, self.split, config.train.sampler).to(self.device)
        self.epoch, self.step, self.best_metric, self.best_epoch = 0, 0, -math.inf, 0
        self.stale, self.seconds, self.lr_sum = 0, 0.0, 0.0  # lr_sum: over every step so far
        self.averaged: dict[str, Any] | None = None
        self.stopped: dict[str, Any] | None = None
        self.history: list[dict[str, Any]] = []

    def _autocast(self) -> Any:
        enabled = self.device.type == "cuda" and self.config.train.bf16
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=enabled)

    def loss(self, batch_index: np.ndarray) -> tuple[torch.Tensor, int]:
        """Loss of one batch of windows and the number of targets it covers."""
        config = self.config
        starts, ends = self.windows[0][batch_index], self.windows[1][batch_index]
        batch = batch_windows(self.data, starts, ends, time_buckets=config.model.time_buckets)
        valid, targets = batch.valid, batch.targets
        last_only = config.train.samples == "prefixes"  # a window's last target only
        exclude = None
        if config.train.mask_seen:
            exclude = seen_pairs(batch.items.numpy(), valid, last_only=last_only)
        if last_only:
            valid, targets = valid[:, -1:], ends  # windows end just before their target
        batch = batch.to(self.device)
        with self._autocast():
            inputs = (batch.items, batch.behaviors, batch.gaps, batch.values)
            hidden = self.model.encode(*inputs, last_only=last_only)  # (B, T or 1, D)
            hidden = hidden[torch.from_numpy(valid).to(self.device)]  # (N, D)
            sequences = None
            if config.train.loss == "sampled" and config.train.negatives_per == "sequence":
                sequences = torch.from_numpy(np.nonzero(valid)[0]).to(self.device)
            target_items = torch.from_numpy(self.data.item[targets]).to(self.device)
            queries, items = self.model.scoring_space(hidden, self.model.item_table())
            loss = self._item_loss(queries, target_items, items, exclude, sequences)
            if self.model.behavior_head is not None and config.train.behavior_weight > 0:
                behaviors = torch.from_numpy(self.data.behavior[targets]).to(self.device)
                logits = self.model.behavior_logits(hidden).float()
                loss = loss + config.train.behavior_weight * F.cross_entropy(logits, behaviors)
        return loss, len(targets)

    def _item_loss(
        self,
        hidden: torch.Tensor,
        targets: torch.Tensor,
        items: torch.Tensor,
        exclude: tuple[torch.Tensor, torch.Tensor] | None = None,
        sequences: torch.Tensor | None = None,
    ) -> torch.Tensor:
        train = self.config.train
        if train.loss == "ce":
            exclude = with_unavailable(exclude, self.unavailable, hidden.shape[0])
            if exclude is not None:
                exclude = (exclude[0].to(self.device), exclude[1].to(self.device))
            return full_softmax_loss(
                hidden, targets, items, exclude=exclude, smoothing=train.label_smoothing
            )
        if train.loss == "sampled":
            return sampled_softmax_loss(
                hidden,
                targets,
                items,
                log_q=self.log_q,
                negatives=train.negatives,
                sequences=sequences,
            )
        return bce_loss(hidden, targets, items, negatives=train.negatives)

    def train_step(self, batch_index: np.ndarray) -> tuple[float, int]:
        """One optimizer step on a batch of windows: its mean loss and targets covered."""
        config = self.config.train
        loss, n_targets = self.loss(batch_index)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
        self.lr_sum += float(self.optimizer.param_groups[0]["lr"])  # this step's rate
        self.optimizer.step()
        self.schedule.step()
        self.step += 1
        return loss.item(), n_targets

    def train_epoch(
        self, *, deadline: float = math.inf, skip: int = 0, carried: tuple[float, int] = (0.0, 0)
    ) -> dict[str, Any]:
        """Train on the epoch's batches from batch ``skip`` on (the earlier ones, with loss sum
        and targets ``carried``, were trained before a resume), stopping after the first batch
        that ends past ``deadline`` (a ``time.perf_counter()`` value). An epoch cut short has a
        ``partial`` entry: batches trained, batches in the epoch, targets covered."""
        self.model.train()
        config = self.config.train
        batches = epoch_batches(
            *self.windows, batch_size=config.batch_size, seed=config.seed, epoch=self.epoch
        )
        started, tokens, done = time.perf_counter(), 0, skip
        total_loss, total_targets = carried
        description = f"epoch {self.epoch + 1}/{config.epochs}"
        with steps(len(batches), description, enabled=self.bar) as bar:
            bar.advance(skip)
            for index in batches[skip:]:
                loss, n_targets = self.train_step(index)
                done += 1
                total_loss += loss * n_targets
                total_targets += n_targets
                tokens += int((self.windows[1][index] - self.windows[0][index]).sum())
                bar.advance(note=f"loss {loss:.4f}")
                if deadline < math.inf and self.ranks.agree(time.perf_counter() >= deadline):
                    break
        seconds = time.perf_counter() - started
        stats: dict[str, Any] = {
            "loss": total_loss / max(1, total_targets),
            "seconds": seconds,
            "tokens_per_s": tokens / seconds,
            "lr": float(self.schedule.get_last_lr()[0]),
        }
        if done < len(batches):
            stats["partial"] = {"batches": done, "of": len(batches), "targets": total_targets}
        return stats

    def evaluate(self, targets: np.ndarray) -> TargetEvaluation:
        self.model.eval()
        with self._autocast():
            return evaluate_targets(
                model_score_fn(self.model, self.data, device=self.device),
                self.data,
                targets,
                ks=self.config.eval.ks,
                batch_size=self.config.eval.batch_size,
                progress=self.bar,
                description="validation",
            )

    def fit(self, *, resume: bool = False) -> TrainResult:
        """Train until ``train.epochs``, early stopping or ``train.max_minutes`` (checked after
        every batch: an epoch the budget cuts short is validated and checkpointed as a partial
        one, which a resumed run finishes)."""
        open_run_dir(self, resume=resume)
        config = self.config.train
        metrics_log = MetricsLog(self.run_dir / "metrics.jsonl") if self.ranks.writes else None
        budget = config.max_minutes * 60 if config.max_minutes else math.inf
        lines = EpochLines(
            epochs=config.epochs, monitor=config.monitor, budget_seconds=budget, enabled=self.lines
        )
        self.stopped = self.ranks.agree(stop_info(self, budget))
        self.callbacks.train_start(self)
        while self.stopped is None:
            skip, carried = reopen_partial(self)
            started = time.perf_counter()
            deadline = started + budget - self.seconds
            train_stats = self.train_epoch(deadline=deadline, skip=skip, carried=carried)
            valid = self.evaluate(self.split.valid)
            self.seconds = self.ranks.agree(self.seconds + time.perf_counter() - started)
            self.epoch += 1
            record = self._record(train_stats, valid)
            if metrics_log is not None:
                metrics_log.write(record)
            self.history.append(record)
            asked = self.callbacks.epoch_end(self, record)  # every callback sees every epoch
            self.stopped = self.ranks.agree(stop_info(self, budget) or asked)
            self._checkpoint()
            done = self.epoch - ("partial" in record)
            lines.epoch(record, best=self.best_metric, best_epoch=self.best_epoch, done=done)
        log.info("stopping: %s", stop_sentence(self.stopped, config))
        lines.write(f"stopped: {stop_sentence(self.stopped, config)}")
        if config.average_best > 1:
            self.ranks.barrier()  # every checkpoint written before any rank reads them
            average_best(self, config.average_best)
        if self.ranks.writes:
            run_folder.write_run_info(self.run_dir, self.run_info(finished=True))
        self.callbacks.train_end(self)
        return TrainResult(
            self.run_dir,
            self.best_epoch,
            self.best_metric,
            self.epoch,
            self.seconds,
            self.history,
            self.stopped,
        )

    def _record(self, train_stats: dict[str, Any], valid: TargetEvaluation) -> dict[str, Any]:
        flat = valid.metrics.headline(mask_seen=self.config.eval.mask_seen)
        metric = float(flat[self.config.train.monitor])
        improved = metric > self.best_metric
        if improved:
            self.best_metric, self.best_epoch, self.stale = metric, self.epoch, 0
            if self.ranks.writes:
                run_folder.save_weights(self.model, self.run_dir / run_folder.MODEL_FILE)
        elif "partial" not in train_stats:  # patience counts whole epochs
            self.stale += 1
        log.info(
            "epoch %d loss %.4f valid %s %.4f",
            self.epoch,
            train_stats["loss"],
            self.config.train.monitor,
            metric,
        )
        return {
            "epoch": self.epoch,
            "step": self.step,
            **train_stats,
            "valid": flat,
            "valid_behavior": valid.behavior,
            "improved": improved,
            "elapsed_seconds": self.seconds,
        }

    def _checkpoint(self) -> None:
        if not self.ranks.writes:
            return
        trainer_state = {
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "torch_rng": torch.get_rng_state(),
        }
        if self.device.type == "cuda":
            trainer_state["cuda_rng"] = torch.cuda.get_rng_state()
        state = {
            "epoch": self.epoch,
            "step": self.step,
            "best_metric": self.best_metric,
            "best_epoch": self.best_epoch,
            "stale": self.stale,
            "seconds": self.seconds,
            "lr_sum": self.lr_sum,
            "history": self.history,
            "stopped": self.stopped,
        }
        run_folder.save_checkpoint(
            self.run_dir,
            epoch=self.epoch,
            partial="partial" in self.history[-1],
            model=self.model,
            trainer_state=trainer_state,
            state=state,
            keep=self.config.train.keep_checkpoints,
            protect=self._protected_epochs(),
        )
        run_folder.write_run_info(self.run_dir, self.run_info(finished=False))

    def _protected_epochs(self) -> set[int]:
        """Never deleted: the best epoch, every keep_every-th, the average_best best so far."""
        every = self.config.train.keep_every
        kept = set(range(every, self.epoch + 1, every)) if every else set()
        return (
            kept
            | {self.best_epoch}
            | set(
                best_epochs(self.history, self.config.train.monitor, self.config.train.average_best)
            )
        )

    def run_info(self, *, finished: bool) -> run_folder.RunInfo:
        """What run.json records about this run (see :mod:`influrec.run`)."""
        monitor = self.config.train.monitor
        return run_folder.RunInfo(
            influrec_version=__version__,
            torch_version=torch.__version__,
            python_version=platform.python_version(),
            config=self.config,
            n_items=self.data.n_items,
            n_behaviors=self.data.n_behaviors,
            feature_values=self.feature_sizes["feature_values"],
            feature_width=self.feature_sizes["feature_width"],
            text_dim=self.feature_sizes["text_dim"],
            parameters=self.model.num_parameters(),
            split={"kind": self.split.kind, **self.split.params, **self.split.sizes()},
            training_windows=len(self.windows[0]),
            dataset={k: self.dataset.stats.get(k) for k in ("users", "items", "events", "source")},
            epochs_run=self.epoch,
            best_epoch=self.best_epoch,
            best_valid={monitor: self.best_metric} if self.best_epoch else None,
            train_seconds=round(self.seconds, 2),
            averaged=self.averaged,
            finished=finished,
            stopped=self.stopped,
            device=str(self.device),
        )


def train(
    dataset: EventDataset,
    config: ExperimentConfig,
    run_dir: Path,
    *,
    resume: bool = False,
    progress: bool | None = None,
    callbacks: Sequence[TrainingCallback] = (),
) -> TrainResult:
    """Train a model: ``train(EventDataset.load("data/beauty"), load_config(), Path("runs/b"))``.

    ``run_dir`` must be missing or empty, or with ``resume`` a run folder with a checkpoint
    (see :mod:`influrec.training.resume`); that is checked before any work is done.
    ``progress``: ``True`` writes one line per epoch to stderr (and draws a bar inside each
    epoch on a terminal), ``None`` does so only where stderr is a terminal, ``False`` never.
    ``callbacks`` follow the run (:mod:`influrec.training.callbacks`).
    """
    check_run_dir(run_dir, resume=resume)
    trainer = Trainer(dataset, config, run_dir, progress=progress, callbacks=callbacks)
    return trainer.fit(resume=resume)
