"""Property: valid logs with a few corrupted rows of every kind, in every reader's format.

Skip mode keeps exactly the good rows (the prepared events equal them, with their lines) and
counts each bad row once by its reason; error mode stops at the FIRST bad row's real line and
writes nothing; no run ends in anything but InputError.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from influrec.cli.main import main
from influrec.data import loaders
from influrec.data.dataset import prepare
from influrec.data.loaders import ColumnMap, ReadOptions, read_log
from influrec.data.preprocess import PrepareConfig
from influrec.errors import BadRowError

REASON = {
    "bad_time": "bad_time",
    "far_time": "bad_time",
    "bad_value": "bad_value",
    "missing_user": "missing_user",
    "missing_item": "missing_item",
    "wrong_fields": "wrong_field_count",
    "bad_json": "bad_json",
    "non_utf8": "bad_encoding",
}
FAR_TIMES = ["99999999999999999", "-5", "1e300"]
BAD = "~BAD~"  # written as the byte 0xE9, which is not UTF-8 on its own


@dataclass(frozen=True)
class Row:
    kind: str  # "good", "blank" or a key of REASON
    user: str
    item: str
    time: int
    value: float | None
    far: str  # the out-of-range time of a "far_time" row
    note: str = "x"  # a quoted field of the quoted-CSV format (may hold newlines)


@dataclass(frozen=True)
class Format:
    name: str  # file name
    fmt: str
    kinds: tuple[str, ...]  # corruptions that apply
    header: bytes | None
    line: Callable[[Row], bytes] | None  # one row as a text line (None: Parquet)
    has_time: bool = True
    has_value: bool = True
    map: str | None = None


def _time(row: Row) -> str:
    return {"bad_time": "notatime", "far_time": row.far}.get(row.kind, str(row.time))


def _fields(row: Row) -> list[str]:
    user = {"missing_user": "", "non_utf8": row.user + BAD}.get(row.kind, row.user)
    item = "" if row.kind == "missing_item" else row.item
    value = "five" if row.kind == "bad_value" else "" if row.value is None else str(row.value)
    return [user, item, _time(row), value]


def _join(sep: str, order: Callable[[list[str]], list[str]]) -> Callable[[Row], bytes]:
    def line(row: Row) -> bytes:
        fields = order(_fields(row))
        if row.kind == "wrong_fields":
            fields = fields[:-1]
        text = sep.join(fields).replace("NOTE", '"' + row.note + '"')
        return text.encode().replace(BAD.encode(), b"\xe9")

    return line


def _json_line(row: Row) -> bytes:
    if row.kind == "bad_json":
        return b'{"uid": "' + row.user.encode() + b'", broken'
    user, item, time, value = _fields(row)
    record = {"uid": user, "sku": item, "ts": int(time) if row.kind == "good" else time}
    record["price"] = None if value == "" else value if row.kind == "bad_value" else float(value)
    return json.dumps(record, ensure_ascii=False).encode().replace(BAD.encode(), b"\xe9")


TEXT_KINDS = ("bad_time", "far_time", "missing_user", "missing_item", "wrong_fields", "non_utf8")
FORMATS = {
    "csv": Format(
        "log.csv",
        "csv",
        (*TEXT_KINDS, "bad_value", "blank"),
        b"uid,sku,ts,price",
        _join(",", lambda f: f),
        map="user=uid,item=sku,time=ts,value=price",
    ),
    "csv-quoted": Format(
        "notes.csv",
        "csv",
        (*TEXT_KINDS, "bad_value", "blank"),
        b"uid,note,sku,ts,price",
        _join(",", lambda f: [f[0], "NOTE", *f[1:]]),
        map="user=uid,item=sku,time=ts,value=price",
    ),
    "jsonl": Format(
        "log.jsonl",
        "jsonl",
        ("bad_time", "far_time", "missing_user", "missing_item", "bad_value", "bad_json"),
        None,
        _json_line,
        map="user=uid,item=sku,time=ts,value=price",
    ),
    "parquet": Format(
        "log.parquet",
        "parquet",
        ("bad_time", "far_time", "missing_user", "missing_item", "bad_value"),
        None,
        None,
        map="user=uid,item=sku,time=ts,value=price",
    ),
    "movielens": Format(
        "u.data",
        "movielens",
        (*TEXT_KINDS, "bad_value", "blank"),
        None,
        _join("\t", lambda f: [f[0], f[1], f[3], f[2]]),
    ),
    "movielens-1m": Format(
        "ratings.dat",
        "movielens",
        (*TEXT_KINDS, "bad_value", "blank"),
        None,
        _join("::", lambda f: [f[0], f[1], f[3], f[2]]),
    ),
    "taobao": Format(
        "UserBehavior.csv",
        "taobao",
        (*TEXT_KINDS, "blank"),
        None,
        _join(",", lambda f: [f[0], f[1], "7", "pv", f[2]]),
        has_value=False,
    ),
}


def _sasrec_line(row: Row) -> bytes:
    fields = _fields(row)[:2] + (["extra"] if row.kind == "wrong_fields" else [])
    return " ".join(fields).encode().replace(BAD.encode(), b"\xe9")


FORMATS["sasrec"] = Format(
    "seq.txt",
    "sasrec",
    ("wrong_fields", "non_utf8", "blank"),
    None,
    _sasrec_line,
    has_time=False,
    has_value=False,
)


def rows_strategy(spec: Format) -> st.SearchStrategy[list[Row]]:
    kinds = st.sampled_from(["good"] * 4 + list(spec.kinds))
    row = st.builds(
        Row,
        kind=kinds,
        user=st.sampled_from(["u1", "u2", "é3", "user-4"]),
        item=st.sampled_from(["i1", "i2", "ü3", "item-4"]),
        time=st.integers(1_400_000_000, 1_700_000_000),
        value=st.sampled_from([None, 1.0, 3.5]) if spec.has_value else st.none(),
        far=st.sampled_from(FAR_TIMES),
        note=st.sampled_from(["x", "two\nlines", "a\r\nb\nc", "with, comma"]),
    )
    rows = st.lists(row, min_size=1, max_size=25)
    if spec.name == "ratings.dat":  # the layout (3 or 4 fields) is the most common one
        rows = rows.filter(
            lambda rs: (
                sum(r.kind == "wrong_fields" for r in rs) * 2 <= sum(r.kind != "blank" for r in rs)
            )
        )
    return rows


def write(spec: Format, rows: list[Row], folder: Path) -> tuple[Path, list[int]]:
    """The file, and each row's line (row number for Parquet)."""
    path = folder / spec.name
    if spec.line is None:
        cols = list(zip(*(_fields(r) for r in rows), strict=True))
        names = ["uid", "sku", "ts", "price"]
        table = pa.table(
            {n: pa.array(list(c), pa.string()) for n, c in zip(names, cols, strict=True)}
        )
        pq.write_table(table, path)
        return path, list(range(1, len(rows) + 1))
    texts = [b"" if r.kind == "blank" else spec.line(r) for r in rows]
    path.write_bytes(b"\n".join(([spec.header] if spec.header else []) + texts) + b"\n")
    line, lines = (2 if spec.header is not None else 1), []
    for text in texts:  # a quoted field with newlines spans several lines
        lines.append(line)
        line += 1 + text.count(b"\n")
    return path, lines


