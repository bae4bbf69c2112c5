"""``influrec data export-store STORE --out DATA``: the service's logged events as a dataset."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console


def when(text: str) -> int:
    """argparse type for --since: epoch seconds, or an ISO time such as 2026-01-31T12:00Z."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected epoch seconds (1767225600) or an ISO time (2026-01-01T00:00Z), got {text!r}"
        ) from None
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def register(sub: Any) -> None:
    export = sub.add_parser(
        "export-store",
        help="write the service's stored events as a prepared dataset (for update or train)",
        description="Read the events the service stored (an SQLite file or a postgresql:// URL) "
        "and write them as a prepared dataset; with --base, appended to a prepared dataset "
        "whose indices are kept. Erased users are left out.",
    )
    export.add_argument("store", help="the service's event store: SQLite file or postgresql:// URL")
    export.add_argument("--out", type=Path, required=True, help="output dataset folder")
    export.add_argument(
        "--since", type=when, default=None, help="only events with a later time (epoch s or ISO)"
    )
    export.add_argument(
        "--base", type=Path, default=None, help="a prepared dataset to append the events to"
    )
    export.add_argument(
        "--overwrite", action="store_true", help="replace --out if it is a prepared dataset"
    )
    export.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace) -> int:
    from influrec.cli.data import overwrite_hint, print_stats
    from influrec.data.dataset import EventDataset, check_output_dir
    from influrec.data.store_export import export_store
    from influrec.errors import InputError
    from influrec.serving.store import is_postgres, open_store

    inputs = [p for p in (args.base,) if p is not None]
    if not is_postgres(args.store):
        inputs.append(Path(args.store))
        if not Path(args.store).is_file():
            raise InputError(f"{args.store}: no such event store file (the service's --store)")
    with overwrite_hint():
        check_output_dir(args.out, overwrite=args.overwrite, inputs=inputs)
    base = EventDataset.load(args.base) if args.base is not None else None
    store = open_store(args.store)
    try:
        export = export_store(store, since=args.since, base=base)
    finally:
        store.close()
    with overwrite_hint():
        export.dataset.save(args.out, overwrite=args.overwrite, inputs=inputs)
    print_stats(export.dataset.stats, title=f"exported {args.out}")
    Console().print(
        f"{export.events_read:,} stored events read, {export.events_added:,} added"
        + (f" to {args.base}" if args.base else "")
        + f", {export.erased_users:,} erased users left out"
    )
    return 0
