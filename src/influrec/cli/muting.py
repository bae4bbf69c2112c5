"""``--mute-event/--mute-behavior/--mute-window``: mutes for one offline answer (``recommend``,
``explain``), the same three kinds the service stores (:mod:`influrec.mutes`)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from influrec.data.history import History
from influrec.errors import InputError
from influrec.inference import Recommender
from influrec.mutes import Mute, apply_mutes


def add_mutes(parser: Any) -> None:
    group = parser.add_argument_group("mutes (leave events out of the history first)")
    group.add_argument(
        "--mute-event",
        action="append",
        default=[],
        metavar="POS|ITEM:BEHAVIOR:TIME",
        help="one past event: its position in the history (as `explain` lists it; 0 = oldest), "
        "or its item, behaviour and time (epoch seconds); repeatable",
    )
    group.add_argument(
        "--mute-behavior",
        action="append",
        default=[],
        metavar="BEHAVIOR",
        help="every event of this behaviour; repeatable",
    )
    group.add_argument(
        "--mute-window",
        action="append",
        default=[],
        metavar="START,END",
        help="every event from START to END, both included: epoch seconds or UTC ISO dates "
        "(2024-01-31 or 2024-01-31T18:00); repeatable",
    )


def any_mutes(args: argparse.Namespace) -> bool:
    return bool(args.mute_event or args.mute_behavior or args.mute_window)


def refuse_mutes_for_all_users(args: argparse.Namespace) -> None:
    if any_mutes(args):
        raise InputError("--mute-* apply to one user's history (--user or --history), not to "
                         "--all-users")  # fmt: skip


def muted_history(
    rec: Recommender, history: History, args: argparse.Namespace
) -> tuple[History, int]:
    """``history`` without the events the --mute-* options name, and how many were left out.
    Raises InputError naming the option and value that cannot be read."""
    if not any_mutes(args):
        return history, 0
    mutes = [_event_mute(rec, history, text) for text in args.mute_event]
    mutes += [Mute.of_behavior(name) for name in args.mute_behavior]
    mutes += [_window_mute(text) for text in args.mute_window]
    return apply_mutes(history, mutes, item_index=rec.item_index, behavior_index=rec.behavior_index)


def _event_mute(rec: Recommender, history: History, text: str) -> Mute:
    if text.strip().isdigit():
        position = int(text)
        if position >= len(history):
            raise InputError(
                f"--mute-event {text}: the history has {len(history)} events (positions 0 to "
                f"{len(history) - 1})"
            )
        behaviors = {index: name for name, index in rec.behavior_index.items()}
        return Mute.event(
            rec.item_ids[int(history.items[position]) - 1],
            behaviors[int(history.behaviors[position])],
            int(history.timestamps[position]),
        )
    item, behavior, time = [*text.rsplit(":", 2), "", ""][:3]
    if not (item and behavior and time.strip().isdigit()):
        raise InputError(
            f"--mute-event {text!r}: expected a position (e.g. 3) or ITEM:BEHAVIOR:TIME with "
            "TIME in epoch seconds (e.g. i42:view:1700000000)"
        )
    return Mute.event(item, behavior, int(time))


def _window_mute(text: str) -> Mute:
    start, sep, end = text.partition(",")
    if not sep:
        raise InputError(f"--mute-window {text!r}: expected START,END (e.g. 2024-01-01,2024-02-01)")
    try:
        return Mute.window(_seconds(start), _seconds(end))
    except InputError as exc:
        raise InputError(f"--mute-window {text!r}: {exc}") from None


def _seconds(text: str) -> int:
    """Epoch seconds, or a UTC ISO date / date-time as epoch seconds."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(
            f"{text!r} is neither epoch seconds nor an ISO date (2024-01-31, 2024-01-31T18:00)"
        ) from None
    return int(moment.replace(tzinfo=moment.tzinfo or UTC).timestamp())
