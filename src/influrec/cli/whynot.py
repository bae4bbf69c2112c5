"""``influrec whynot RUN --user U --item X``: why an item is not (or is) recommended."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from influrec.cli.common import add_k, add_who, load_history, positive_int
from influrec.data.times import readable_time


def register(commands: Any) -> None:
    w = commands.add_parser(
        "whynot",
        help="why an item is not recommended: the events holding it back, and what would lift it",
    )
    w.add_argument("run", type=Path)
    add_who(w)
    w.add_argument("--item", required=True, help="the item id asked about")
    add_k(w)
    w.add_argument(
        "--candidates", type=positive_int, default=100, help="next actions tried (best items)"
    )
    w.add_argument("--json", action="store_true")
    w.set_defaults(handler=run_whynot)


def run_whynot(args: argparse.Namespace) -> int:
    from influrec.inference import Recommender
    from influrec.influence.whynot import why_not

    rec = Recommender.load(args.run)
    history, unknown = load_history(rec, args)
    result = why_not(rec, history, args.item, k=args.k, candidates=args.candidates)
    if args.json:
        Console().print_json(json.dumps({**result.to_dict(), "unknown": unknown}))
        return 0
    console = Console(soft_wrap=True)
    console.print(escape(result.sentence))
    for side, events in (
        ("holding it back", result.holding_back),
        ("lifting it", result.supporting),
    ):
        if not events:
            continue
        table = Table(title=f"events {side} ({escape(result.unit)})", title_justify="left")
        for column in ("position", "item", "behavior", "time (UTC)", "effect"):
            table.add_column(
                column, justify="right" if column in ("position", "effect") else "left"
            )
        for e in events:
            table.add_row(
                str(e.position),
                escape(rec.item_label(e.item)),
                e.behavior,
                readable_time(e.timestamp),
                f"{e.effect:+.4f}",
            )
        console.print(table)
    return 0