@contextmanager
def block_size(size: int) -> Iterator[None]:
    saved = loaders.BLOCK_SIZE
    loaders.BLOCK_SIZE = size
    try:
        yield
    finally:
        loaders.BLOCK_SIZE = saved


def check_rows(spec: Format, rows: list[Row], folder: Path, block: int) -> None:
    path, lines = write(spec, rows, folder)
    reasons = REASON
    good = [(r, line) for r, line in zip(rows, lines, strict=True) if r.kind == "good"]
    bad = [
        (reasons[r.kind], line) for r, line in zip(rows, lines, strict=True) if r.kind in reasons
    ]
    options = ReadOptions(column_map=ColumnMap.parse(spec.map) if spec.map else None)
    with block_size(block):
        skip = ReadOptions(**{**options.__dict__, "on_bad_rows": "skip"})
        dataset = prepare(path, spec.fmt, read_options=skip, config=PrepareConfig(dedupe=False))
        events = dataset.events.select(["user_id", "item_id", "timestamp", "value", "row"])
        got = sorted((tuple(e.values()) for e in events.to_pylist()), key=lambda e: e[-1])
        want = [(r.user, r.item, r.time if spec.has_time else None, r.value, n) for r, n in good]
        if not spec.has_time:  # timestamps are per-user ordinals
            got = [(u, i, None, v, line) for u, i, _, v, line in got]
        assert got == want
        expected = Counter(reason for reason, _ in bad)
        if any(r.kind == "blank" for r in rows):
            expected["blank_line"] = sum(r.kind == "blank" for r in rows)
        assert dataset.stats["dropped"] == dict(expected)
        assert dataset.stats["rows_read"] == len(rows)
        check_error_mode(spec, path, options, bad, folder)


def check_error_mode(
    spec: Format, path: Path, options: ReadOptions, bad: list[tuple[str, int]], folder: Path
) -> None:
    if not bad:
        read_log(path, spec.fmt, options)
        return
    with pytest.raises(BadRowError) as error:
        read_log(path, spec.fmt, options)
    assert (error.value.reason, error.value.line) == min(bad, key=lambda b: b[1])
    out = folder / "out"
    mapping = ["--map", spec.map] if spec.map else []
    assert (
        main(["data", "prepare", str(path), "--format", spec.fmt, *mapping, "--out", str(out)]) == 2
    )
    assert not out.exists()


@pytest.mark.parametrize("name", list(FORMATS))
def test_skip_keeps_exactly_the_good_rows_and_error_stops_at_the_first_bad_one(
    name: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    spec = FORMATS[name]

    @settings(max_examples=50, deadline=None)
    @given(rows=rows_strategy(spec), block=st.sampled_from([64, 1 << 22]))
    def run(rows: list[Row], block: int) -> None:
        check_rows(spec, rows, tmp_path_factory.mktemp(name), block)

    run()
