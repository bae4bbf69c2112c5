"""``influrec update RUN --events DATA_OR_STORE --out RUN2``: a run learns from new events."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from influrec.cli.common import add_no_progress, number_at_least, positive_int, progress_of
from influrec.cli.data_export import when


def replay_share(text: str) -> float:
    """argparse type for --replay: a share in [0, 1)."""
    try:
        number = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number like 0.5, got {text!r}") from None
    if not 0 <= number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 0 and below 1, got {text}")
    return number


def register(commands: Any) -> None:
    from influrec.training.update import DEFAULT_LR_SCALE, DEFAULT_REPLAY

    u = commands.add_parser(
        "update",
        help="train a run further on new events (a prepared dataset or the service's store)",
        description="Start from RUN's weights and optimizer state, grow its vocabularies with "
        "the new users and items, train on the new events plus a replayed sample of older "
        "ones, and write a new run folder whose run.json records the lineage.",
    )
    u.add_argument("run", type=Path, help="the run folder to start from")
    u.add_argument(
        "--events",
        required=True,
        help="new events: a prepared dataset folder, an event store file or a postgresql:// URL",
    )
    u.add_argument("--out", type=Path, required=True, help="new run folder (missing or empty)")
    u.add_argument("--since", type=when, default=None, help="store: only events with a later time")
    u.add_argument(
        "--epochs", type=positive_int, default=3, help="passes over the samples (default 3)"
    )
    u.add_argument(
        "--minutes", type=number_at_least(0.01), default=None, help="training time budget"
    )
    u.add_argument(
        "--replay",
        type=replay_share,
        default=DEFAULT_REPLAY,
        help=f"share of samples replaying older events (default {DEFAULT_REPLAY})",
    )
    u.add_argument(
        "--lr-scale",
        type=number_at_least(1e-6),
        default=DEFAULT_LR_SCALE,
        help=f"peak learning rate as a share of the run's (default {DEFAULT_LR_SCALE})",
    )
    add_no_progress(u)
    u.set_defaults(handler=run_update)


def run_update(args: argparse.Namespace) -> int:
    from influrec.data.dataset import EventDataset
    from influrec.data.store_export import store_events, without_erased
    from influrec.errors import InputError
    from influrec.run import read_run_info
    from influrec.serving.store import is_postgres, open_store
    from influrec.training.update import UpdateSettings, update_run

    read_run_info(args.run)  # RUN not a run: said before the events are read
    events: Any
    erased: set[str] = set()
    if Path(args.events).is_dir():
        events = EventDataset.load(Path(args.events))
    elif is_postgres(args.events) or Path(args.events).is_file():
        store = open_store(args.events)
        try:
            events, erased = without_erased(store, store_events(store, since=args.since))
            run_users = EventDataset.load(args.run / "data").users.column("user_id").to_pylist()
            erased |= store.erased_among([str(u) for u in run_users])
        finally:
            store.close()
    else:
        raise InputError(
            f"--events {args.events}: no such dataset folder or event store file; give a "
            "prepared dataset (influrec data export-store) or the service's --store"
        )
    settings = UpdateSettings(
        epochs=args.epochs, max_minutes=args.minutes, replay=args.replay, lr_scale=args.lr_scale
    )
    result = update_run(
        args.run,
        events,
        args.out,
        settings=settings,
        source=str(args.events),
        erased_users=erased,
        progress=progress_of(args),
    )
    step = result.step
    console = Console()
    console.print(
        f"updated {args.run} -> {args.out}: {step['events_added']:,} new events "
        f"({step['new_users']:,} new users, {step['new_items']:,} new items), "
        f"{step['samples']['new']:,} new + {step['samples']['replayed']:,} replayed samples, "
        f"{result.training.seconds:.1f} s",
        soft_wrap=True,
    )
    return 0
