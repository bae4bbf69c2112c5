"""One reader per public log format, each streaming into an :class:`EventBuilder`.

Text files are read in blocks by pyarrow's CSV reader (never whole), ``.gz`` files are
decompressed on the fly, and every row keeps its line number for errors and stable ordering.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from influrec.data.badrows import BadRowPolicy, BadRows
from influrec.data.delimited import EXAMPLE_MAP, TextBlock, stream_delimited
from influrec.data.metadata import read_item_metadata
from influrec.data.parsing import EncodedColumns, EventBuilder, FieldBatch
from influrec.data.rowreaders import jsonl_blocks, parquet_blocks, s3rec_blocks
from influrec.data.textio import open_binary
from influrec.errors import InputError

BLOCK_SIZE = 1 << 22  # bytes of text parsed per batch
ROWS_PER_BATCH = 1 << 16  # rows per batch for line-by-line formats


@dataclass(frozen=True)
class ColumnMap:
    """Which source column holds each canonical field; :meth:`parse` reads the text form
    ``user=uid,item=sku,...``."""

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
                    f"column map: cannot read {part!r}; expected FIELD=COLUMN with FIELD one of "
                    f"{', '.join(cls.__dataclass_fields__)} (e.g. {EXAMPLE_MAP})",
                    setting="column_map",
                )
            fields[key.strip()] = column.strip()
        missing = [k for k in ("user", "item") if k not in fields]
        if missing:
            raise InputError(
                f"the column map must name the {' and '.join(missing)} column(s), got {text!r}",
                setting="column_map",
            )
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
    blocks: Iterator[TextBlock],
    mapping: dict[str, str],
    *,
    attrs: dict[str, str] | None = None,
) -> EventBuilder:
    try:
        for block in blocks:
            cols = block.columns
            get = {field: cols[column] for field, column in mapping.items()}
            builder.add(
                FieldBatch(
                    lines=block.lines,
                    user=get["user"],
                    item=get["item"],
                    behavior=get.get("behavior"),
                    time=get.get("time"),
                    value=get.get("value"),
                    item_attrs={name: cols[col] for name, col in (attrs or {}).items()},
                    blank=block.blank,
                    bad_encoding=block.bad_encoding,
                    invalid=block.invalid,
                    text=block.text,
                )
            )
    finally:
        blocks.close()  # type: ignore[attr-defined]  # close the file now, even after an error
    return builder


def _delimited(
    path: Path, *, delimiter: str, names: list[str] | None, wanted: list[str]
) -> Iterator[TextBlock]:
    return stream_delimited(
        path, delimiter=delimiter, names=names, wanted=wanted, block_size=BLOCK_SIZE
    )


def read_movielens(path: Path, bad: BadRows, options: ReadOptions) -> EventBuilder:
    """MovieLens ratings: ml-100k ``u.data``, ml-1m ``ratings.dat``, ml-10m+ ``ratings.csv``.

    behavior = ``rate``, value = the rating. A ``::`` file with three fields (user, movie,
    rating; no timestamp) is read in file order.
    """
    name = path.name.removesuffix(".gz")
    if name.endswith(".csv"):
        names, delimiter = None, ","
        mapping = {"user": "userId", "item": "movieId", "value": "rating", "time": "timestamp"}
    elif n_fields := _double_colon_fields(path):
        delimiter = "::"
        names = ["user", "item", "value", "time"][:n_fields]
        mapping = {k: k for k in names}
    else:
        names, delimiter = ["user", "item", "value", "time"], "\t"
        mapping = {k: k for k in names}
    builder = EventBuilder(bad, behavior="rate", time_unit="s")
    blocks = _delimited(path, delimiter=delimiter, names=names, wanted=list(mapping.values()))
    return _feed(builder, blocks, mapping)


def _double_colon_fields(path: Path, sample: int = 100) -> int:
    """Fields per line of a ``::`` file (the most common count among its first non-blank
    lines, the larger on a tie), 0 when those lines have no ``::``."""
    counts: Counter[int] = Counter()
    with open_binary(path) as raw, io.BufferedReader(raw) as lines:
        for line in lines:
            if line.strip():
                counts[line.count(b"::") + 1 if b"::" in line else 0] += 1
            if counts.total() >= sample:
                break
    n_fields = max(counts, key=lambda n: (counts[n], n)) if counts else 0  # a tie: more fields
    return min(n_fields, 4) if n_fields >= 3 else 0


def read_taobao(path: Path, bad: BadRows, options: ReadOptions) -> EventBuilder:
    """Taobao ``UserBehavior.csv``: user, item, category, behavior (pv/buy/cart/fav), timestamp."""
    names = ["user", "item", "category", "behavior", "time"]
    blocks = _delimited(path, delimiter=",", names=names, wanted=names)
    mapping = {k: k for k in names if k != "category"}
    builder = EventBuilder(bad, time_unit="s")
    return _feed(builder, blocks, mapping, attrs={"category": "category"})


def read_retailrocket(path: Path, bad: BadRows, options: ReadOptions) -> EventBuilder:
    """RetailRocket ``events.csv``: timestamp (ms), visitorid, event, itemid, transactionid."""
    mapping = {"time": "timestamp", "user": "visitorid", "behavior": "event", "item": "itemid"}
    blocks = _delimited(path, delimiter=",", names=None, wanted=list(mapping.values()))
    return _feed(EventBuilder(bad, time_unit="ms"), blocks, mapping)


def read_sasrec(path: Path, bad: BadRows, options: ReadOptions) -> EventBuilder:
    """SASRec/BERT4Rec ``user item`` lines; line order is time order (no timestamps)."""
    blocks = _delimited(path, delimiter=" ", names=["user", "item"], wanted=["user", "item"])
    builder = EventBuilder(bad, behavior="interact")
    return _feed(builder, blocks, {"user": "user", "item": "item"})


def read_s3rec(path: Path, bad: BadRows, options: ReadOptions) -> EventBuilder:
    """S3-Rec ``user item item ...`` lines, one line per user, items in time order."""
    builder = EventBuilder(bad, behavior="interact")
    return _feed(builder, s3rec_blocks(path, ROWS_PER_BATCH), {"user": "user", "item": "item"})


def _require_map(options: ReadOptions, fmt: str) -> ColumnMap:
    if options.column_map is None:
        raise InputError(
            f"format {fmt} needs a column map, e.g. {EXAMPLE_MAP}", setting="column_map"
        )
    return options.column_map


def read_csv(path: Path, bad: BadRows, options: ReadOptions) -> EventBuilder:
    """Any delimited file with a header row; the column map says which column is which."""
    mapping = _require_map(options, "csv").columns()
    wanted = list(dict.fromkeys(mapping.values()))
    blocks = _delimited(path, delimiter=options.delimiter, names=None, wanted=wanted)
    return _feed(EventBuilder(bad, time_unit=options.time_unit), blocks, mapping)


def read_parquet(path: Path, bad: BadRows, options: ReadOptions) -> EventBuilder:
    """A Parquet file; the column map says which column is which. ``line`` = 1-based row number."""
    mapping = _require_map(options, "parquet").columns()
    blocks = parquet_blocks(path, mapping, ROWS_PER_BATCH)
    return _feed(EventBuilder(bad, time_unit=options.time_unit), blocks, mapping)


def read_jsonl(path: Path, bad: BadRows, options: ReadOptions) -> EventBuilder:
    """JSON lines (one object per line); the column map says which key is which."""
    mapping = _require_map(options, "jsonl").columns()
    keys = list(dict.fromkeys(mapping.values()))
    required = [key for field, key in mapping.items() if field != "value"]
    blocks = jsonl_blocks(path, keys, required, ROWS_PER_BATCH)
    return _feed(EventBuilder(bad, time_unit=options.time_unit), blocks, mapping)


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
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InputError(f"{path}: cannot read as {fmt}: {exc}") from exc
    bad.fill_examples()
    columns = builder.finish()
    meta = read_item_metadata(path, fmt, columns, items_file=options.items_file)
    source = {"path": str(path), "format": fmt, "time_unit": builder.time_unit}
    return LoadedLog(columns=columns, bad=bad, item_meta=meta, source=source)
