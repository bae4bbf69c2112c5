"""``influrec demo``: the main job end to end on the built-in synthetic data.

Generates a shop's behaviour logs with planted influence, runs the pipeline
(:func:`influrec.pipeline.run_pipeline`: train, evaluate against popularity with full ranking,
explain), then shows one user's top-10 with the past behaviours that drive each item, in plain
words, and whether leave-one-out finds the causes the data planted; last it writes the
whole report (:func:`influrec.report.write_report`) into OUT/report.html.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from influrec.cli.common import positive_int
from influrec.config import load_config
from influrec.data.synthesize import synthesize_dataset
from influrec.data.synthetic import SynthConfig
from influrec.evaluation.runs import RunEvaluation
from influrec.folders import check_output_dir
from influrec.inference import Recommender
from influrec.influence.measurement import MEASURES
from influrec.influence.planted import (
    PlantedCase,
    PlantedRecovery,
    first_user_with_planted_cause,
    planted_cause_of_user,
    planted_cause_rate,
)
from influrec.influence.sentences import because, event_words
from influrec.pipeline import PIPELINE_FOLDER, REPORT_FILE, PipelineResult, run_pipeline
from influrec.report import write_report
from influrec.run import RUN_FOLDER

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
PLANTED_USERS = 100  # users whose planted causes are checked (one caused event each)


def register(commands: Any) -> None:
    demo = commands.add_parser("demo", help="synthetic data -> train -> evaluate -> explain")
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


def run_demo(args: argparse.Namespace) -> int:
    # before any work: --out is new, empty or an earlier demo's (replaced), nothing else
    check_output_dir(args.out, PIPELINE_FOLDER, overwrite=True)
    check_output_dir(args.out / "run", RUN_FOLDER, overwrite=True)
    config = load_config(None, [*DEMO_SETTINGS, f"train.seed={args.seed}", *args.set])
    console = Console(soft_wrap=True, highlight=False)
    dataset = synthesize_dataset(SynthConfig(n_users=args.users, seed=args.seed))
    stats = dataset.stats
    behaviors = ", ".join(f"{b} {n:,}" for b, n in stats["behaviors"].items())
    console.print(
        f"[bold]1. data[/bold]  {stats['events']:,} synthetic events of {stats['users']:,} "
        f"users on {stats['items']:,} items ({behaviors}); {stats['caused_events']:,} events "
        f"were caused by an earlier one (ground truth in {args.out / 'data'})"
    )
    user = first_user_with_planted_cause(dataset, max_len=config.model.max_len)
    progress = sys.stderr.isatty()
    result = run_pipeline(
        dataset, args.out, config=config, user_id=user, overwrite=True, progress=progress
    )
    training = result.training
    console.print(
        f"[bold]2. train[/bold] {training.epochs_run} epochs in {training.seconds:.0f} s, best "
        f"epoch {training.best_epoch} (validation NDCG@10 {training.best_metric:.4f}); "
        f"run folder {result.run_dir}"
    )
    _print_comparison(console, result.evaluation)
    _print_history(console, result.recommender, user_id=result.user_id)
    _print_reasons(console, result)
    rec = result.recommender
    _print_planted(
        console,
        planted_cause_of_user(rec, result.user_id),
        planted_cause_rate(rec, users=PLANTED_USERS, seed=args.seed),
    )
    started = time.perf_counter()
    page = write_report(result.run_dir, args.out / REPORT_FILE, seed=args.seed)
    console.print(
        f"[bold]6. report[/bold] everything above and more, in one page: {escape(str(page))} "
        f"(written in {time.perf_counter() - started:.0f} s; open it in a browser)"
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


def _print_history(console: Console, recommender: Recommender, *, user_id: str) -> None:
    history = recommender.user_history(user_id)
    console.print(
        f"[bold]4. recommend and explain[/bold] user {user_id} ({len(history)} events; "
        f"the model sees the last {min(len(history), recommender.model.config.max_len)})"
    )
    shown = Table(title="history (latest last)")
    for name in ("#", "item", "behavior", "time (UTC)"):
        shown.add_column(name)
    behaviors = recommender.dataset.behaviors
    for position in range(max(0, len(history) - 8), len(history)):
        when = np.datetime64(int(history.timestamps[position]), "s").astype(str).replace("T", " ")
        item = recommender.item_ids[int(history.items[position]) - 1]
        shown.add_row(str(position), item, behaviors[int(history.behaviors[position])], when)
    console.print(shown)


def _print_reasons(console: Console, result: PipelineResult) -> None:
    explanation = result.explanation
    console.print(
        f"top-{explanation.k} next items and why (exact leave-one-out: each past event "
        f"deleted in turn; effects in {MEASURES[explanation.measure].unit}):"
    )
    for item in explanation.recommendations:
        console.print(f"{item.rank:>3}. {escape(because(item.item, item.events))}")


def _print_planted(console: Console, case: PlantedCase | None, overall: PlantedRecovery) -> None:
    console.print(
        "[bold]5. planted causes[/bold] the synthetic data records which earlier event caused "
        "each event; does leave-one-out find it?"
    )
    if case is None:
        console.print("This user has no caused event whose cause the model sees.")
    else:
        found = (
            f"{event_words(case.found)} (event {case.found.position}, "
            f"{case.effect:+.2f} log-probability points)"
        )
        verdict = "recovered" if case.recovered else "NOT recovered"
        caused = event_words(case.caused)
        console.print(
            f"{caused[0].upper()}{caused[1:]} (event {case.caused.position}) was caused "
            f"by {event_words(case.cause)} (event {case.cause.position}). Explaining "
            f"p({case.caused.item}) from the {case.events_seen} events the model saw before it, "
            f"leave-one-out ranks first {found}: {verdict}."
        )
    console.print(
        f"Across {overall.users:,} users (each one's last caused event): leave-one-out ranks "
        f"the planted cause first for {overall.recovered:.0%} of them (a pick at random among "
        f"the events the model saw: {overall.chance:.0%})."
    )
