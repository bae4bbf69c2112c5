"""Stream a delimited text file in blocks with pyarrow's CSV reader, keeping each row's line.

Every row keeps its physical line number, also after quoted fields that span several lines.
Rows pyarrow cannot split (wrong number of fields) and rows on lines that are not UTF-8 come
with the block that follows them, so that bad rows can be reported in line order.
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from influrec.data.badrows import RowText
from influrec.data.textio import Utf8Guard, open_binary
from influrec.errors import InputError

EXAMPLE_MAP = "user=uid,item=sku,time=ts"  # a column map, as ColumnMap.parse reads it

Invalid = tuple[int, str, RowText, str]  # (line, reason, text, expected)


@dataclass
class TextBlock:
    """Rows as a reader yields them: source ``columns`` as strings, their lines, blank and
    bad-encoding masks (N,) (None: no such rows), the unsplittable rows up to the last of them
    (``invalid``), and how to show row i in a message (``text``; None quotes the source line)."""

    lines: np.ndarray
    columns: dict[str, pa.Array]
    blank: np.ndarray | None = None
    bad_encoding: np.ndarray | None = None
    invalid: list[Invalid] = field(default_factory=list)
    text: Callable[[int], str] | None = None


class _DoubleColonAsTab(io.RawIOBase):
    """Byte stream that rewrites MovieLens' ``::`` separator to a tab on the fly."""

    def __init__(self, raw: io.RawIOBase) -> None:
        self.raw, self.carry = raw, b""

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        want = size if size is not None and size > 0 else 1 << 20
        while True:
            data = self.raw.read(want) or b""
            chunk, self.carry = self.carry + data, b""
            colons = 0
            while colons < len(chunk) and chunk[-1 - colons] == ord(":"):
                colons += 1
            if data and colons % 2:  # an odd run of ':' at the end: keep half a '::' back
                chunk, self.carry = chunk[:-1], b":"
            if chunk or not data:
                return chunk.replace(b"::", b"\t")

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer) - 1)
        buffer[: len(data)] = data
        return len(data)


def first_line(path: Path) -> str:
    """The file's first line (after any BOM) as text."""
    with open_binary(path) as raw, io.BufferedReader(raw) as lines:
        line = lines.readline()
    try:
        return line.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise InputError(
            f"{path}:1: the first line is not UTF-8 text; save the file as UTF-8"
        ) from None


def check_columns(path: Path, header: list[str], wanted: list[str]) -> None:
    missing = [c for c in wanted if c not in header]
    if missing:
        raise InputError(
            f"{path}: no column {', '.join(map(repr, missing))}; the file has {header}; "
            f"check the column map (e.g. {EXAMPLE_MAP})",
            setting="column_map",
        )


class _Lines:
    """Physical line of each record (pyarrow counts records; a quoted newline adds a line)."""

    def __init__(self, first_record: int) -> None:
        self.first_record = first_record
        self.valid_rows = 0
        self.gaps: list[int] = []  # invalid record j -> number of valid rows before it
        self.extra_records = np.zeros(0, np.int64)  # records with newlines inside, sorted
        self.extra_counts = np.zeros(0, np.int64)

    def invalid_record(self, record: int, newlines: int) -> None:
        self.gaps.append(record - self.first_record - len(self.gaps))
        self.add_extras(np.array([record]), np.array([newlines]))

    def valid_records(self, n: int) -> np.ndarray:
        index = np.arange(self.valid_rows, self.valid_rows + n)
        self.valid_rows += n
        gaps = np.array(self.gaps, np.int64)
        return self.first_record + index + np.searchsorted(gaps, index, "right")

    def add_extras(self, records: np.ndarray, newlines: np.ndarray) -> None:
        some = newlines > 0
        if some.any():
            records = np.concatenate([self.extra_records, records[some]])
            counts = np.concatenate([self.extra_counts, newlines[some]])
            order = np.argsort(records, kind="stable")
            self.extra_records, self.extra_counts = records[order], counts[order]

    def physical(self, records: np.ndarray) -> np.ndarray:
        if not len(self.extra_records):
            return records
        before = np.concatenate([[0], np.cumsum(self.extra_counts)])
        return records + before[np.searchsorted(self.extra_records, records, "left")]


def _may_hold_newline(column: pa.Array) -> bool:
    """Whether a string column's bytes hold a newline (one fast scan of its data buffer)."""
    data = column.buffers()[2]
    return data is not None and bool((np.frombuffer(data, np.uint8) == ord("\n")).any())


def _touches(bad_lines: np.ndarray, start: np.ndarray, newlines: np.ndarray) -> np.ndarray:
    """(N,) bool: whether lines start..start+newlines hold one of the sorted ``bad_lines``."""
    if not len(bad_lines):
        return np.zeros(len(start), bool)
    low = np.searchsorted(bad_lines, start, "left")
    return np.searchsorted(bad_lines, start + newlines, "right") > low


