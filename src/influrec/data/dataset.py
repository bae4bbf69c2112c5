"""A prepared dataset: the canonical event table, its vocabularies and its statistics.

On disk it is a folder::

    events.parquet     EVENTS_SCHEMA, sorted by user_idx then time (ties in file order)
    users.parquet      user_idx (1..U), user_id
    items.parquet      item_idx (1..I), item_id, and any item metadata (title, genres, category...)
    behaviors.json     behaviour vocabulary; index 0 is the padding token
    stats.json         counts, dropped rows per reason, time range, options and versions
    ground_truth.parquet  (synthetic data only) which earlier event caused which

It is written to a temporary folder and renamed into place, so a failure never leaves half a
dataset behind; an existing folder is replaced only under the rule of :mod:`influrec.folders`
(with ``overwrite``, and only a prepared dataset that holds no input of the command).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import platform
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from influrec import __version__
from influrec.data import dataset_files as files
from influrec.data import schema
from influrec.data.item_text import (
    TEXT_FILE,
    TEXT_INFO_FILE,
    ItemText,
    load_item_text,
    write_item_text,
)
from influrec.data.loaders import LoadedLog, ReadOptions, read_log
from influrec.data.parsing import MAX_BEHAVIORS, EncodedColumns, Vocabulary
from influrec.data.preprocess import CleanEvents, PrepareConfig, clean, first_appearance_codes
from influrec.errors import InputError
from influrec.folders import FolderKind, new_folder
from influrec.folders import check_output_dir as check_folder


@dataclass
class EventDataset:
    """A prepared dataset in memory. Index 0 of every vocabulary is padding."""

    events: pa.Table
    users: pa.Table
    items: pa.Table
    behaviors: list[str]
    stats: dict[str, Any]
    ground_truth: pa.Table | None = None
    item_text: ItemText | None = None  # sentence-encoder vectors (`embed_item_text`)

    @property
    def n_users(self) -> int:
        return self.users.num_rows

    @property
    def n_items(self) -> int:
        return self.items.num_rows

    def column(self, name: str) -> np.ndarray:
        """One events column as numpy (``value`` has NaN for null)."""
        values = self.events.column(name)
        if name == "value":
            return values.to_numpy().astype(np.float64)
        return values.to_numpy()

    def save(self, out_dir: Path, *, overwrite: bool = False, inputs: Iterable[Path] = ()) -> Path:
        """Write the folder atomically (temporary folder, then rename); see
        :mod:`influrec.folders` for when an existing folder is replaced."""
        out_dir = Path(out_dir)
        with new_folder(out_dir, DATASET_FOLDER, overwrite=overwrite, inputs=inputs) as tmp:
            self.write_files(tmp)
        return out_dir

    def write_files(self, folder: Path) -> None:
        """Write the dataset's files into the existing ``folder`` (use :meth:`save`)."""
        pq.write_table(self.events, folder / schema.EVENTS_FILE)
        pq.write_table(self.users, folder / schema.USERS_FILE)
        pq.write_table(self.items, folder / schema.ITEMS_FILE)
        if self.ground_truth is not None:
            pq.write_table(self.ground_truth, folder / schema.GROUND_TRUTH_FILE)
        _write_json(folder / schema.BEHAVIORS_FILE, self.behaviors)
        _write_json(folder / schema.STATS_FILE, self.stats)
        if self.item_text is not None:
            write_item_text(folder, self.item_text.vectors, self.item_text.info)

    @classmethod
    def load(cls, folder: Path, *, remedy: str = files.DATASET_REMEDY) -> EventDataset:
        """Read a folder written by :meth:`save`.

        A missing, truncated or inconsistent file raises :class:`DamagedRunError` naming it,
        with ``remedy`` as the advice.
        """
        folder = Path(folder)
        if not (folder / schema.EVENTS_FILE).exists():
            if not folder.is_dir():
                raise InputError(f"{folder}: no such dataset folder")
            raise InputError(
                f"{folder}: not a prepared dataset (no {schema.EVENTS_FILE}); "
                "create one with `influrec data prepare` or `influrec data synth`"
            )
        events = files.read_table(folder / schema.EVENTS_FILE, schema.EVENTS_SCHEMA.names, remedy)
        users = files.read_table(folder / schema.USERS_FILE, ["user_idx", "user_id"], remedy)
        items = files.read_table(folder / schema.ITEMS_FILE, ["item_idx", "item_id"], remedy)
        behaviors = files.read_behaviors(folder / schema.BEHAVIORS_FILE, remedy)
        stats = files.read_stats(folder / schema.STATS_FILE, remedy)
        files.check_consistent(
            folder,
            events=events,
            users=users,
            items=items,
            behaviors=behaviors,
            stats=stats,
            remedy=remedy,
        )
        truth = folder / schema.GROUND_TRUTH_FILE
        return cls(
            events=events,
            users=users,
            items=items,
            behaviors=behaviors,
            stats=stats,
            ground_truth=files.read_table(truth, [], remedy) if truth.exists() else None,
            item_text=load_item_text(folder, items.num_rows),
        )


