"""Batch jobs over every user: top-k recommendations or exact explanations, as one Parquet file.

`run_batch(rec, "recommend", out)` answers for every user of the run's data, in chunks of
users. The work can be split into shards (processes on one machine, or torchrun ranks on
several: `Shard.from_environment()` reads torchrun's RANK and WORLD_SIZE); each shard writes
its chunks under `OUT.parts/`, so a killed job resumes where it stopped, and the shard that
completes the set merges every chunk into OUT. The merged file is the same whatever the number
of shards: rows in user order (the dataset's), then rank, then event position.

Long format, one row per answer:

- recommend: user, rank, item, title, score, new_item
- explain: user, rank, item, title, score, position, event_item, event_title, behavior,
  timestamp (epoch seconds), effect (in the measure's unit, e.g. rank-margin points)
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from influrec.errors import InputError
from influrec.inference import EXCLUDE_SEEN, Recommender
from influrec.progress import steps

JOBS = ("recommend", "explain")


@dataclass(frozen=True)
class Shard:
    """This process's share of the users: every `count`-th user from the `index`-th."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise InputError(
                f"shard {self.index} of {self.count}: the index must be in 0..{self.count - 1}",
                setting="shard",
            )

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> Shard:
        """torchrun's RANK of WORLD_SIZE, else the whole job."""
        env = os.environ if environ is None else environ
        return cls(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)))

    @property
    def name(self) -> str:
        return f"shard-{self.index}-of-{self.count}"


@dataclass(frozen=True)
class BatchReport:
    users: int  # users this shard answered (now or in an earlier, interrupted run)
    resumed_chunks: int  # chunks found done already
    rows: int  # rows this shard wrote now
    seconds: float
    merged: Path | None  # the output, when this shard completed the set


def recommend_rows(
    rec: Recommender, users: Sequence[str], *, k: int, exclude_seen: bool
) -> pa.Table:
    rows: list[dict[str, Any]] = []
    for user in users:
        history = rec.user_history(user)
        for r in rec.recommend(history, k=k, exclude_seen=exclude_seen):
            rows.append(
                {
                    "user_index": rec.user_index[user],
                    "user": user,
                    "rank": r.rank,
                    "item": r.item_id,
                    "title": rec.item_title(r.item_id),
                    "score": r.score,
                    "new_item": r.new_item,
                }
            )
    return pa.Table.from_pylist(rows, schema=RECOMMEND_SCHEMA)


def explain_rows(
    rec: Recommender,
    users: Sequence[str],
    *,
    k: int,
    method: str,
    measure: str,
    exclude_seen: bool = EXCLUDE_SEEN,
) -> pa.Table:
    from influrec.influence.api import explain

    rows: list[dict[str, Any]] = []
    for user in users:
        history = rec.user_history(user)
        result = explain(
            rec, history, k=k, method=method, measure=measure, exclude_seen=exclude_seen
        )
        for item in result.recommendations:
            for event in item.events:
                rows.append(
                    {
                        "user_index": rec.user_index[user],
                        "user": user,
                        "rank": item.rank,
                        "item": item.item,
                        "title": item.title,
                        "score": item.score,
                        "position": event.position,
                        "event_item": event.item,
                        "event_title": event.title,
                        "behavior": event.behavior,
                        "timestamp": event.timestamp,
                        "effect": event.effect,
                    }
                )
    return pa.Table.from_pylist(rows, schema=EXPLAIN_SCHEMA)


RECOMMEND_SCHEMA = pa.schema(
    [
        ("user_index", pa.int64()),  # the dataset's order; dropped from the merged file
        ("user", pa.string()),
        ("rank", pa.int32()),
        ("item", pa.string()),
        ("title", pa.string()),
        ("score", pa.float64()),
        ("new_item", pa.bool_()),
    ]
)
EXPLAIN_SCHEMA = pa.schema(
    [
        ("user_index", pa.int64()),
        ("user", pa.string()),
        ("rank", pa.int32()),
        ("item", pa.string()),
        ("title", pa.string()),
        ("score", pa.float64()),
        ("position", pa.int32()),
        ("event_item", pa.string()),
        ("event_title", pa.string()),
        ("behavior", pa.string()),
        ("timestamp", pa.int64()),
        ("effect", pa.float64()),
    ]
)