def stream_delimited(
    path: Path,
    *,
    delimiter: str,
    names: list[str] | None,
    wanted: list[str],
    block_size: int,
) -> Iterator[TextBlock]:
    """Yield :class:`TextBlock` objects of a delimited text file.

    ``names`` gives the columns of a header-less file; ``None`` reads them from the first line.
    Only ``,`` files have quoted fields (which may hold the delimiter or newlines).
    """
    if names is None:
        header = [h.strip() for h in next(csv.reader([first_line(path)], delimiter=delimiter))]
        check_columns(path, header, wanted)
    columns = names if names is not None else header
    raw = open_binary(path, quiet=True)
    source: io.RawIOBase = _DoubleColonAsTab(raw) if delimiter == "::" else raw
    guard = Utf8Guard(source)
    arrived: list[tuple[int, str, int]] = []

    def on_invalid(row: Any) -> str:
        with contextlib.suppress(Exception):  # never raise inside pyarrow's parser
            arrived.append((int(row.number or 0), str(row.text), int(row.actual_columns)))
        return "skip"

    quoted = delimiter == ","
    with raw:
        try:
            reader = _open_reader(guard, names, columns, delimiter, block_size, on_invalid)
            blocks = _Blocks(path, delimiter, len(columns), _Lines(1 if names is not None else 2))
            for batch in reader:
                raw.check()
                quotes = quoted and guard.quoted  # no '"' read yet: no field holds a newline
                yield blocks.block(batch, arrived, guard.bad_lines, quoted=quotes, wanted=wanted)
        except pa.ArrowInvalid as exc:
            raw.check()  # a truncated .gz is the better explanation
            raise InputError(f"{path}: cannot read as delimited text ({exc})") from exc
        raw.check()
        if arrived or blocks.pending:
            yield blocks.rest(arrived, guard.bad_lines, wanted)


def _open_reader(
    stream: Utf8Guard,
    names: list[str] | None,
    columns: list[str],
    delimiter: str,
    block_size: int,
    on_invalid: Callable[[Any], str],
) -> pa_csv.CSVStreamingReader:
    """pyarrow's streaming CSV reader, every column as strings, blank lines kept as rows."""
    quoted = delimiter == ","
    return pa_csv.open_csv(
        stream,  # read() hands over the file's own chunks: no buffering layer
        read_options=pa_csv.ReadOptions(
            use_threads=False, block_size=block_size, column_names=names
        ),
        parse_options=pa_csv.ParseOptions(
            delimiter="\t" if delimiter == "::" else delimiter,
            invalid_row_handler=on_invalid,
            ignore_empty_lines=False,
            quote_char='"' if quoted else False,
            newlines_in_values=quoted,
        ),
        convert_options=pa_csv.ConvertOptions(column_types={c: pa.string() for c in columns}),
    )


class _Blocks:
    """Turns pyarrow batches and invalid rows into :class:`TextBlock` objects."""

    def __init__(self, path: Path, delimiter: str, n_fields: int, lines: _Lines) -> None:
        self.path, self.delimiter, self.n_fields, self.lines = path, delimiter, n_fields, lines
        self.pending: list[tuple[int, str, int]] = []  # (record, text, fields)

    def _take_invalid(self, arrived: list[tuple[int, str, int]]) -> None:
        for record, text, n_fields in arrived:
            self.lines.invalid_record(record, text.count("\n"))
            self.pending.append((record, text, n_fields))
        arrived.clear()

    def block(
        self,
        batch: pa.RecordBatch,
        arrived: list[tuple[int, str, int]],
        bad_lines: set[int],
        *,
        quoted: bool,
        wanted: list[str],
    ) -> TextBlock:
        self._take_invalid(arrived)
        records = self.lines.valid_records(batch.num_rows)
        newlines = np.zeros(batch.num_rows, np.int64)
        if quoted:
            for column in batch.columns:
                if _may_hold_newline(column):
                    newlines += pc.count_substring(column, "\n").to_numpy(zero_copy_only=False)
            self.lines.add_extras(records, newlines)
        lines = self.lines.physical(records)
        bad = np.array(sorted(bad_lines), np.int64)
        blank = newlines == 0
        for column in batch.columns:
            if not blank.any():
                break
            blank &= pc.equal(column, "").to_numpy(zero_copy_only=False)
        last = int(records[-1]) if len(records) else None
        return TextBlock(
            lines=lines,
            columns={c: batch.column(c) for c in wanted},
            blank=blank,
            bad_encoding=_touches(bad, lines, newlines),
            invalid=self._invalid_upto(last, bad),
        )

    def rest(
        self, arrived: list[tuple[int, str, int]], bad_lines: set[int], wanted: list[str]
    ) -> TextBlock:
        self._take_invalid(arrived)
        empty = pa.array([], pa.string())
        none = np.zeros(0, bool)
        invalid = self._invalid_upto(None, np.array(sorted(bad_lines), np.int64))
        return TextBlock(np.zeros(0, np.int64), {c: empty for c in wanted}, none, none, invalid)

    def _invalid_upto(self, last: int | None, bad: np.ndarray) -> list[Invalid]:
        """The pending invalid rows up to record ``last`` (all when None), as bad rows."""
        due = [p for p in self.pending if last is None or p[0] <= last]
        self.pending = [p for p in self.pending if last is not None and p[0] > last]
        out: list[Invalid] = []
        for record, text, n_fields in due:
            line = int(self.lines.physical(np.array([record]))[0])
            if _touches(bad, np.array([line]), np.array([text.count("\n")]))[0]:
                out.append((line, "bad_encoding", None, "UTF-8 text"))
                continue
            shown = None if self.delimiter == "::" else text  # None: quoted from the file
            expected = f"{self.n_fields} fields, got {n_fields}"
            out.append((line, "wrong_field_count", shown, expected))
        return out