DATASET_FOLDER = FolderKind(
    "prepared dataset",
    markers=(schema.EVENTS_FILE, schema.STATS_FILE, schema.BEHAVIORS_FILE),
    contents=frozenset(
        (
            schema.EVENTS_FILE,
            schema.USERS_FILE,
            schema.ITEMS_FILE,
            schema.BEHAVIORS_FILE,
            schema.STATS_FILE,
            schema.GROUND_TRUTH_FILE,
            "removed.parquet",  # written by denoise
            TEXT_FILE,  # written by embed_item_text
            TEXT_INFO_FILE,
        )
    ),
    part_of=("run.json", "run folder"),  # a run's data/: replacing it would break the run
)
"""A prepared dataset folder (see :mod:`influrec.folders` for when one is replaced)."""


def check_output_dir(out_dir: Path, *, overwrite: bool, inputs: Iterable[Path] = ()) -> None:
    """Raise :class:`InputError` unless ``out_dir`` may receive a prepared dataset: it is
    missing or empty, or (with ``overwrite``) a prepared dataset that holds none of ``inputs``
    (:class:`~influrec.folders.FolderExistsError` when it exists and ``overwrite`` is false)."""
    check_folder(Path(out_dir), DATASET_FOLDER, overwrite=overwrite, inputs=inputs)


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


def _dictionary(codes: np.ndarray, tokens: list[str], index_type: pa.DataType) -> pa.Array:
    """Dictionary array whose dictionary is ``tokens`` (index 0 = padding) and indices ``codes``."""
    return pa.DictionaryArray.from_arrays(
        pa.array(codes, index_type), pa.array([schema.PAD_TOKEN, *tokens], pa.string())
    )


def release_freed_memory() -> None:
    """Hand memory freed by numpy and pyarrow back to the OS (glibc keeps freed heap pages;
    after reading a large file that is the difference between ~1.7 and ~0.9 GB resident)."""
    pa.default_memory_pool().release_unused()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def build_dataset(
    cols: EncodedColumns,
    config: PrepareConfig,
    *,
    item_meta: pa.Table | None = None,
    read_stats: dict[str, Any] | None = None,
) -> EventDataset:
    """Clean ``cols`` and assemble the canonical table, vocabularies and statistics."""
    started = time.perf_counter()
    if len(cols.behaviors) > MAX_BEHAVIORS:
        raise InputError(
            f"{len(cols.behaviors)} distinct behaviour values; at most {MAX_BEHAVIORS} are "
            "supported. Is the behavior column really a behaviour type?"
        )
    cleaned = clean(cols, config)
    release_freed_memory()
    order = cleaned.order
    row = cols.row[order]
    user_idx, user_old = first_appearance_codes(cols.user[order], row)
    item_idx, item_old = first_appearance_codes(cols.item[order], row)
    behavior_idx, behavior_old = first_appearance_codes(cols.behavior[order], row)
    users = [cols.users[i] for i in user_old]
    items = [cols.items[i] for i in item_old]
    behaviors = [cols.behaviors[i] for i in behavior_old]
    value = pa.array(cleaned.value, pa.float64(), mask=np.isnan(cleaned.value))
    events = pa.Table.from_arrays(
        [
            _dictionary(user_idx, users, pa.int32()),
            _dictionary(item_idx, items, pa.int32()),
            _dictionary(behavior_idx.astype(np.int16), behaviors, pa.int16()),
            pa.array(cols.timestamp[order], pa.int64()),
            value,
            pa.array(row, pa.int64()),
            pa.array(user_idx, pa.int32()),
            pa.array(item_idx, pa.int32()),
            pa.array(behavior_idx.astype(np.int16), pa.int16()),
        ],
        schema=schema.EVENTS_SCHEMA,
    )
    dataset = EventDataset(
        events=events,
        users=pa.table(
            {"user_idx": pa.array(np.arange(1, len(users) + 1), pa.int32()), "user_id": users}
        ),
        items=_items_table(items, item_meta),
        behaviors=[schema.PAD_TOKEN, *behaviors],
        stats={},
    )
    dataset.stats = _stats(dataset, cols, cleaned, config, read_stats or {})
    dataset.stats["seconds"]["preprocess"] = round(time.perf_counter() - started, 3)
    return dataset


