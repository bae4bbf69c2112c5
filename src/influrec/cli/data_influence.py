"""``influrec data-influence | denoise``: which logged interactions shape the model."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from influrec.cli.common import add_no_progress, at_least, positive_int, progress_of, share
from influrec.cli.data import overwrite_hint
from influrec.data.item_names import ItemNames
from influrec.data.times import readable_time
from influrec.data_influence import DataInfluence, spearman
from influrec.data_influence.cleaning import SCORES, denoise
from influrec.errors import InputError


def register(commands: Any) -> None:
    d = commands.add_parser(
        "data-influence",
        help="training interactions that most support and oppose a recommendation (TracIn)",
    )
    d.add_argument("run", type=Path)
    d.add_argument("--user", required=True, help="a user id of the training data")
    d.add_argument("--item", required=True, help="the recommended item id to explain")
    d.add_argument("--top", type=positive_int, default=20, help="interactions listed on each side")
    _add_checkpoints(d)
    d.add_argument(
        "--influence-function",
        action="store_true",
        help="also score with a damped influence function and report the agreement",
    )
    d.add_argument("--damping", type=float, default=0.01, help="influence function damping")
    d.add_argument("--json", action="store_true")
    add_no_progress(d)
    d.set_defaults(handler=run_data_influence)
    n = commands.add_parser(
        "denoise", help="write the run's dataset without its most harmful training interactions"
    )
    n.add_argument("run", type=Path)
    n.add_argument("--fraction", type=share, required=True, help="share removed, e.g. 0.02")
    n.add_argument("--out", type=Path, required=True, help="new dataset folder")
    n.add_argument(
        "--by",
        choices=SCORES,
        default="context",
        help="context: highest loss plus harm done as context to the next interaction (the "
        "best noise signal measured); loss: highest loss over the checkpoints; "
        "self: highest TracIn self-influence; "
        "harm: most negative TracIn influence on the validation loss",
    )
    _add_checkpoints(n)
    n.add_argument(
        "--overwrite",
        action="store_true",
        help="replace --out if it is a prepared dataset that is not part of RUN",
    )
    n.add_argument("--json", action="store_true")
    add_no_progress(n)
    n.set_defaults(handler=run_denoise)


def _add_checkpoints(parser: Any) -> None:
    parser.add_argument(
        "--checkpoints",
        type=at_least(0),
        default=0,
        help="use at most N saved checkpoints (0: all)",
    )


def run_data_influence(args: argparse.Namespace) -> int:
    analysis = DataInfluence(args.run, checkpoints=args.checkpoints)
    query = (analysis.user_index(args.user), analysis.item_index(args.item))
    scores = analysis.tracin(queries=[query], validation=False, progress=progress_of(args))
    tracin = scores.queries[:, 0]
    order = np.argsort(-tracin, kind="stable")
    top = min(args.top, len(order))
    sides = {"supporting": order[:top], "opposing": order[::-1][:top]}
    names = ItemNames.from_items(analysis.dataset.items)
    result: dict[str, Any] = {
        "user": args.user,
        "item": args.item,
        **_titled(names, args.item),
        "method": "tracin",
        "checkpoints": [c["epoch"] for c in scores.checkpoints],
        "training_interactions": len(scores.events),
        "seconds": round(scores.seconds, 2),
    }
    if_scores = None
    if args.influence_function:
        dots, infos = analysis.influence_function(
            [query], damping=args.damping, progress=progress_of(args)
        )
        if_scores = dots[:, 0]
        result["influence_function"] = {
            "damping": args.damping,
            "solve": vars(infos[0]),
            "spearman_with_tracin": spearman(tracin, if_scores),
        }
    for side, rows in sides.items():
        described = analysis.describe(scores.events[rows])
        for entry, row in zip(described, rows, strict=True):
            entry.update(_titled(names, entry["item"]))
            entry["tracin"] = float(tracin[row])
            if if_scores is not None:
                entry["influence_function"] = float(if_scores[row])
        result[side] = described
    if args.json:
        Console().print_json(json.dumps(result))
        return 0
    _print_data_influence(result, names, sides=list(sides), seconds=scores.seconds)
    return 0


def _titled(names: ItemNames, item: str) -> dict[str, str]:
    """``{"title": ...}`` for an item the item table names, else nothing."""
    title = names.title(item)
    return {} if title is None else {"title": title}


def _print_data_influence(
    result: dict[str, Any], names: ItemNames, *, sides: list[str], seconds: float
) -> None:
    console = Console()
    with_if = "influence_function" in result
    item = escape(names.label(result["item"]))
    console.print(
        f"training interactions behind recommending {item} to user {result['user']} "
        f"(TracIn over epochs {result['checkpoints']}, "
        f"{result['training_interactions']:,} interactions, {seconds:.1f} s)"
    )
    for side in sides:
        table = Table(title=side, title_justify="left")
        for column in ("user", "position", "item", "behavior", "time (UTC)", "tracin"):
            table.add_column(  # on a narrow terminal, only item names wrap
                column,
                justify="right" if column in ("position", "tracin") else "left",
                no_wrap=column != "item",
            )
        if with_if:
            table.add_column("influence fn", justify="right")
        for entry in result[side]:
            cells = [str(entry["user"]), str(entry["position"])]
            cells += [escape(names.label(entry["item"])), str(entry["behavior"])]
            cells += [readable_time(entry["timestamp"]), f"{entry['tracin']:+.3g}"]
            if with_if:
                cells.append(f"{entry['influence_function']:+.3g}")
            table.add_row(*cells)
        console.print(table)
    if with_if:
        agreement = result["influence_function"]["spearman_with_tracin"]
        console.print(f"TracIn vs influence function: Spearman {agreement:.3f}")


def run_denoise(args: argparse.Namespace) -> int:
    if not 0 < args.fraction < 1:
        raise InputError(f"--fraction must be in (0, 1), got {args.fraction}")
    with overwrite_hint():
        report = denoise(
            args.run,
            args.out,
            fraction=args.fraction,
            by=args.by,
            checkpoints=args.checkpoints,
            overwrite=args.overwrite,
            progress=progress_of(args),
        )
    if args.json:
        Console().print_json(json.dumps(report))
        return 0
    console = Console()
    console.print(
        f"removed {report['removed_events']:,} of {report['training_interactions']:,} training "
        f"interactions (by {args.by}) -> {args.out} ({report['seconds']:.1f} s); "
        f"by behaviour: {report['removed_by_behavior']}"
    )
    console.print(
        f"the list is in {args.out / 'removed.parquet'}; train on it with "
        f"`influrec train {args.out} --out RUN_DIR`"
    )
    return 0
