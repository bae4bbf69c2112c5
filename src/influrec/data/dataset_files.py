"""Reading a prepared dataset folder's files, each checked, so that a damaged or hand-edited
file is reported as a :class:`~influrec.errors.DamagedRunError` naming that file instead of
surfacing later as an ``IndexError`` or ``KeyError``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from influrec.data import schema
from influrec.errors import DamagedRunError

DATASET_REMEDY = (
    "prepare the dataset again (influrec data prepare or data synth) or restore it from a copy"
)
STATS_KEYS = {"users": int, "items": int, "events": int, "behaviors": dict, "time_range": dict}


def read_table(path: Path, columns: list[str], remedy: str) -> pa.Table:
    """A Parquet file that must have ``columns``."""
    if not path.exists():
        raise DamagedRunError(path, "missing", remedy)
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise DamagedRunError(path, f"cannot be read as Parquet ({_short(exc)})", remedy) from None
    lacking = [c for c in columns if c not in table.column_names]
    if lacking:
        raise DamagedRunError(path, f"lacks the columns {lacking}", remedy)
    return table


def read_json(path: Path, remedy: str) -> Any:
    if not path.exists():
        raise DamagedRunError(path, "missing", remedy)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DamagedRunError(path, f"is not valid JSON ({_short(exc)})", remedy) from None


def read_behaviors(path: Path, remedy: str) -> list[str]:
    """behaviors.json: a list of names whose first entry is the padding token."""
    behaviors = read_json(path, remedy)
    if (
        not isinstance(behaviors, list)
        or not all(isinstance(b, str) for b in behaviors)
        or behaviors[:1] != [schema.PAD_TOKEN]
    ):
        raise DamagedRunError(
            path,
            f"expected a JSON list of behaviour names starting with {schema.PAD_TOKEN!r}",
            remedy,
        )
    return behaviors


def read_json_object(
    path: Path, keys: Mapping[str, type | tuple[type, ...]], remedy: str
) -> dict[str, Any]:
    """A JSON object holding at least ``keys``, each of its type (a bool is no number)."""
    data = read_json(path, remedy)
    if not isinstance(data, dict):
        raise DamagedRunError(path, f"expected a JSON object, got {type(data).__name__}", remedy)
    wrong = [
        key
        for key, kind in keys.items()
        if not isinstance(data.get(key), kind) or isinstance(data.get(key), bool)
    ]
    if wrong:
        raise DamagedRunError(path, f"missing or wrongly typed keys {wrong}", remedy)
    return data


def read_stats(path: Path, remedy: str) -> dict[str, Any]:
    """stats.json: an object with at least the counts and ranges listed in STATS_KEYS."""
    return read_json_object(path, STATS_KEYS, remedy)


def check_consistent(
    folder: Path,
    *,
    events: pa.Table,
    users: pa.Table,
    items: pa.Table,
    behaviors: list[str],
    stats: dict[str, Any],
    remedy: str,
) -> None:
    """The event codes fit the vocabularies and stats.json counts what the tables hold."""
    codes = [
        ("user_idx", users.num_rows, schema.USERS_FILE),
        ("item_idx", items.num_rows, schema.ITEMS_FILE),
        ("behavior_idx", len(behaviors) - 1, schema.BEHAVIORS_FILE),
    ]
    for column, size, vocabulary in codes:
        if events.num_rows == 0:
            break
        low, high = pc.min_max(events.column(column)).values()
        if low.as_py() < 1 or high.as_py() > size:
            raise DamagedRunError(
                folder / vocabulary,
                f"has {size} entries but {schema.EVENTS_FILE} uses {column} up to "
                f"{high.as_py()} (from {low.as_py()}); the files are from different datasets",
                remedy,
            )
    counted = {"users": users.num_rows, "items": items.num_rows, "events": events.num_rows}
    for key, actual in counted.items():
        if stats[key] != actual:
            raise DamagedRunError(
                folder / schema.STATS_FILE,
                f"says {key}={stats[key]} but the dataset has {actual}",
                remedy,
            )


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= 160 else text[:160] + "..."
