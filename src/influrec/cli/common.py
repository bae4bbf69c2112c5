"""Argument helpers shared by the commands that ask a trained run about one user."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from influrec.errors import InputError
from influrec.inference import History, Recommender


def add_who(parser: Any) -> None:
    """--user U or --history FILE.json (one of them)."""
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="a user id of the training data")
    who.add_argument(
        "--history", type=Path, help='JSON list of events: [{"item": ..., "behavior": ...}, ...]'
    )


def load_history(rec: Recommender, args: argparse.Namespace) -> tuple[History, list[str]]:
    """The history named by --user or --history, and the ignored events of an ad-hoc history."""
    if args.history is None:
        return rec.user_history(args.user), []
    try:
        records = json.loads(Path(args.history).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{args.history}: cannot read a JSON list of events ({exc})") from exc
    if not isinstance(records, list):
        raise InputError(f"{args.history}: expected a JSON list of events")
    return rec.history_from_records(records)
