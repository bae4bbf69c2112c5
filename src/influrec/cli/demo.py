"""``influrec demo``: the main job on the built-in synthetic data.

Until the model lands it generates and prepares the synthetic data, splits it and summarises
what a model will be trained and evaluated on.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from influrec.cli.data import print_stats
from influrec.data.splits import leave_one_out_split
from influrec.data.synthesize import synthesize_dataset
from influrec.data.synthetic import SynthConfig


def register(commands: Any) -> None:
    demo = commands.add_parser("demo", help="run the main job on built-in synthetic data")
    demo.add_argument("--out", type=Path, default=Path("demo-output"), help="working folder")
    demo.add_argument("--users", type=int, default=2000)
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(handler=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    console = Console()
    dataset = synthesize_dataset(SynthConfig(n_users=args.users, seed=args.seed))
    folder = dataset.save(args.out / "data", overwrite=True)
    print_stats(dataset.stats, title=f"synthetic data (seed {args.seed}) in {folder}")
    split = leave_one_out_split(dataset.column("user_idx"))
    console.print(f"leave-one-out split: {split.sizes()}")
    console.print(
        f"planted causes: {dataset.stats['caused_events']:,} events were caused by an earlier one "
        f"(ground truth in {folder / 'ground_truth.parquet'})"
    )
    _show_user(console, dataset, user_idx=1)
    return 0


def _show_user(console: Console, dataset: Any, *, user_idx: int) -> None:
    users = dataset.column("user_idx")
    rows = np.flatnonzero(users == user_idx)[:15]
    caused = {}
    if dataset.ground_truth is not None:
        truth = dataset.ground_truth.to_pydict()
        caused = dict(zip(truth["row"], truth["cause_row"], strict=True))
    table = Table(title=f"first events of user {dataset.users.column('user_id')[user_idx - 1]}")
    for name in ("row", "item", "behavior", "time (UTC)", "caused by row"):
        table.add_column(name)
    events = dataset.events.take(rows).to_pylist()
    for e in events:
        when = np.datetime64(e["timestamp"], "s").astype(str).replace("T", " ")
        table.add_row(
            str(e["row"]), e["item_id"], e["behavior"], when, str(caused.get(e["row"], ""))
        )
    console.print(table)
