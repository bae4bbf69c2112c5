"""``influrec demo``: the main job end to end on the built-in synthetic data.

Generates a shop's behaviour logs with planted influence, trains a small behaviour Transformer,
evaluates it against popularity with full ranking, and shows one user's history and top-10.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from influrec.cli.common import positive_int
from influrec.config import load_config
from influrec.data.dataset import DATASET_FOLDER
from influrec.data.synthesize import synthesize_dataset
from influrec.data.synthetic import SynthConfig
from influrec.evaluation.runs import RunEvaluation, evaluate_run
from influrec.folders import FolderKind, check_output_dir, remove_dir
from influrec.inference import Recommender
from influrec.run import RUN_FOLDER
from influrec.training.loop import train

DEMO_SETTINGS = [
    "model.max_len=50",
    "model.d_model=64",
    "model.layers=2",
    "model.heads=2",
    "model.dropout=0.2",
    "model.attn_dropout=0.2",
    "model.time_buckets=16",
    "train.epochs=20",
    "train.batch_size=128",
    "train.lr=0.002",
    "train.warmup_steps=50",
    "train.patience=3",
    "train.keep_checkpoints=2",
]


def register(commands: Any) -> None:
    demo = commands.add_parser("demo", help="synthetic data -> train -> evaluate -> recommend")
    demo.add_argument(
        "--out",
        type=Path,
        default=Path("demo-output"),
        help="working folder: created, or replaced if an earlier demo wrote it",
    )
    demo.add_argument("--users", type=positive_int, default=SynthConfig.n_users)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="config override"
    )
    demo.set_defaults(handler=run_demo)


DEMO_FOLDER = FolderKind(
    "demo folder",
    markers=tuple(f"data/{name}" for name in DATASET_FOLDER.markers),
    contents=frozenset({"data", "run"}),
)
"""What ``demo --out`` holds: the synthetic dataset in data/ and the run in run/."""


def run_demo(args: argparse.Namespace) -> int:
    # before any work: --out is new, empty or an earlier demo's (replaced), nothing else
    check_output_dir(args.out, DEMO_FOLDER, overwrite=True)
    check_output_dir(args.out / "run", RUN_FOLDER, overwrite=True)
    console = Console(soft_wrap=True)
    dataset = synthesize_dataset(SynthConfig(n_users=args.users, seed=args.seed))
    folder = dataset.save(args.out / "data", overwrite=True)
    stats = dataset.stats
    behaviors = ", ".join(f"{b} {n:,}" for b, n in stats["behaviors"].items())
    console.print(
        f"[bold]1. data[/bold]  {stats['events']:,} synthetic events of {stats['users']:,} "
        f"users on {stats['items']:,} items ({behaviors}); {stats['caused_events']:,} events "
        f"were caused by an earlier one (ground truth in {folder})"
    )
    run_dir = args.out / "run"
    remove_dir(run_dir, RUN_FOLDER)
    config = load_config(None, [*DEMO_SETTINGS, f"train.seed={args.seed}", *args.set])
    result = train(dataset, config, run_dir, progress=sys.stderr.isatty())
    console.print(
        f"[bold]2. train[/bold] {result.epochs_run} epochs in {result.seconds:.0f} s, best epoch "
        f"{result.best_epoch} (validation NDCG@10 {result.best_metric:.4f}); run folder {run_dir}"
    )
    report = evaluate_run(run_dir, split="test", baselines=["popularity"])
    _print_comparison(console, report)
    _print_user(
        console, Recommender.load(run_dir), user_id=dataset.users.column("user_id")[0].as_py()
    )
    return 0


def _print_comparison(console: Console, report: RunEvaluation) -> None:
    console.print(
        f"[bold]3. evaluate[/bold] test split (last event of each of {report.targets:,} users), "
        "full ranking over all items, seen items NOT masked"
    )
    table = Table()
    metrics = ["HR@10", "NDCG@10", "MRR@10", "HR@50", "NDCG@50"]
    for name in ["model", *metrics]:
        table.add_column(name, justify="right" if name != "model" else "left")
    model, popularity = report.model.unmasked, report.baselines["popularity"].unmasked
    table.add_row("behaviour Transformer", *(f"{model[m]:.4f}" for m in metrics))
    table.add_row("popularity", *(f"{popularity[m]:.4f}" for m in metrics))
    console.print(table)
    ratio = model["NDCG@10"] / max(popularity["NDCG@10"], 1e-12)
    console.print(f"NDCG@10: the model is {ratio:.1f}x popularity")


def _print_user(console: Console, recommender: Recommender, *, user_id: str) -> None:
    history = recommender.user_history(user_id)
    console.print(f"[bold]4. recommend[/bold] user {user_id}: last events and next top-10")
    shown = Table(title="history (latest last)")
    for name in ("#", "item", "behavior", "time (UTC)"):
        shown.add_column(name)
    behaviors = recommender.dataset.behaviors
    for position in range(max(0, len(history) - 8), len(history)):
        when = np.datetime64(int(history.timestamps[position]), "s").astype(str).replace("T", " ")
        item = recommender.item_ids[int(history.items[position]) - 1]
        shown.add_row(str(position), item, behaviors[int(history.behaviors[position])], when)
    console.print(shown)
    top = Table(title="top-10 next items")
    for name in ("rank", "item", "score"):
        top.add_column(name)
    for rec in recommender.recommend(history, k=10):
        top.add_row(str(rec.rank), rec.item_id, f"{rec.score:.3f}")
    console.print(top)