def _items_table(items: list[str], meta: pa.Table | None) -> pa.Table:
    table = pa.table(
        {"item_idx": pa.array(np.arange(1, len(items) + 1), pa.int32()), "item_id": items}
    )
    if meta is None or meta.num_rows == 0:
        return table
    meta = meta.group_by("item_id", use_threads=False).aggregate(
        [(c, "first") for c in meta.column_names if c != "item_id"]
    )
    meta = meta.rename_columns([c.removesuffix("_first") for c in meta.column_names])
    joined = table.join(meta, "item_id", join_type="left outer", use_threads=False)
    return joined.sort_by("item_idx")


def _time_range(timestamps: np.ndarray, kind: str) -> dict[str, Any]:
    if len(timestamps) == 0:
        return {"min": None, "max": None}
    low, high = int(timestamps.min()), int(timestamps.max())
    out: dict[str, Any] = {"min": low, "max": high}
    if kind == "timestamp":
        out["min_iso"] = datetime.fromtimestamp(low, UTC).isoformat()
        out["max_iso"] = datetime.fromtimestamp(high, UTC).isoformat()
    return out


def _stats(
    ds: EventDataset,
    cols: EncodedColumns,
    cleaned: CleanEvents,
    config: PrepareConfig,
    read_stats: dict[str, Any],
) -> dict[str, Any]:
    behavior_idx = ds.column("behavior_idx").astype(np.int64)
    counts = np.bincount(behavior_idx, minlength=len(ds.behaviors))
    per_user = np.bincount(ds.column("user_idx"))[1:]
    value = ds.column("value")
    dropped = dict(read_stats.pop("bad_rows", {}))
    dropped.update(cleaned.dropped)
    return {
        "users": ds.n_users,
        "items": ds.n_items,
        "events": ds.events.num_rows,
        "behaviors": {b: int(counts[i]) for i, b in enumerate(ds.behaviors) if i > 0},
        "dropped": dropped,
        "time_kind": cols.time_kind,
        "time_range": _time_range(ds.column("timestamp"), cols.time_kind),
        "events_per_user": {
            "min": int(per_user.min()) if len(per_user) else 0,
            "median": float(np.median(per_user)) if len(per_user) else 0.0,
            "max": int(per_user.max()) if len(per_user) else 0,
        },
        "values": {"present": int((~np.isnan(value)).sum()), **cleaned.value_stats},
        "kcore_iterations": cleaned.kcore_iterations,
        "config": config.to_dict(),
        **read_stats,
        "seconds": dict(read_stats.get("seconds", {})),
        "versions": {
            "influrec": __version__,
            "python": platform.python_version(),
            "numpy": np.__version__,
            "pyarrow": pa.__version__,
        },
    }


def prepare(
    path: Path,
    fmt: str,
    *,
    read_options: ReadOptions | None = None,
    config: PrepareConfig | None = None,
) -> EventDataset:
    """Read a log and prepare it: ``prepare("ratings.dat", "movielens")``."""
    started = time.perf_counter()
    log = read_log(Path(path), fmt, read_options)
    release_freed_memory()
    read_seconds = round(time.perf_counter() - started, 3)
    return build_dataset(
        log.columns,
        config or PrepareConfig(),
        item_meta=log.item_meta,
        read_stats=_read_stats(log, read_seconds),
    )


def _read_stats(log: LoadedLog, seconds: float) -> dict[str, Any]:
    bad_rows = dict(log.bad.counts)
    if log.columns.blank_lines:
        bad_rows["blank_line"] = log.columns.blank_lines
    return {
        "source": log.source,
        "rows_read": len(log.columns.row) + sum(bad_rows.values()),
        "bad_rows": bad_rows,
        "bad_row_examples": log.bad.examples,
        "seconds": {"read": seconds},
    }


def columns_from_table(raw: pa.Table, *, time_kind: str = "timestamp") -> EncodedColumns:
    """Code a table with :data:`~influrec.data.schema.RAW_SCHEMA` columns (e.g. synthetic data)."""
    missing = [n for n in schema.RAW_SCHEMA.names if n not in raw.column_names]
    if missing:
        raise InputError(f"table lacks columns {missing}; expected {schema.RAW_SCHEMA.names}")
    vocabs = {name: Vocabulary() for name in ("user_id", "item_id", "behavior")}
    codes = {name: v.encode(raw.column(name).combine_chunks()) for name, v in vocabs.items()}
    value = raw.column("value").to_numpy().astype(np.float64)
    return EncodedColumns(
        user=codes["user_id"],
        item=codes["item_id"],
        behavior=codes["behavior"].astype(np.int16),
        timestamp=raw.column("timestamp").to_numpy().astype(np.int64),
        value=value,
        row=raw.column("row").to_numpy().astype(np.int64),
        users=vocabs["user_id"].tokens,
        items=vocabs["item_id"].tokens,
        behaviors=vocabs["behavior"].tokens,
        item_attrs={},
        time_kind="order" if time_kind == "order" else "timestamp",
    )
