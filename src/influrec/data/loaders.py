"""One reader per public log format, each streaming into an :class:`EventBuilder`.

Text files are read in blocks by pyarrow's CSV reader (never whole), ``.gz`` files are
decompressed on the fly, and every row keeps its line number for errors and stable ordering.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from influrec.data.badrows import BadRowPolicy, BadRows
from influrec.data.metadata import read_item_metadata
from influrec.data.parsing import EncodedColumns, EventBuilder, FieldBatch
from influrec.errors import InputError

BLOCK_SIZE = 1 << 22  # bytes of text parsed per batch
ROWS_PER_BATCH = 1 << 16  # rows per batch for line-by-line formats


@dataclass(frozen=True)
class ColumnMap:
    """Which source column holds each canonical field (``--map user=uid,item=sku,...``)."""

    user: str
    item: str
    behavior: str | None = None
    time: str | None = None
    value: str | None = None

    @classmethod
    def parse(cls, text: str) -> ColumnMap:
        fields: dict[str, str] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, column = part.partition("=")
            if not sep or key.strip() not in cls.__dataclass_fields__ or not column.strip():
                raise InputError(
                    f"--map: cannot read {part!r}; expected FIELD=COLUMN with FIELD one of "
                    f"{', '.join(cls.__dataclass_fields__)} (e.g. user=uid,item=sku,time=ts)"
                )
            fields[key.strip()] = column.strip()
        missing = [k for k in ("user", "item") if k not in fields]
        if missing:
            raise InputError(f"--map must name the {' and '.join(missing)} column(s)")
        return cls(**fields)

    def columns(self) -> dict[str, str]:
        """Canonical field -> source column, for the fields that are mapped."""
        pairs = {"user": self.user, "item": self.item, "behavior": self.behavior}
        pairs |= {"time": self.time, "value": self.value}
        return {k: v for k, v in pairs.items() if v is not None}


@dataclass
class LoadedLog:
    """What a reader returns: coded events, their bad rows, item metadata and the source."""

    columns: EncodedColumns
    bad: BadRows
    item_meta: pa.Table | None
    source: dict[str, Any]


class _DoubleColonAsTab(io.RawIOBase):
    """Byte stream that rewrites MovieLens' ``::`` separator to a tab on the fly."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw, self.carry = raw, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self.carry + self.raw.read(len(buffer) - 1)
        self.carry = b""
        if chunk.endswith(b":") and not chunk.endswith(b"::"):
            chunk, self.carry = chunk[:-1], b":"
        data = chunk.replace(b"::", b"\t")
        buffer[: len(data)] = data
        return len(data)


