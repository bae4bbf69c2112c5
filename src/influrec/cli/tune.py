"""``influrec tune DATA --space SPACE.toml --trials N --minutes M --out STUDY``: a search."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from influrec.cli.common import number_at_least, positive_int
from influrec.config import load_config
from influrec.data.dataset import EventDataset
from influrec.tuning.space import SearchSpace
from influrec.tuning.study import PRUNERS, SCORE, STUDY_FILE, TuneSettings, import_optuna, tune
from influrec.tuning.summary import StudySummary, summarize


def register(commands: Any) -> None:
    t = commands.add_parser(
        "tune",
        help="search configurations with Optuna (TPE), each trial a training run scored on "
        f"validation {SCORE}",
    )
    t.add_argument("dataset", type=Path, help="prepared dataset folder")
    t.add_argument("--space", type=Path, required=True, help="TOML file with a [space] table")
    t.add_argument("--trials", type=positive_int, default=20, help="trials this process runs")
    t.add_argument(
        "--minutes",
        type=number_at_least(0),
        default=0.0,
        help="stop starting trials after this many minutes, and cut the running one short "
        "(0: no limit)",
    )
    t.add_argument("--out", type=Path, required=True, help="study folder (created if missing)")
    t.add_argument(
        "--storage",
        default="",
        help=f"Optuna storage URL shared by several processes (default: sqlite in "
        f"OUT/{STUDY_FILE}), e.g. postgresql://user@host/db",
    )
    t.add_argument("--study-name", default="influrec", help="the study's name in the storage")
    t.add_argument("--pruner", choices=PRUNERS, default="median", help="per-epoch pruning")
    t.add_argument("--seed", type=int, default=None, help="the sampler's seed")
    t.add_argument("--config", type=Path, default=None, help="base config (TOML)")
    t.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="base config override"
    )
    t.set_defaults(handler=run_tune)


def run_tune(args: argparse.Namespace) -> int:
    import_optuna()  # a missing package fails before any work
    base = load_config(args.config, args.set)
    space = SearchSpace.load(args.space, base)
    dataset = EventDataset.load(args.dataset)
    if not args.verbose:
        logging.getLogger("optuna").setLevel(logging.WARNING)
    settings = TuneSettings(
        trials=args.trials,
        minutes=args.minutes,
        storage=args.storage,
        study_name=args.study_name,
        pruner=args.pruner,
        seed=args.seed,
    )
    study = tune(dataset, space, base, out=args.out, settings=settings)
    print_summary(summarize(study, args.out))
    return 0


def print_summary(summary: StudySummary) -> None:
    console = Console(soft_wrap=True, highlight=False)
    keys = sorted({key for row in summary.rows for key in row.params})
    table = Table(title=f"trials (value: validation {SCORE})", title_justify="left")
    for column in ("trial", "state", "value", "epochs", *keys):
        table.add_column(column, justify="right" if column in ("trial", "value") else "left")
    for row in summary.rows:
        value = "" if row.value is None else f"{row.value:.4f}"
        params = [_shown(row.params.get(key, "")) for key in keys]
        table.add_row(str(row.number), row.state, value, str(row.epochs or ""), *params)
    console.print(table)
    console.print(f"{len(summary.rows)} trials, {summary.pruned} pruned")
    if summary.best is not None and summary.best.value is not None:
        console.print(
            f"best: trial {summary.best.number}, validation {SCORE} {summary.best.value:.4f}"
        )
    for what, path in summary.files.items():
        console.print(f"{what}: {escape(str(path))}")
    for note in summary.notes:
        console.print(f"note: {escape(note)}")


def _shown(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
