"""``influrec data ...``: prepare real logs, generate synthetic ones, summarise, download."""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from influrec.cli import data_export, data_text
from influrec.cli.common import at_least, number_at_least, positive_int
from influrec.data.dataset import EventDataset, check_output_dir, prepare
from influrec.data.loaders import READERS, ColumnMap, ReadOptions
from influrec.data.parsing import TIME_UNITS
from influrec.data.preprocess import PrepareConfig
from influrec.data.synthesize import synthesize_dataset
from influrec.data.synthetic import SynthConfig
from influrec.errors import BadRowError, InputError
from influrec.folders import FolderExistsError

# The library settings of ``prepare`` (ReadOptions, ColumnMap, PrepareConfig) -> the flags
# that give them; an InputError about one of them ends with its flag.
PREPARE_FLAGS = {
    "column_map": "--map",
    "time_unit": "--time-unit",
    "min_user_events": "--min-user-events",
    "min_item_events": "--min-item-events",
    "fill_value": "--fill-value",
    "clip_quantile": "--clip-quantile",
}


def register(commands: Any) -> None:
    group = commands.add_parser("data", help="prepare, generate, summarise and download event logs")
    sub = group.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    _register_prepare(sub)
    synth = sub.add_parser(
        "synth", help="generate synthetic e-commerce logs with planted influence"
    )
    synth.add_argument("--out", type=Path, required=True, help="output dataset folder")
    # the smallest shop the generator can plant its links and taste clusters in
    fewest_items = max(SynthConfig.n_successors + 1, SynthConfig.n_clusters)
    synth.add_argument("--users", type=positive_int, default=SynthConfig.n_users)
    synth.add_argument("--items", type=at_least(fewest_items), default=SynthConfig.n_items)
    synth.add_argument(
        "--mean-events",
        type=number_at_least(SynthConfig.min_events),
        default=SynthConfig.mean_events,
        help=f"mean events per user (at least {SynthConfig.min_events}, the minimum)",
    )
    synth.add_argument("--seed", type=at_least(0), default=SynthConfig.seed)
    synth.add_argument(
        "--overwrite", action="store_true", help="replace --out if it is a prepared dataset"
    )
    synth.set_defaults(handler=run_synth)
    stats = sub.add_parser("stats", help="summarise a prepared dataset folder")
    stats.add_argument("dataset", type=Path)
    stats.add_argument("--json", action="store_true", help="print stats.json as is")
    stats.set_defaults(handler=run_stats)
    download = sub.add_parser("download", help="download a public dataset (needs the internet)")
    download.add_argument("name", help="a known dataset name (e.g. ml-1m) or a URL")
    download.add_argument("--cache", type=Path, default=None, help="cache folder")
    download.add_argument("--sha256", default=None, help="expected checksum of the download")
    download.set_defaults(handler=run_download)
    data_text.register(sub)
    data_export.register(sub)


def _register_prepare(sub: Any) -> None:
    p = sub.add_parser(
        "prepare",
        help="clean, dedupe, filter and time-order a behaviour log",
        description="Read INPUT, clean it and write DIR/events.parquet, the vocabularies and "
        "DIR/stats.json. Output appears only when everything succeeded.",
    )
    p.add_argument("input", type=Path, help="the log file (.gz is read transparently)")
    p.add_argument("--format", required=True, choices=list(READERS), dest="fmt")
    p.add_argument("--out", type=Path, required=True, help="output dataset folder")
    p.add_argument(
        "--map",
        default=None,
        help="csv/parquet/jsonl: user=COL,item=COL[,behavior=COL,time=COL,value=COL]",
    )
    p.add_argument(
        "--time-unit",
        default="auto",
        choices=TIME_UNITS,
        help="csv/parquet/jsonl time column (default: guess)",
    )
    p.add_argument("--delimiter", default=",", help="csv field separator (default ',')")
    p.add_argument(
        "--items-file", type=Path, default=None, help="item metadata file with an item_id column"
    )
    p.add_argument("--min-user-events", type=int, default=0, help="k-core: minimum events per user")
    p.add_argument("--min-item-events", type=int, default=0, help="k-core: minimum events per item")
    p.add_argument(
        "--implicit-threshold", type=float, default=None, help="drop rows whose value is below this"
    )
    p.add_argument(
        "--fill-value", default="none", help="missing values: none, zero, mean, median or a number"
    )
    p.add_argument(
        "--clip-quantile",
        type=float,
        default=None,
        help="clip values to [q, 1-q] quantiles per behaviour",
    )
    p.add_argument("--no-dedupe", action="store_true", help="keep exact duplicate rows")
    p.add_argument(
        "--on-bad-rows",
        choices=["error", "skip"],
        default="error",
        help="stop at a bad row (default) or skip and count it",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace --out if it is a prepared dataset that does not hold INPUT",
    )
    p.set_defaults(handler=run_prepare, setting_flags=PREPARE_FLAGS)


