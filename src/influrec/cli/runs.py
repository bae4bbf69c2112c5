"""``influrec runs compare RUN1 RUN2 ...``: runs side by side, from their own files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from influrec.evaluation.run_table import RunsTable, runs_table

SHOWN = ("HR@10", "NDCG@10", "MRR@10")  # the metrics columns, where measured


def register(commands: Any) -> None:
    group = commands.add_parser("runs", help="look at several trained runs")
    verbs = group.add_subparsers(dest="runs_command", required=True, metavar="COMMAND")
    c = verbs.add_parser(
        "compare",
        help="one table of the runs' config differences and metrics (from run.json and "
        "metrics.jsonl)",
    )
    c.add_argument("runs", type=Path, nargs="+", metavar="RUN", help="two or more run folders")
    c.add_argument(
        "--test",
        action="store_true",
        help="also evaluate each run's best model on the test targets (runs must share their "
        "prepared dataset and split)",
    )
    c.add_argument("--json", action="store_true")
    c.set_defaults(handler=run_compare)


def run_compare(args: argparse.Namespace) -> int:
    table = runs_table(args.runs, test=args.test)
    if args.json:
        Console().print_json(json.dumps(table.to_dict()))
        return 0
    print_table(table)
    return 0


def _value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return json.dumps(value) if isinstance(value, list | bool) else str(value)


def print_table(table: RunsTable) -> None:
    """Runs as columns: the differing config keys first, then the summary and metrics."""
    console = Console(soft_wrap=True, highlight=False)
    out = Table(title=f"{len(table.rows)} runs", title_justify="left")
    out.add_column("")
    for row in table.rows:
        out.add_column(escape(row.label), justify="right")
    for key, values in table.differences.items():
        out.add_row(key, *(escape(_value(v)) for v in values))
    if not table.differences:
        out.add_row("(configs)", *("identical" for _ in table.rows))
    out.add_section()
    out.add_row("epochs", *(str(r.epochs) for r in table.rows))
    out.add_row("best epoch", *(str(r.best_epoch) for r in table.rows))
    out.add_row("training time", *(f"{r.train_seconds:.1f} s" for r in table.rows))
    out.add_row("parameters", *(f"{r.parameters:,}" if r.parameters else "" for r in table.rows))
    out.add_row("stopped", *(r.stopped or "" for r in table.rows))
    out.add_section()
    for split in ("valid", "test"):
        for metric in SHOWN:
            values = [getattr(r, split).get(metric) for r in table.rows]
            if any(v is not None for v in values):
                shown = ["" if v is None else f"{v:.4f}" for v in values]
                out.add_row(f"{split} {metric}", *shown)
    console.print(out)
