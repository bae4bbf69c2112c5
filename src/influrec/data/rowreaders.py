"""Readers that build their blocks row by row (JSON lines, S3-Rec sequences) or column-wise from
Parquet; each yields :class:`~influrec.data.delimited.TextBlock` objects like the CSV reader."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from influrec.data.delimited import EXAMPLE_MAP, Invalid, TextBlock, check_columns
from influrec.data.textio import open_binary
from influrec.errors import InputError


def _lines(path: Path) -> Iterator[tuple[int, bytes, str | None]]:
    """(1-based line number, raw bytes, text or None when the line is not UTF-8)."""
    with open_binary(path) as raw, io.BufferedReader(raw) as lines:
        for number, line in enumerate(lines, start=1):
            try:
                yield number, line, line.decode("utf-8")
            except UnicodeDecodeError:
                yield number, line, None


def _scalar(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool | list | dict):
        return json.dumps(value)
    return str(value)


class _JsonRows:
    """Rows of one block of a JSON-lines file."""

    def __init__(self, keys: list[str], required: list[str]) -> None:
        self.keys = keys
        self.values: dict[str, list[str | None]] = {k: [] for k in keys}
        self.lines: list[int] = []
        self.blank: list[bool] = []
        self.invalid: list[Invalid] = []
        self.present = dict.fromkeys(required, 0)
        self.seen: dict[str, None] = {}
        self.objects = 0

    def add(self, number: int, text: str | None) -> None:
        if text is None:
            self.invalid.append((number, "bad_encoding", None, "UTF-8 text"))
            return
        if not text.strip():
            self._row(number, {}, blank=True)
            return
        try:
            record = json.loads(text)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            self.invalid.append((number, "bad_json", text.rstrip("\r\n"), "a JSON object"))
            return
        self.objects += 1
        for key in record:
            if len(self.seen) < 30:
                self.seen[key] = None
            if key in self.present:
                self.present[key] += 1
        self._row(number, record, blank=False)

    def _row(self, number: int, record: dict[str, Any], *, blank: bool) -> None:
        for key in self.keys:
            self.values[key].append(_scalar(record.get(key)))
        self.lines.append(number)
        self.blank.append(blank)

    def check_keys(self, path: Path) -> None:
        absent = [k for k, n in self.present.items() if n == 0]
        if absent and self.objects:
            raise InputError(
                f"{path}: no row has key {', '.join(map(repr, absent))} (checked the first "
                f"{self.objects} objects); keys seen: {', '.join(map(repr, self.seen))}; "
                f"check the column map (e.g. {EXAMPLE_MAP})",
                setting="column_map",
            )

    def block(self) -> TextBlock:
        return TextBlock(
            lines=np.array(self.lines, np.int64),
            columns={k: pa.array(v, pa.string()) for k, v in self.values.items()},
            blank=np.array(self.blank, bool),
            invalid=self.invalid,
        )


def jsonl_blocks(
    path: Path, keys: list[str], required: list[str], rows_per_batch: int
) -> Iterator[TextBlock]:
    """Blocks of a JSON-lines file; the first block checks that each ``required`` key occurs
    (an optional one, like a value only purchases have, may be absent from many rows)."""
    rows, first = _JsonRows(keys, required), True
    for number, _, text in _lines(path):
        rows.add(number, text)
        if len(rows.lines) >= rows_per_batch:
            if first:
                rows.check_keys(path)
            yield rows.block()
            rows, first = _JsonRows(keys, required), False
    if first:
        rows.check_keys(path)
    yield rows.block()


def s3rec_blocks(path: Path, rows_per_batch: int) -> Iterator[TextBlock]:
    """Blocks of ``user item item ...`` lines: one row per item, all on the user's line."""
    users: list[str] = []
    items: list[str] = []
    lines: list[int] = []
    invalid: list[Invalid] = []
    for number, _, text in _lines(path):
        fields = text.split() if text is not None else []
        if text is None:
            invalid.append((number, "bad_encoding", None, "UTF-8 text"))
        elif not fields:  # a blank line: one empty row, counted as blank
            users.append("")
            items.append("")
            lines.append(number)
        elif len(fields) == 1:
            expected = "a user id followed by item ids"
            invalid.append((number, "no_items", text.rstrip("\r\n"), expected))
        else:
            users.extend([fields[0]] * (len(fields) - 1))
            items.extend(fields[1:])
            lines.extend([number] * (len(fields) - 1))
        if len(users) >= rows_per_batch:
            yield _s3rec_block(users, items, lines, invalid)
            users, items, lines, invalid = [], [], [], []
    yield _s3rec_block(users, items, lines, invalid)


