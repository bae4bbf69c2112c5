"""``influrec report RUN --out report.html``: one self-contained HTML page about a run."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from influrec.cli.common import at_least, positive_int
from influrec.report import write_report


def register(commands: Any) -> None:
    r = commands.add_parser(
        "report",
        help="one self-contained HTML page: data, training, accuracy, influence, faithfulness",
    )
    r.add_argument("run", type=Path)
    who = r.add_mutually_exclusive_group()
    who.add_argument(
        "--users", type=positive_int, default=5, help="user cards, users drawn at random (seeded)"
    )
    who.add_argument(
        "--user",
        action="append",
        default=[],
        metavar="ID",
        help="a user to show a card for (repeat for several); instead of --users",
    )
    r.add_argument("--out", type=Path, required=True, help="the HTML file to write")
    r.add_argument("--seed", type=int, default=0, help="seed of every random draw of users")
    r.add_argument(
        "--share-users",
        type=positive_int,
        default=20,
        help="users whose top items the behaviour-type shares are measured on",
    )
    r.add_argument(
        "--faithfulness-users",
        type=positive_int,
        default=10,
        help="users the faithfulness curves are averaged over",
    )
    r.add_argument(
        "--no-training-data",
        action="store_true",
        help="leave out the most harmful training interactions (TracIn over the checkpoints)",
    )
    r.add_argument(
        "--checkpoints",
        type=at_least(0),
        default=1,
        help="TracIn reads at most N saved checkpoints (0: all; default 1, the last)",
    )
    r.set_defaults(
        handler=run_report, setting_flags={"out": "--out", "user": "--user", "users": "--users"}
    )


def run_report(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    path = write_report(
        args.run,
        args.out,
        users=args.users,
        user_ids=args.user,
        seed=args.seed,
        share_users=args.share_users,
        faithfulness_users=args.faithfulness_users,
        training_data=not args.no_training_data,
        checkpoints=args.checkpoints,
    )
    Console(soft_wrap=True, highlight=False).print(
        f"report written to {escape(str(path))} ({time.perf_counter() - started:.1f} s)"
    )
    return 0