def open_binary(path: Path) -> IO[bytes]:
    """Open a file as bytes, decompressing ``.gz``; clear errors for missing or empty files."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder; give the data file itself")
    stream = gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")  # noqa: SIM115
    try:
        empty = not stream.peek(1)
    except (OSError, EOFError) as exc:
        stream.close()
        raise InputError(f"{path}: cannot read ({exc})") from exc
    if empty:
        stream.close()
        raise InputError(f"{path}: file is empty")
    return cast(IO[bytes], stream)


def stream_delimited(
    path: Path,
    bad: BadRows,
    *,
    delimiter: str,
    names: list[str] | None,
    wanted: list[str],
) -> Iterator[tuple[np.ndarray, dict[str, pa.Array]]]:
    """Yield (line numbers, {column: strings}) blocks of a delimited text file.

    ``names`` gives the columns of a header-less file; ``None`` reads them from the first line.
    Rows with the wrong number of fields go to ``bad``.
    """
    invalid: list[tuple[int, str, int]] = []

    def on_invalid(row: Any) -> str:
        invalid.append((int(row.number or 0), str(row.text), int(row.actual_columns)))
        return "skip"

    if names is None:
        header = next(csv.reader([_first_line(path)], delimiter=delimiter), [])
        _check_columns(path, [h.strip() for h in header], wanted)
    raw = open_binary(path)
    stream: IO[bytes] = io.BufferedReader(_DoubleColonAsTab(raw)) if delimiter == "::" else raw
    with raw, stream:
        reader = pa_csv.open_csv(
            stream,
            read_options=pa_csv.ReadOptions(
                use_threads=False, block_size=BLOCK_SIZE, column_names=names
            ),
            parse_options=pa_csv.ParseOptions(
                delimiter="\t" if delimiter == "::" else delimiter,
                invalid_row_handler=on_invalid,
                ignore_empty_lines=False,
                quote_char='"' if delimiter == "," else False,
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types={c: pa.string() for c in wanted}, include_columns=wanted
            ),
        )
        expected_fields = len(names) if names is not None else len(header)
        first_line, consumed = (1 if names is not None else 2), 0
        gaps: list[int] = []  # invalid line j -> number of valid rows before it
        for batch in reader:
            for line, text, n_fields in invalid:
                gaps.append(line - first_line - len(gaps))
                shown = text.replace("\t", "::") if delimiter == "::" else text
                bad.report(
                    "wrong_field_count", line, shown, f"{expected_fields} fields, got {n_fields}"
                )
            invalid.clear()
            index = np.arange(consumed, consumed + batch.num_rows)
            lines = first_line + index + np.searchsorted(np.array(gaps, np.int64), index, "right")
            consumed += batch.num_rows
            yield lines, {c: batch.column(c) for c in wanted}


def _check_columns(path: Path, header: list[str], wanted: list[str]) -> None:
    missing = [c for c in wanted if c not in header]
    if missing:
        raise InputError(
            f"{path}: no column {', '.join(map(repr, missing))}; the file has {header}. "
            "Check --map (e.g. --map user=uid,item=sku,time=ts)."
        )


@dataclass(frozen=True)
class ReadOptions:
    """Options every reader understands."""

    on_bad_rows: BadRowPolicy = "error"
    column_map: ColumnMap | None = None
    time_unit: str = "auto"
    delimiter: str = ","
    items_file: Path | None = None


def _feed(
    builder: EventBuilder,
    blocks: Iterator[tuple[np.ndarray, dict[str, pa.Array]]],
    mapping: dict[str, str],
    *,
    delimiter: str,
    attrs: dict[str, str] | None = None,
) -> EventBuilder:
    for lines, cols in blocks:
        get = {field: cols[column] for field, column in mapping.items()}
        builder.add(
            FieldBatch(
                lines=lines,
                user=get["user"],
                item=get["item"],
                behavior=get.get("behavior"),
                time=get.get("time"),
                value=get.get("value"),
                item_attrs={name: cols[col] for name, col in (attrs or {}).items()},
                delimiter=delimiter,
            )
        )
    return builder


def read_movielens(path: Path, bad: BadRows, options: ReadOptions) -> EventBuilder:
    """MovieLens ratings: ml-100k ``u.data``, ml-1m ``ratings.dat``, ml-10m+ ``ratings.csv``.

    behavior = ``rate``, value = the rating. A ``::`` file with three fields (user, movie,
    rating; no timestamp) is read in file order.
    """
    name = path.name.removesuffix(".gz")
    if name.endswith(".csv"):
        names, delimiter = None, ","
        mapping = {"user": "userId", "item": "movieId", "value": "rating", "time": "timestamp"}
    elif "::" in _first_line(path):
        delimiter = "::"
        n_fields = _first_line(path).count("::") + 1
        names = ["user", "item", "value", "time"][:n_fields]
        mapping = {k: k for k in names}
    else:
        names, delimiter = ["user", "item", "value", "time"], "\t"
        mapping = {k: k for k in names}
    builder = EventBuilder(bad, behavior="rate", time_unit="s")
    blocks = stream_delimited(
        path, bad, delimiter=delimiter, names=names, wanted=list(mapping.values())
    )
    return _feed(builder, blocks, mapping, delimiter=delimiter)


def read_taobao(path: Path, bad: BadRows, options: ReadOptions) -> EventBuilder:
    """Taobao ``UserBehavior.csv``: user, item, category, behavior (pv/buy/cart/fav), timestamp."""
    names = ["user", "item", "category", "behavior", "time"]
    blocks = stream_delimited(path, bad, delimiter=",", names=names, wanted=names)
    mapping = {k: k for k in names if k != "category"}
    builder = EventBuilder(bad, time_unit="s")
    return _feed(builder, blocks, mapping, delimiter=",", attrs={"category": "category"})


def read_retailrocket(path: Path, bad: BadRows, options: ReadOptions) -> EventBuilder:
    """RetailRocket ``events.csv``: timestamp (ms), visitorid, event, itemid, transactionid."""
    mapping = {"time": "timestamp", "user": "visitorid", "behavior": "event", "item": "itemid"}
    blocks = stream_delimited(path, bad, delimiter=",", names=None, wanted=list(mapping.values()))
    return _feed(EventBuilder(bad, time_unit="ms"), blocks, mapping, delimiter=",")


def read_sasrec(path: Path, bad: BadRows, options: ReadOptions) -> EventBuilder:
    """SASRec/BERT4Rec ``user item`` lines; line order is time order (no timestamps)."""
    blocks = stream_delimited(
        path, bad, delimiter=" ", names=["user", "item"], wanted=["user", "item"]
    )
    builder = EventBuilder(bad, behavior="interact")
    return _feed(builder, blocks, {"user": "user", "item": "item"}, delimiter=" ")


def read_s3rec(path: Path, bad: BadRows, options: ReadOptions) -> EventBuilder:
    """S3-Rec ``user item item ...`` lines, one line per user, items in time order."""
    builder = EventBuilder(bad, behavior="interact")
    users: list[str] = []
    items: list[str] = []
    lines: list[int] = []
    with open_binary(path) as raw:
        for number, line in enumerate(io.TextIOWrapper(raw, encoding="utf-8"), start=1):
            fields = line.split()
            if len(fields) == 1:
                bad.report("no_items", number, line.rstrip("\n"), "a user id followed by item ids")
            for item in fields[1:]:
                users.append(fields[0])
                items.append(item)
                lines.append(number)
            if len(users) >= ROWS_PER_BATCH:
                builder.add(_line_batch(users, items, lines))
                users, items, lines = [], [], []
    builder.add(_line_batch(users, items, lines))
    return builder


def _line_batch(users: list[str], items: list[str], lines: list[int]) -> FieldBatch:
    return FieldBatch(
        lines=np.array(lines, np.int64),
        user=pa.array(users, pa.string()),
        item=pa.array(items, pa.string()),
    )


def _first_line(path: Path) -> str:
    with open_binary(path) as raw:
        return raw.readline().decode("utf-8", "replace").rstrip("\r\n")


def _require_map(options: ReadOptions, fmt: str) -> ColumnMap:
    if options.column_map is None:
        raise InputError(f"--format {fmt} needs --map, e.g. --map user=uid,item=sku,time=ts")
    return options.column_map


def read_csv(path: Path, bad: BadRows, options: ReadOptions) -> EventBuilder:
    """Any delimited file with a header row; ``--map`` says which column is which."""
    mapping = _require_map(options, "csv").columns()
    blocks = stream_delimited(
        path,
        bad,
        delimiter=options.delimiter,
        names=None,
        wanted=list(dict.fromkeys(mapping.values())),
    )
    builder = EventBuilder(bad, time_unit=options.time_unit)
    return _feed(builder, blocks, mapping, delimiter=options.delimiter)


def read_parquet(path: Path, bad: BadRows, options: ReadOptions) -> EventBuilder:
    """A Parquet file; ``--map`` says which column is which. ``line`` = 1-based row number."""
    mapping = _require_map(options, "parquet").columns()
    if not path.exists():
        raise InputError(f"{path}: no such file")
    try:
        parquet = pq.ParquetFile(path)
    except pa.ArrowInvalid as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from exc
    _check_columns(path, parquet.schema_arrow.names, list(mapping.values()))
    wanted = list(dict.fromkeys(mapping.values()))

    def blocks() -> Iterator[tuple[np.ndarray, dict[str, pa.Array]]]:
        start = 1
        for batch in parquet.iter_batches(batch_size=ROWS_PER_BATCH, columns=wanted):
            cols = {c: _as_text(batch.column(c)) for c in wanted}
            yield np.arange(start, start + batch.num_rows, dtype=np.int64), cols
            start += batch.num_rows

    return _feed(EventBuilder(bad, time_unit=options.time_unit), blocks(), mapping, delimiter=",")


def _as_text(values: pa.Array) -> pa.Array:
    """Column as strings; native timestamps become ISO-8601 text in UTC."""
    if pa.types.is_timestamp(values.type) and values.type.tz is None:
        values = values.cast(pa.timestamp(values.type.unit, tz="UTC"))
    return values.cast(pa.string())


def read_jsonl(path: Path, bad: BadRows, options: ReadOptions) -> EventBuilder:
    """JSON lines (one object per line); ``--map`` says which key is which."""
    mapping = _require_map(options, "jsonl").columns()
    keys = list(dict.fromkeys(mapping.values()))

    def blocks() -> Iterator[tuple[np.ndarray, dict[str, pa.Array]]]:
        rows: dict[str, list[str | None]] = {k: [] for k in keys}
        lines: list[int] = []
        with open_binary(path) as raw:
            for number, line in enumerate(raw, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    if not isinstance(record, dict):
                        raise ValueError("not an object")
                except ValueError:
                    bad.report(
                        "bad_json", number, line.decode("utf-8", "replace").strip(), "a JSON object"
                    )
                    continue
                for key in keys:
                    value = record.get(key)
                    rows[key].append(None if value is None else str(value))
                lines.append(number)
                if len(lines) >= ROWS_PER_BATCH:
                    yield np.array(lines), {k: pa.array(v, pa.string()) for k, v in rows.items()}
                    rows, lines = {k: [] for k in keys}, []
        yield np.array(lines, np.int64), {k: pa.array(v, pa.string()) for k, v in rows.items()}

    return _feed(EventBuilder(bad, time_unit=options.time_unit), blocks(), mapping, delimiter=",")


READERS: dict[str, Callable[[Path, BadRows, ReadOptions], EventBuilder]] = {
    "movielens": read_movielens,
    "taobao": read_taobao,
    "retailrocket": read_retailrocket,
    "sasrec": read_sasrec,
    "s3rec": read_s3rec,
    "csv": read_csv,
    "parquet": read_parquet,
    "jsonl": read_jsonl,
}
"""Format name -> reader. Each reader streams the file into an EventBuilder."""


def read_log(path: Path, fmt: str, options: ReadOptions | None = None) -> LoadedLog:
    """Read one behaviour log in format ``fmt`` (a key of :data:`READERS`)."""
    options = options or ReadOptions()
    if fmt not in READERS:
        raise InputError(f"unknown format {fmt!r}; choose one of {', '.join(READERS)}")
    path = Path(path)
    bad = BadRows(path, options.on_bad_rows)
    try:
        builder = READERS[fmt](path, bad, options)
    except pa.ArrowInvalid as exc:
        raise InputError(f"{path}: cannot read as {fmt}: {exc}") from exc
    columns = builder.finish()
    meta = read_item_metadata(path, fmt, columns, items_file=options.items_file)
    source = {"path": str(path), "format": fmt, "time_unit": builder.time_unit}
    return LoadedLog(columns=columns, bad=bad, item_meta=meta, source=source)