def _s3rec_block(
    users: list[str], items: list[str], lines: list[int], invalid: list[Invalid]
) -> TextBlock:
    user = pa.array(users, pa.string())
    return TextBlock(
        lines=np.array(lines, np.int64),
        columns={"user": user, "item": pa.array(items, pa.string())},
        blank=pc.equal(user, "").to_numpy(zero_copy_only=False),
        invalid=invalid,
    )


def _text_like(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        return _text_like(kind.value_type)
    return any(
        check(kind)
        for check in (
            pa.types.is_string,
            pa.types.is_large_string,
            pa.types.is_binary,
            pa.types.is_large_binary,
            pa.types.is_integer,
            pa.types.is_floating,
            pa.types.is_decimal,
            pa.types.is_boolean,
            pa.types.is_timestamp,
            pa.types.is_date,
        )
    )


def parquet_blocks(path: Path, mapping: dict[str, str], rows_per_batch: int) -> Iterator[TextBlock]:
    """Blocks of a Parquet file's mapped columns as text; ``lines`` are 1-based row numbers."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from exc
    schema = parquet.schema_arrow
    wanted = list(dict.fromkeys(mapping.values()))
    check_columns(path, schema.names, wanted)
    for name, column in mapping.items():
        kind = schema.field(column).type
        if not _text_like(kind):
            raise InputError(
                f"{path}: column {column!r} (mapped to {name}) has type {kind}; expected text, "
                "a number or a timestamp. Map another column, or flatten this one first."
            )
    start = 1
    for batch in parquet.iter_batches(batch_size=rows_per_batch, columns=wanted):
        texts = {c: _as_text(batch.column(c)) for c in wanted}
        cols = {c: values for c, (values, _) in texts.items()}
        undecodable = np.logical_or.reduce([bad for _, bad in texts.values()])
        yield TextBlock(
            lines=np.arange(start, start + batch.num_rows, dtype=np.int64),
            columns=cols,
            bad_encoding=undecodable if undecodable.any() else None,
            text=partial(_row_json, batch),
        )
        start += batch.num_rows


def _row_json(batch: pa.RecordBatch, i: int) -> str:
    return json.dumps(batch.slice(i, 1).to_pylist()[0], default=str)


def _as_text(values: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Column as strings, and the (N,) mask of binary values that are not UTF-8 (those become
    empty strings). Native timestamps become ISO-8601 text in UTC."""
    bad = np.zeros(len(values), bool)
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if pa.types.is_timestamp(values.type) and values.type.tz is None:
        values = values.cast(pa.timestamp(values.type.unit, tz="UTC"))
    if pa.types.is_binary(values.type) or pa.types.is_large_binary(values.type):
        try:
            return values.cast(pa.string()), bad
        except pa.ArrowInvalid:
            texts: list[str | None] = []
            for i, raw in enumerate(values.to_pylist()):
                try:
                    texts.append(None if raw is None else raw.decode("utf-8"))
                except UnicodeDecodeError:
                    texts.append("")
                    bad[i] = True
            return pa.array(texts, pa.string()), bad
    return values.cast(pa.string()), bad
