"""Training on several processes (torchrun): DistributedDataParallel over gloo on CPU, NCCL on
CUDA (with bf16 autocast there, as a single process).

torchrun starts N processes of ``influrec train``; each
is one rank of the process group (:func:`train_distributed`; the command line calls it when
:attr:`~influrec.training.ranks.Ranks.launched`, torchrun's ``WORLD_SIZE`` > 1). An epoch's
batches are exactly those of a single process (:func:`~influrec.training.schedule.epoch_batches`,
``train.batch_size`` windows each: the global batch); each rank trains on its share of every
batch (:func:`rank_share`), so the ranks' shares are disjoint and together cover every
training target once per epoch. Each rank's loss is weighted by its share of the batch's
targets, so the gradients DDP averages are those of the mean loss over the whole batch: one
step on N ranks is one single-process step on the whole batch, up to float rounding.

Validation is split among the ranks too; the ranks' target ranks are gathered and every rank
takes the same metrics from them. Rank 0 writes the run folder (checkpoints, ``run.json``,
``metrics.jsonl``, the model); the time spent, the time budget's verdict and why training
stops are rank 0's, broadcast. The optimizer state and the step count do not depend on the
number of ranks, so a run resumes on any number of processes.
"""

from __future__ import annotations

import datetime
import inspect
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from influrec.config import ExperimentConfig
from influrec.data.dataset import EventDataset
from influrec.evaluation.protocol import (
    TargetEvaluation,
    TargetRanks,
    model_score_fn,
    rank_targets,
    summarize_ranks,
)
from influrec.training.callbacks import TrainingCallback
from influrec.training.loop import Trainer, TrainResult
from influrec.training.ranks import Ranks
from influrec.training.resume import check_run_dir
from influrec.training.setup import select_device

log = logging.getLogger(__name__)
TIMEOUT = datetime.timedelta(minutes=30)  # a collective waits this long for a slow rank


def rank_share(batch: np.ndarray, ranks: Ranks) -> np.ndarray:
    """The windows of ``batch`` that ``ranks.rank`` trains on: every ``world``-th from its rank
    on. A batch holds windows of similar length, so the shares are balanced; a rank's share is
    empty only when the batch has fewer windows than there are ranks."""
    return batch[ranks.rank :: ranks.world]


def window_targets(windows: tuple[np.ndarray, np.ndarray], index: np.ndarray, samples: str) -> int:
    """How many targets the windows ``index`` cover: one per event of a window, or one per
    window for ``train.samples = "prefixes"``."""
    if samples == "prefixes":
        return len(index)
    return int((windows[1][index] - windows[0][index]).sum())


class _Objective(nn.Module):
    """The trainer's loss as a module's forward, so DDP sees the passes it must synchronise."""

    def __init__(self, trainer: Trainer, unused: list[str]) -> None:
        super().__init__()
        self.model = trainer.model
        self.trainer = [trainer]  # a list: not registered as a submodule
        self.reached = [p for n, p in self.model.named_parameters() if n not in unused]

    def forward(self, share: np.ndarray) -> torch.Tensor:
        if len(share) == 0:  # no windows: a zero loss that reaches what the loss reaches
            return sum(p.sum() * 0.0 for p in self.reached)  # type: ignore[return-value]
        return self.trainer[0].loss(share)[0]


def unused_parameters(trainer: Trainer) -> list[str]:
    """Names of the trainable parameters the training loss does not reach, found by one
    forward and backward pass on the shortest window (weights, gradients and random state
    left as they were). Which parameters the loss reaches depends on the model and the config
    (a behaviour head trains only with ``train.behavior_weight`` > 0), not on the batch."""
    shortest = np.argsort(trainer.windows[1] - trainer.windows[0], kind="stable")[:1]
    cuda = [torch.cuda.current_device()] if trainer.device.type == "cuda" else []
    trainer.model.train()
    trainer.optimizer.zero_grad(set_to_none=True)
    with torch.random.fork_rng(devices=cuda):
        trainer.loss(shortest)[0].backward()
    named = trainer.model.named_parameters()
    unused = [name for name, p in named if p.requires_grad and p.grad is None]
    trainer.optimizer.zero_grad(set_to_none=True)
    return unused


def _no_buffer_sync() -> dict[str, Any]:
    """DDP's option not to broadcast buffers before each forward pass (the model's buffers,
    item feature ids, never change): ``forward_sync_buffers`` where torch has it, else
    ``broadcast_buffers``."""
    options = inspect.signature(nn.parallel.DistributedDataParallel).parameters
    name = "forward_sync_buffers" if "forward_sync_buffers" in options else "broadcast_buffers"
    return {name: False}


