"""Train and evaluate the behaviour Transformer on a real dataset; print the results table.

    python bench/train.py beauty                  # Amazon Beauty, bench/configs/beauty.toml
    python bench/train.py ml-1m --set train.max_minutes=10
    python bench/train.py beauty --throughput-only

Each run prepares the dataset from ../shared/datasets, trains with the committed config
(early stopping on validation NDCG@10), then evaluates the best epoch on the test split with
full ranking over all items, with and without masking seen items. ``--throughput`` also times
one epoch of a plain PyTorch SASRec loop of the same size (fixed-length padding, one sequence
per user per step, logits at every position) in the same process, as the speed baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from influrec.config import load_config
from influrec.data.dataset import EventDataset, prepare
from influrec.data.loaders import ReadOptions
from influrec.data.preprocess import PrepareConfig
from influrec.data.sequences import SequenceData
from influrec.data.splits import leave_one_out_split
from influrec.evaluation.runs import evaluate_run
from influrec.runtime import keep_freed_memory
from influrec.training.loop import Trainer

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
OUT = ROOT / "bench" / "out"

DATASETS = {
    "beauty": ("s3rec-sequences/Beauty.txt", "s3rec", 0),
    "sports": ("s3rec-sequences/Sports_and_Outdoors.txt", "s3rec", 0),
    "yelp": ("s3rec-sequences/Yelp.txt", "s3rec", 0),
    "ml-1m": ("ml-1m/ratings.first487650.dat.gz", "movielens", 5),
    "ml-100k": ("ml-100k/u.data", "movielens", 5),
}


def machine_line() -> str:
    """The machine, versions and thread count; applies :func:`keep_freed_memory` (idempotent),
    as every benchmark runs with it, and says whether it is in effect."""
    return (
        f"{platform.node()} | {os.cpu_count()} cores | torch {torch.__version__} "
        f"({torch.get_num_threads()} threads) | python {platform.python_version()} "
        f"| malloc keeps freed memory: {keep_freed_memory()}"
    )


def prepared(name: str) -> EventDataset:
    relative, fmt, core = DATASETS[name]
    path = SHARED / relative
    if not path.exists():
        sys.exit(f"{path} not present: this benchmark needs ../shared/datasets")
    config = PrepareConfig(min_user_events=core, min_item_events=core)
    return prepare(path, fmt, read_options=ReadOptions(), config=config)


class PlainSASRec(nn.Module):
    """The textbook loop's model: fixed-length inputs, logits for every position."""

    def __init__(self, n_items: int, d: int, layers: int, heads: int, max_len: int) -> None:
        super().__init__()
        self.items = nn.Embedding(n_items + 1, d, padding_idx=0)
        self.positions = nn.Embedding(max_len, d)
        layer = nn.TransformerEncoderLayer(d, heads, 4 * d, 0.2, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.mask = nn.Transformer.generate_square_subsequent_mask(max_len)

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        x = self.items(seq) + self.positions.weight[None]
        h = self.encoder(x, mask=self.mask, is_causal=True, src_key_padding_mask=seq == 0)
        return h @ self.items.weight.T  # (B, T, I + 1)


def plain_loop_tokens_per_s(
    dataset: EventDataset,
    d: int,
    layers: int,
    heads: int,
    max_len: int,
    batch_size: int,
    seconds: float = 60.0,
) -> float:
    """Tokens/s of the plain loop: each user's last max_len+1 training events, right-aligned."""
    data = SequenceData.from_dataset(dataset)
    split = leave_one_out_split(data.user)
    train_end = np.full(len(data.user_start), 0)
    train_end[data.user[split.valid]] = split.valid  # train events end before the valid target
    users = np.flatnonzero(train_end - data.user_start >= 2)
    seqs = np.zeros((len(users), max_len + 1), np.int64)
    for row, u in enumerate(users):
        items = data.item[max(data.user_start[u], train_end[u] - max_len - 1) : train_end[u]]
        seqs[row, -len(items) :] = items
    model = PlainSASRec(data.n_items, d, layers, heads, max_len)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    tokens, started, step = 0, time.perf_counter(), 0
    order = np.random.default_rng(0).permutation(len(seqs))
    while time.perf_counter() - started < seconds:
        batch = torch.from_numpy(seqs[order[(step * batch_size) % len(seqs) :][:batch_size]])
        inputs, targets = batch[:, :-1], batch[:, 1:]
        logits = model(inputs)
        loss = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=0
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        tokens += int((targets != 0).sum())
        step += 1
    return tokens / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset", choices=list(DATASETS))
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--throughput", action="store_true", help="also time the plain SASRec loop")
    parser.add_argument("--throughput-only", action="store_true")
    parser.add_argument("--name", default=None, help="run folder bench/out/run-NAME (the dataset)")
    args = parser.parse_args()
    config_path = args.config or ROOT / "bench" / "configs" / f"{args.dataset}.toml"
    config = load_config(config_path, args.set)
    print(f"machine: {machine_line()}")
    print(f"command: python bench/train.py {' '.join(sys.argv[1:])}")
    print(f"config: {config_path} {args.set}")
    dataset = prepared(args.dataset)
    s = dataset.stats
    print(
        f"data: {args.dataset}: {s['users']:,} users, {s['items']:,} items, {s['events']:,} events"
    )
    run_dir = OUT / f"run-{args.name or args.dataset}"
    shutil.rmtree(run_dir, ignore_errors=True)
    m = config.model
    if args.throughput or args.throughput_only:
        trainer = Trainer(dataset, config, run_dir, progress=False)
        ours = trainer.train_epoch()
        plain = plain_loop_tokens_per_s(
            dataset,
            m.d_model,
            m.layers,
            m.heads,
            m.max_len,
            config.train.batch_size,
            seconds=min(60.0, ours["seconds"]),
        )
        print(
            f"\nthroughput (d {m.d_model}, {m.layers} layers, max_len {m.max_len}, "
            f"batch {config.train.batch_size}, full softmax):"
        )
        epoch = ours["seconds"]
        print(f"  influrec   {ours['tokens_per_s']:>10,.0f} tokens/s   one epoch {epoch:.1f} s")
        print(f"  plain loop {plain:>10,.0f} tokens/s   ratio {ours['tokens_per_s'] / plain:.2f}x")
        if args.throughput_only:
            return
        shutil.rmtree(run_dir, ignore_errors=True)
    trainer = Trainer(dataset, config, run_dir, progress=False)
    print(
        f"model: {trainer.model.num_parameters():,} parameters; {len(trainer.windows[0]):,} windows"
    )
    result = trainer.fit()
    report = evaluate_run(run_dir, split="test", ks=(1, 5, 10, 20, 50, 200))
    print(
        f"\ntrained {result.epochs_run} epochs in {result.seconds / 60:.1f} min; best epoch "
        f"{result.best_epoch}, valid {config.train.monitor} {result.best_metric:.4f}"
    )
    print(f"test, {report.targets:,} targets, full ranking over all {s['items']:,} items:")
    ks = [k for k in (10, 50, 200) if f"HR@{k}" in report.model.unmasked]
    header = "  ".join(f"{m}@{k:<4}" for k in ks for m in ("HR", "NDCG"))
    print(f"{'seen items':12} {header}")
    for label, values in (("not masked", report.model.unmasked), ("masked", report.model.masked)):
        print(
            f"{label:12} "
            + "  ".join(
                f"{values[f'{m}@{k}']:.4f}".ljust(len(f"{m}@{k:<4}"))
                for k in ks
                for m in ("HR", "NDCG")
            )
        )
    (run_dir / "bench.json").write_text(
        json.dumps({"report": report.to_dict(), "seconds": result.seconds}, indent=2)
    )


if __name__ == "__main__":
    main()
