"""``recommend --all-users`` and ``explain --all-users``: answers for every user, as Parquet."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from influrec.errors import InputError


def add_all_users(who: Any, parser: Any) -> None:
    """--all-users in the command's who-group, with --out, --shard and --chunk-users."""
    who.add_argument(
        "--all-users",
        action="store_true",
        help="every user of the run's data, into --out (Parquet, one row per answer); "
        "resumable, and sharded under torchrun (RANK, WORLD_SIZE) or with --shard",
    )
    parser.add_argument("--out", type=Path, default=None, help="with --all-users: a .parquet file")
    parser.add_argument(
        "--shard", type=shard_spec, default=None, help="with --all-users: I/N, this process's share"
    )
    parser.add_argument(
        "--chunk-users", type=int, default=200, help="with --all-users: users per saved chunk"
    )


def shard_spec(text: str) -> tuple[int, int]:
    """argparse type for --shard: I/N with 0 <= I < N."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/N such as 0/4, got {text!r}") from None
    if not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"expected 0 <= I < N, got {text!r}")
    return index, count


def run_all_users(args: argparse.Namespace, job: str, **options: Any) -> int:
    from influrec.batch import Shard, run_batch
    from influrec.inference import Recommender

    if args.out is None:
        raise InputError("--all-users writes a Parquet file: give it with --out FILE.parquet")
    if not args.out.parent.is_dir():
        raise InputError(f"--out {args.out}: the folder {args.out.parent} does not exist")
    shard = Shard(*args.shard) if args.shard else Shard.from_environment()
    rec = Recommender.load(args.run)
    report = run_batch(rec, job, args.out, shard=shard, chunk_users=args.chunk_users, **options)
    console = Console(stderr=True)
    console.print(
        f"{job}: {report.users:,} users of {shard.name.replace('-', ' ')} in "
        f"{report.seconds:.1f} s ({report.users / max(report.seconds, 1e-9):.1f} users/s); "
        f"{report.resumed_chunks} chunks were already done"
    )
    if report.merged is not None:
        console.print(f"wrote {report.merged}", soft_wrap=True)
    else:
        console.print("the other shards' parts are not all there yet; the last one merges them")
    return 0