def run_batch(
    rec: Recommender,
    job: str,
    out: Path,
    *,
    shard: Shard | None = None,
    chunk_users: int = 200,
    progress: bool | None = None,
    **options: Any,
) -> BatchReport:
    """Answer `job` ("recommend": k, exclude_seen; "explain": k, method, measure, exclude_seen;
    seen items are left out by default, as everywhere: inference.EXCLUDE_SEEN) for every
    user of this `shard`, into OUT.parts/ chunk by chunk; merge into `out` (Parquet) when the
    shards' work is all there. Chunks already written with the same options are kept."""
    if job not in JOBS:
        raise InputError(f"unknown batch job {job!r}; choose one of {', '.join(JOBS)}")
    shard = shard or Shard()
    started = time.perf_counter()
    out = Path(out)
    parts = parts_folder(out)
    _check_options(parts, {"job": job, "chunk_users": chunk_users, **options})
    users = list(rec.user_index)[shard.index :: shard.count]
    answer = _answer(rec, job, options)
    folder = parts / shard.name
    folder.mkdir(parents=True, exist_ok=True)
    chunks = range(0, len(users), chunk_users)
    resumed, rows = 0, 0
    with steps(len(users), f"{job}, {shard.name.replace('-', ' ')}", enabled=progress) as bar:
        for number, begin in enumerate(chunks):
            path = folder / f"chunk-{number:06d}.parquet"
            batch = users[begin : begin + chunk_users]
            if path.exists():
                resumed += 1
            else:
                table = answer(batch)
                _write_atomically(table, path)
                rows += table.num_rows
            bar.advance(len(batch))
    (folder / "done").write_text(json.dumps({"chunks": len(chunks), "users": len(users)}))
    merged = merge_if_complete(out, shard.count)
    return BatchReport(len(users), resumed, rows, time.perf_counter() - started, merged)


def parts_folder(out: Path) -> Path:
    return out.with_name(out.name + ".parts")


def _answer(rec: Recommender, job: str, options: dict[str, Any]) -> Callable[[list[str]], pa.Table]:
    k, exclude_seen = options.get("k", 10), options.get("exclude_seen", EXCLUDE_SEEN)
    if job == "recommend":
        return lambda users: recommend_rows(rec, users, k=k, exclude_seen=exclude_seen)
    method, measure = options.get("method", "loo"), options.get("measure", "margin")
    return lambda users: explain_rows(
        rec, users, k=k, method=method, measure=measure, exclude_seen=exclude_seen
    )


def _check_options(parts: Path, options: dict[str, Any]) -> None:
    """Record the job's options; refuse to resume chunks written with other options."""
    parts.mkdir(parents=True, exist_ok=True)
    record = parts / "job.json"
    wanted = json.dumps(options, sort_keys=True, default=str)
    if record.exists() and record.read_text() != wanted:
        raise InputError(
            f"{parts}: holds the parts of another batch job ({record.read_text()}); remove "
            "the folder or give another output file",
            setting="out",
        )
    record.write_text(wanted)


def _write_atomically(table: pa.Table, path: Path) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    pq.write_table(table, partial)
    partial.replace(path)


def merge_if_complete(out: Path, count: int) -> Path | None:
    """Merge every shard's chunks into `out` once all `count` shards are done; None before.

    Rows in the dataset's user order, then rank, then event position; any shard may merge,
    and two merging at once write the same file."""
    parts = parts_folder(out)
    names = [Shard(i, count).name for i in range(count)]
    if not all((parts / name / "done").exists() for name in names):
        return None
    merged = pa.concat_tables(
        pq.read_table(path) for name in names for path in sorted((parts / name).glob("chunk-*"))
    )
    keys = ["user_index", "rank", "position"] if "position" in merged.column_names else None
    ordered = merged.sort_by([(key, "ascending") for key in keys or ["user_index", "rank"]])
    _write_atomically(ordered.drop_columns(["user_index"]), out)
    return out
