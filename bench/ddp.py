"""Training throughput on 1 and 2 CPU processes (DistributedDataParallel over gloo, one thread
per process), and what each distributed step costs: compute and gradient all-reduce.

    python bench/ddp.py                       # MovieLens-100k, bench/configs/ml-100k.toml
    python bench/ddp.py --data synthetic      # without ../shared/datasets
    python bench/ddp.py --steps 30 --repeats 3

Every process trains the same global batches (``train.batch_size`` windows; epoch 0's order),
so the rows compare the same work. After ``--warmup`` steps, ``--steps`` steps are timed,
``--repeats`` times, the 1- and 2-process runs taking turns (this machine is shared: turns
spread its load over both). For 2 processes the step is then split into its parts on the
same batches: forward + backward without synchronising (DDP's ``no_sync``), and an all-reduce
of the gradients' size (one float32 per parameter) on its own.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from influrec.config import ExperimentConfig, load_config
from influrec.data.dataset import EventDataset
from influrec.data.synthesize import synthesize_dataset
from influrec.data.synthetic import SynthConfig
from influrec.training.distributed import DistributedTrainer, rank_share
from influrec.training.loop import Trainer
from influrec.training.schedule import epoch_batches
from train import machine_line, prepared

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "bench" / "configs" / "ml-100k.toml"


def dataset_of(name: str) -> EventDataset:
    if name == "synthetic":
        return synthesize_dataset(SynthConfig(n_users=900, n_items=1600, mean_events=100, seed=0))
    return prepared(name)


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"


def spread_ratio(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def time_steps(trainer: Trainer, batches: list[np.ndarray]) -> tuple[float, float]:
    """Wall seconds for optimizer steps on ``batches`` (every rank finishes the last one), and
    the CPU seconds this process spent on them (less sensitive to other work on the machine)."""
    trainer.model.train()
    trainer.ranks.barrier()
    started, cpu = time.perf_counter(), time.process_time()
    for batch in batches:
        trainer.train_step(batch)
    trainer.ranks.barrier()
    return time.perf_counter() - started, time.process_time() - cpu


def step_parts(trainer: DistributedTrainer, batches: list[np.ndarray]) -> dict[str, float]:
    """Milliseconds per step of this rank's forward + backward without gradient sync, and of
    an all-reduce of one float32 per parameter (what DDP sends per step)."""
    trainer.model.train()
    trainer.ranks.barrier()
    started, cpu = time.perf_counter(), time.process_time()
    for batch in batches:
        with trainer.ddp.no_sync():
            trainer.ddp(rank_share(batch, trainer.ranks)).backward()
        trainer.optimizer.zero_grad(set_to_none=True)
    compute, cpu = time.perf_counter() - started, time.process_time() - cpu
    flat = torch.zeros(sum(p.numel() for p in trainer.model.parameters()))
    trainer.ranks.barrier()
    started = time.perf_counter()
    for _ in batches:
        dist.all_reduce(flat)
    reduce = time.perf_counter() - started
    return {
        "compute_ms": 1e3 * compute / len(batches),
        "compute_cpu_ms": 1e3 * cpu / len(batches),
        "allreduce_ms": 1e3 * reduce / len(batches),
    }


def worker(rank: int, world: int, job: dict[str, Any]) -> None:
    torch.set_num_threads(1)
    folder = Path(job["folder"])
    if world > 1:
        store = folder / f"store-{job['turn']}"
        dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    dataset, config = job["dataset"], job["config"]
    run = folder / f"unused-{job['turn']}"
    trainer: Trainer = (
        DistributedTrainer(dataset, config, run, progress=False)
        if world > 1
        else Trainer(dataset, config, run, progress=False)
    )
    batches = epoch_batches(
        *trainer.windows, batch_size=config.train.batch_size, seed=config.train.seed, epoch=0
    )
    warm, timed = batches[: job["warmup"]], batches[job["warmup"] : job["warmup"] + job["steps"]]
    time_steps(trainer, warm)
    seconds, cpu = time_steps(trainer, timed)
    result: dict[str, Any] = {
        "world": world,
        "seconds": seconds,
        "cpu_seconds": cpu,  # rank 0's
        "tokens": int(sum((trainer.windows[1][b] - trainer.windows[0][b]).sum() for b in timed)),
        "steps": len(timed),
        "parameters": trainer.model.num_parameters(),
    }
    if isinstance(trainer, DistributedTrainer):
        result.update(step_parts(trainer, timed))
    if rank == 0:
        (folder / f"result-{job['turn']}.json").write_text(json.dumps(result))
    if world > 1:
        dist.destroy_process_group()


def measure(
    args: argparse.Namespace, dataset: EventDataset, config: ExperimentConfig
) -> list[dict[str, Any]]:
    results = []
    with tempfile.TemporaryDirectory() as folder:
        turn = 0
        for _ in range(args.repeats):
            for world in (1, 2):
                job = {
                    "folder": folder,
                    "turn": turn,
                    "dataset": dataset,
                    "config": config,
                    "warmup": args.warmup,
                    "steps": args.steps,
                }
                mp.start_processes(worker, args=(world, job), nprocs=world, start_method="fork")
                results.append(json.loads((Path(folder) / f"result-{turn}.json").read_text()))
                turn += 1
    return results


def report(results: list[dict[str, Any]]) -> None:
    rows = {w: [r for r in results if r["world"] == w] for w in (1, 2)}
    rate = {w: [r["tokens"] / r["seconds"] for r in rs] for w, rs in rows.items()}
    step = {w: [1e3 * r["seconds"] / r["steps"] for r in rs] for w, rs in rows.items()}
    ratios = [b / a for a, b in zip(rate[1], rate[2], strict=True)]  # turn by turn
    cpu = {w: [1e3 * r["cpu_seconds"] / r["steps"] for r in rs] for w, rs in rows.items()}
    header = ("processes", "ms/step (wall)", "tokens/s (wall)", "vs 1 process", "CPU ms/step")
    print("\n" + " | ".join(f"{h:>27}" for h in header))
    for world in (1, 2):
        ratio = "1.00" if world == 1 else spread_ratio(ratios)
        cells = (str(world), spread(step[world]), spread(rate[world]), ratio, spread(cpu[world]))
        print(" | ".join(f"{c:>27}" for c in cells))
    print("(median (min-max) over the repeats; CPU ms/step: rank 0's process CPU time)")
    compute = [r["compute_ms"] for r in rows[2]]
    compute_cpu = [r["compute_cpu_ms"] for r in rows[2]]
    reduce = [r["allreduce_ms"] for r in rows[2]]
    parameters = rows[2][0]["parameters"]
    print(
        f"\n2 processes, per step: forward+backward of a rank's half batch {spread(compute)} ms "
        f"wall, {spread(compute_cpu)} ms CPU; "
        f"all-reduce of {parameters:,} float32 gradients ({4 * parameters / 1e6:.2f} MB) "
        f"{spread(reduce)} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", default="ml-100k", help="ml-100k (../shared/datasets) or synthetic"
    )
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    dataset = dataset_of(args.data)
    config = load_config(args.config, args.set)
    print(machine_line())
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())} (shared machine)")
    print(f"command: python {' '.join(sys.argv)}")
    print(
        f"data {args.data}: {dataset.stats.get('users')} users, {dataset.stats.get('events')} events; "
        f"config {args.config.name} {' '.join(args.set)}; batch {config.train.batch_size} windows "
        f"(global), max_len {config.model.max_len}, d_model {config.model.d_model}, "
        f"{config.model.layers} layers; one thread per process"
    )
    report(measure(args, dataset, config))
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
