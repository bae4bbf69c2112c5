"""What each process of the distributed-training tests runs (tests/training/test_distributed.py).

Spawned by torch.multiprocessing, so importable by name; every process joins a gloo group
through a file in the test's folder and uses one CPU thread.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from influrec.config import ExperimentConfig, load_config
from influrec.data.dataset import EventDataset
from influrec.data.synthesize import synthesize_dataset
from influrec.data.synthetic import SynthConfig
from influrec.training.distributed import DistributedTrainer, train_distributed
from influrec.training.loop import Trainer
from influrec.training.schedule import epoch_batches

TINY = [
    "model.max_len=12",
    "model.d_model=16",
    "model.layers=1",
    "model.heads=2",
    "model.dropout=0",  # no randomness: one process and two must train the same weights
    "model.attn_dropout=0",
    "train.batch_size=32",
    "train.warmup_steps=2",
    "train.keep_checkpoints=10",
    "eval.ks=[1,5,10]",
]
ODD_BATCH = 31  # windows in the first step's batch: the two ranks' shares differ in size
STEPS = 6


def tiny_dataset() -> EventDataset:
    return synthesize_dataset(SynthConfig(n_users=80, n_items=40, mean_events=12, seed=1))


def tiny_config(*extra: str) -> ExperimentConfig:
    return load_config(None, [*TINY, *extra])


def spawn(worker: Callable[[Path], None], folder: Path, *, world: int = 2) -> None:
    """Run ``worker(folder)`` on ``world`` gloo ranks; raises when any rank fails. Forked
    where the platform can (no second import of torch), else spawned."""
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    if method == "fork":  # what a trainer imports on first use, imported once before the fork
        Trainer(tiny_dataset(), tiny_config(), folder / "warm-up", progress=False)
    mp.start_processes(_join, args=(world, worker, folder), nprocs=world, start_method=method)


def _join(rank: int, world: int, worker: Callable[[Path], None], folder: Path) -> None:
    torch.set_num_threads(1)
    store = folder / f"store-{worker.__name__}"
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        worker(folder)
    finally:
        dist.destroy_process_group()


def _parameters(trainer: DistributedTrainer) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in trainer.model.named_parameters()}


def steps_worker(folder: Path) -> None:
    """One step on an odd batch, then more steps; the validation metrics after them."""
    rank = dist.get_rank()
    trainer = DistributedTrainer(tiny_dataset(), tiny_config(), folder / "unused", progress=False)
    batches = epoch_batches(
        *trainer.windows, batch_size=32, seed=trainer.config.train.seed, epoch=0
    )
    first = batches[0][:ODD_BATCH]
    loss, targets = trainer.train_step(first)
    torch.save(
        {"loss": loss, "targets": targets, "parameters": _parameters(trainer)},
        folder / f"step1-rank{rank}.pt",
    )
    for batch in batches[1:STEPS]:
        trainer.train_step(batch)
    torch.save(_parameters(trainer), folder / f"steps-rank{rank}.pt")
    valid = trainer.evaluate(trainer.split.valid)
    record = {"metrics": valid.metrics.to_dict(), "seen": valid.targets_seen}
    (folder / f"valid-rank{rank}.json").write_text(json.dumps(record))


def runs_worker(folder: Path) -> None:
    """A new 2-epoch run; the single-process run in ``resumed`` (cut after epoch 1)
    finished; a run whose time budget is up after its first batch."""
    dataset, config = tiny_dataset(), tiny_config("train.epochs=2")
    train_distributed(dataset, config, folder / "ddp", progress=False)
    train_distributed(dataset, config, folder / "resumed", resume=True, progress=False)
    budget = tiny_config("train.epochs=2", "train.max_minutes=1e-9")  # over after a batch
    train_distributed(dataset, budget, folder / "budget", progress=False)