@contextlib.contextmanager
def overwrite_hint() -> Iterator[None]:
    """Adds to the library's :class:`FolderExistsError` whether --overwrite would help."""
    try:
        yield
    except FolderExistsError as exc:
        hint = (
            "pass --overwrite to replace it"
            if exc.replaceable
            else f"choose another --out (--overwrite replaces only an influrec {exc.kind.name} "
            "that holds no input of the command)"
        )
        raise InputError(f"{exc}; {hint}") from None


def run_prepare(args: argparse.Namespace) -> int:
    inputs = [p for p in (args.input, args.items_file) if p is not None]
    with overwrite_hint():
        check_output_dir(args.out, overwrite=args.overwrite, inputs=inputs)
    options = ReadOptions(
        on_bad_rows=args.on_bad_rows,
        column_map=ColumnMap.parse(args.map) if args.map else None,
        time_unit=args.time_unit,
        delimiter=args.delimiter,
        items_file=args.items_file,
    )
    config = PrepareConfig(
        min_user_events=args.min_user_events,
        min_item_events=args.min_item_events,
        implicit_threshold=args.implicit_threshold,
        fill_value=args.fill_value,
        clip_quantile=args.clip_quantile,
        dedupe=not args.no_dedupe,
    )
    try:
        dataset = prepare(args.input, args.fmt, read_options=options, config=config)
    except BadRowError as exc:
        hint = "Fix the row, or pass --on-bad-rows skip to drop and count such rows."
        raise InputError(f"{exc}. {hint}") from None
    if dataset.stats["events"] == 0:
        raise InputError(_nothing_left(args.input, dataset.stats))
    with overwrite_hint():
        dataset.save(args.out, overwrite=args.overwrite, inputs=inputs)
    print_stats(dataset.stats, title=f"prepared {args.out}")
    return 0


def _nothing_left(path: Path, stats: dict[str, Any]) -> str:
    """Why no event is left: how many rows were read and dropped, per reason."""
    dropped = ", ".join(f"{n:,} {reason}" for reason, n in (stats.get("dropped") or {}).items())
    example = next(iter(stats.get("bad_row_examples") or []), None)
    first = (
        f"; first bad row: line {example['line']} {example['reason']} ({example['text']!r})"
        if example
        else ""
    )
    return (
        f"{path}: no events left after reading and filtering; {stats.get('rows_read', 0):,} "
        f"rows read, dropped {dropped or 'none (the file has no data rows)'}{first}; "
        "nothing written"
    )


def run_synth(args: argparse.Namespace) -> int:
    with overwrite_hint():
        check_output_dir(args.out, overwrite=args.overwrite)
    config = SynthConfig(
        n_users=args.users, n_items=args.items, mean_events=args.mean_events, seed=args.seed
    )
    dataset = synthesize_dataset(config)
    with overwrite_hint():
        dataset.save(args.out, overwrite=args.overwrite)
    print_stats(dataset.stats, title=f"synthetic data in {args.out}")
    return 0


def run_stats(args: argparse.Namespace) -> int:
    dataset = EventDataset.load(args.dataset)
    if args.json:
        Console().print_json(json.dumps(dataset.stats))
    else:
        print_stats(dataset.stats, title=str(args.dataset))
    return 0


def run_download(args: argparse.Namespace) -> int:
    from influrec.data.download import default_cache_dir, fetch_dataset

    path = fetch_dataset(args.name, args.cache or default_cache_dir(), sha256=args.sha256)
    Console().print(str(path))
    return 0


def print_stats(stats: dict[str, Any], *, title: str) -> None:
    """Readable summary of a stats.json."""
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("events", f"{stats['events']:,}")
    table.add_row("users", f"{stats['users']:,}")
    table.add_row("items", f"{stats['items']:,}")
    table.add_row("behaviors", ", ".join(f"{b} {n:,}" for b, n in stats["behaviors"].items()))
    dropped = stats.get("dropped") or {}
    table.add_row("dropped", ", ".join(f"{r} {n:,}" for r, n in dropped.items()) or "none")
    span = stats["time_range"]
    when = (
        f"{span.get('min_iso')} .. {span.get('max_iso')}"
        if "min_iso" in span
        else "file order (no timestamps)"
    )
    table.add_row("time", when)
    per_user = stats.get("events_per_user", {})
    table.add_row(
        "events/user",
        f"min {per_user.get('min')}, median {per_user.get('median')}, max {per_user.get('max')}",
    )
    Console().print(table)