class DistributedTrainer(Trainer):
    """A :class:`~influrec.training.loop.Trainer` that is one rank of an initialised process
    group. Every rank builds the same model from the same seed; DDP also copies rank 0's."""

    def __init__(
        self,
        dataset: EventDataset,
        config: ExperimentConfig,
        run_dir: Path,
        *,
        progress: bool | None = None,
        callbacks: Sequence[TrainingCallback] = (),
    ) -> None:
        ranks = Ranks(dist.get_rank(), dist.get_world_size())
        super().__init__(
            dataset, config, run_dir, progress=progress, callbacks=callbacks, ranks=ranks
        )
        if not ranks.writes:
            self.lines, self.bar = False, False  # rank 0 shows progress
        devices = [torch.cuda.current_device()] if self.device.type == "cuda" else None
        unused = unused_parameters(self)  # e.g. a behaviour head with train.behavior_weight=0
        if unused:
            log.info("parameters the loss does not reach: %s", ", ".join(unused))
        self.ddp = nn.parallel.DistributedDataParallel(
            _Objective(self, unused),
            device_ids=devices,
            find_unused_parameters=bool(unused),  # else DDP waits for their gradients
            **_no_buffer_sync(),
        )

    def train_epoch(self, *, skip: int = 0, **kwargs: Any) -> dict[str, Any]:
        """The epoch from batch ``skip`` on, with dropout masks of this rank's own: its random
        numbers start from (seed, epoch, skip, rank), so the ranks differ, and a run resumed
        at an epoch's start on the same number of ranks draws what it drew before."""
        key = [self.config.train.seed, self.epoch, skip, self.ranks.rank]
        torch.manual_seed(int(np.random.SeedSequence(key).generate_state(1)[0]))
        return super().train_epoch(skip=skip, **kwargs)

    def train_step(self, batch_index: np.ndarray) -> tuple[float, int]:
        """One optimizer step on the global batch ``batch_index``, this rank training on its
        share: its mean loss weighted by its share of the batch's targets. Returns the mean
        loss over the whole batch and the batch's targets, as a single process does."""
        config = self.config.train
        share = rank_share(batch_index, self.ranks)
        total = window_targets(self.windows, batch_index, config.samples)
        mine = window_targets(self.windows, share, config.samples)
        loss = self.ddp(share)
        self.optimizer.zero_grad(set_to_none=True)
        # DDP averages the gradients over the ranks: weighting each rank's mean loss by
        # world * mine / total makes that average the gradient of the batch's mean loss
        (loss * (self.ranks.world * mine / total)).backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
        self.lr_sum += float(self.optimizer.param_groups[0]["lr"])
        self.optimizer.step()
        self.schedule.step()
        self.step += 1
        summed = torch.tensor(
            [float(loss.detach()) * mine], dtype=torch.float64, device=self._collective_device()
        )
        dist.all_reduce(summed)
        return float(summed[0]) / total, total

    def _collective_device(self) -> torch.device:
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")

    def evaluate(self, targets: np.ndarray) -> TargetEvaluation:
        """Each rank ranks every ``world``-th target; the ranks are gathered and joined in
        the order of ``targets``, and every rank takes the same metrics from them."""
        self.model.eval()
        share = np.arange(len(targets))[self.ranks.rank :: self.ranks.world]
        with self._autocast():
            mine = rank_targets(
                model_score_fn(self.model, self.data, device=self.device),
                self.data,
                targets[share],
                batch_size=self.config.eval.batch_size,
                progress=self.bar,
                description="validation",
            )
        parts = self.ranks.gather(mine)
        order = np.concatenate(
            [np.arange(len(targets))[r :: self.ranks.world] for r in range(len(parts))]
        )
        joined = TargetRanks.join(parts, order)
        return summarize_ranks(joined, self.data, targets, ks=self.config.eval.ks)

    def fit(self, *, resume: bool = False) -> TrainResult:
        result = super().fit(resume=resume)
        self.ranks.barrier()  # rank 0 has written the run folder when any rank returns
        return result


def backend_for(config: ExperimentConfig) -> str:
    """``nccl`` when training on CUDA, else ``gloo``."""
    return "nccl" if select_device(config.train.device).type == "cuda" else "gloo"


def init_process_group(config: ExperimentConfig) -> None:
    """Join torchrun's process group (``MASTER_ADDR``, ``RANK``, ``WORLD_SIZE``... from the
    environment); on CUDA each process takes the GPU of its ``LOCAL_RANK``."""
    if dist.is_initialized():
        return
    backend = backend_for(config)
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend, timeout=TIMEOUT)
    log.info("rank %d of %d (%s)", dist.get_rank(), dist.get_world_size(), backend)


def train_distributed(
    dataset: EventDataset,
    config: ExperimentConfig,
    run_dir: Path,
    *,
    resume: bool = False,
    progress: bool | None = None,
    callbacks: Sequence[TrainingCallback] = (),
) -> TrainResult:
    """:func:`~influrec.training.loop.train` as one rank of a torchrun job (every rank calls
    it with the same arguments); joins the process group when it is not yet initialised."""
    init_process_group(config)
    check_run_dir(run_dir, resume=resume)
    Ranks(dist.get_rank(), dist.get_world_size()).barrier()  # all checked before rank 0 writes
    trainer = DistributedTrainer(dataset, config, run_dir, progress=progress, callbacks=callbacks)
    return trainer.fit(resume=resume)
