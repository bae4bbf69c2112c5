"""One example per kind of bad input found by probing `influrec data prepare`: each must end in
bad rows (skip) or one clear InputError naming the file and line, never a traceback."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from influrec.cli.main import main
from influrec.data.loaders import ColumnMap, ReadOptions, read_log
from influrec.data.times import MAX_SECONDS
from influrec.errors import BadRowError, InputError

MAP = ColumnMap.parse("user=uid,item=sku,time=ts")


def read(path: Path, fmt: str, policy: str = "skip", **options: object):
    opts = ReadOptions(on_bad_rows=policy, **options)  # type: ignore[arg-type]
    if fmt in ("csv", "jsonl", "parquet") and "column_map" not in options:
        opts = ReadOptions(on_bad_rows=policy, column_map=MAP, **options)  # type: ignore[arg-type]
    return read_log(path, fmt, opts)


def write_log(path: Path, times: list[str], fmt: str) -> Path:
    rows = [(f"u{i}", f"s{i}", t) for i, t in enumerate(times)]
    if fmt == "csv":
        path.write_text("uid,sku,ts\n" + "".join(f"{u},{s},{t}\n" for u, s, t in rows))
    elif fmt == "jsonl":
        path.write_text(
            "".join(json.dumps({"uid": u, "sku": s, "ts": t}) + "\n" for u, s, t in rows)
        )
    else:
        table = pa.table({"uid": [r[0] for r in rows], "sku": [r[1] for r in rows]})
        pq.write_table(table.append_column("ts", pa.array(times, pa.string())), path)
    return path


FIRST_LINE = {"csv": 2, "jsonl": 1, "parquet": 1}  # line (row) number of the first data row


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
@pytest.mark.parametrize("odd", ["notatime", "NULL", "", "2020-09-13T12:26:40Z"])
def test_one_odd_time_among_epoch_numbers_is_a_bad_row_of_its_own(
    tmp_path: Path, fmt: str, odd: str
) -> None:
    times = ["1600000000", odd, "1600000001", "1600000002"]
    path = write_log(tmp_path / f"log.{fmt}", times, fmt)
    log = read(path, fmt)
    assert log.source["time_unit"] == "s"
    assert log.columns.timestamp.tolist() == [1600000000, 1600000001, 1600000002]
    reason = "missing_time" if odd == "" else "bad_time"
    assert dict(log.bad.counts) == {reason: 1}
    with pytest.raises(BadRowError) as error:
        read(path, fmt, "error")
    assert (error.value.line, error.value.reason) == (FIRST_LINE[fmt] + 1, reason)


def test_iso_column_with_one_epoch_number_stays_iso(tmp_path: Path) -> None:
    times = ["2020-09-13T12:26:40Z", "1600000000", "2020-09-13 12:26:41", "2020-09-13T12:26:42"]
    log = read(write_log(tmp_path / "log.csv", times, "csv"), "csv")
    assert log.source["time_unit"] == "iso"
    assert log.columns.timestamp.tolist() == [1600000000, 1600000001, 1600000002]
    assert [e["line"] for e in log.bad.examples] == [3]


def test_guess_waits_for_a_block_with_times_that_parse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("influrec.data.loaders.BLOCK_SIZE", 64)  # first blocks: bad times only
    times = ["x"] * 6 + ["1600000000123"] * 20
    log = read(write_log(tmp_path / "log.csv", times, "csv"), "csv")
    assert log.source["time_unit"] == "ms"
    assert log.bad.counts["bad_time"] == 6 and len(log.columns.row) == 20


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_column_mixing_seconds_and_milliseconds_is_refused(tmp_path: Path, fmt: str) -> None:
    times = ["1600000000", "1600000001", "1600000002000", "1600000003"]
    path = write_log(tmp_path / f"log.{fmt}", times, fmt)
    with pytest.raises(
        InputError, match=r"mixes epoch seconds .* and milliseconds .*time unit"
    ) as e:
        read(path, fmt)
    assert e.value.setting == "time_unit"
    log = read(path, fmt, time_unit="s")  # told the unit: the other magnitude is a bad row
    assert dict(log.bad.counts) == {"bad_time": 1}


def test_guess_waits_while_no_time_is_in_range(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("influrec.data.loaders.BLOCK_SIZE", 64)
    times = ["-5"] * 6 + ["1600000000123"] * 20  # first blocks: numbers, none of them a time
    log = read(write_log(tmp_path / "log.csv", times, "csv"), "csv")
    assert log.source["time_unit"] == "ms" and dict(log.bad.counts) == {"bad_time": 6}


def test_mixing_found_in_a_later_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("influrec.data.loaders.BLOCK_SIZE", 64)
    times = ["1600000000"] * 20 + ["1600000000000"] * 3
    with pytest.raises(InputError, match=r"'1600000000' on line 2\).*'1600000000000' on line 22"):
        read(write_log(tmp_path / "log.csv", times, "csv"), "csv")


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
@pytest.mark.parametrize("far", ["99999999999999999", "-5", "1e300", "inf", "nan"])
def test_times_out_of_range_are_bad_rows(tmp_path: Path, fmt: str, far: str) -> None:
    path = write_log(tmp_path / f"log.{fmt}", ["1600000000", far, "1600000001"], fmt)
    log = read(path, fmt)
    assert dict(log.bad.counts) == {"bad_time": 1}
    assert str(MAX_SECONDS) in str(log.bad.examples[0]["expected"])
    assert log.columns.timestamp.tolist() == [1600000000, 1600000001]


def test_iso_times_out_of_range_are_bad_rows(tmp_path: Path) -> None:
    times = ["2020-01-01T00:00:00", "1969-12-31T23:59:59", "2300-01-01T00:00:00"]
    log = read(write_log(tmp_path / "log.csv", times, "csv"), "csv", time_unit="iso")
    assert dict(log.bad.counts) == {"bad_time": 2}
    assert "1970-01-01 to 2262-04-11" in str(log.bad.examples[0]["expected"])


GZ_CASES = [
    ("u.data.gz", "movielens", b"1\t10\t5\t100\n" * 5000),
    ("ratings.dat.gz", "movielens", b"1::10::5::100\n" * 5000),
    ("UserBehavior.csv.gz", "taobao", b"1,100,7,pv,1511544070\n" * 5000),
    (
        "events.csv.gz",
        "retailrocket",
        b"timestamp,visitorid,event,itemid\n" + b"1,2,view,3\n" * 5000,
    ),
    ("seq.txt.gz", "sasrec", b"1 5\n" * 5000),
    ("Beauty.txt.gz", "s3rec", b"1 5 6\n" * 5000),
    ("log.csv.gz", "csv", b"uid,sku,ts\n" + b"u,s,1600000000\n" * 5000),
    ("log.jsonl.gz", "jsonl", b'{"uid": "u", "sku": "s", "ts": 5}\n' * 5000),
]


@pytest.mark.parametrize(("name", "fmt", "data"), GZ_CASES)
@pytest.mark.parametrize("cut", [20, 0.6])
def test_truncated_gz_is_one_clear_error(
    tmp_path: Path, name: str, fmt: str, data: bytes, cut: float
) -> None:
    packed = gzip.compress(data)
    path = tmp_path / name
    path.write_bytes(packed[: int(cut * len(packed)) if cut < 1 else int(cut)])
    for policy in ("error", "skip"):
        with pytest.raises(InputError, match=rf"{name}: .*truncated or corrupt") as error:
            read(path, fmt, policy)
        assert not isinstance(error.value, BadRowError)


def test_corrupt_gz_is_one_clear_error(tmp_path: Path) -> None:
    packed = bytearray(gzip.compress(b"1\t10\t5\t100\n" * 100))
    packed[-6] ^= 0xFF  # damage the CRC
    path = tmp_path / "u.data.gz"
    path.write_bytes(bytes(packed))
    with pytest.raises(InputError, match="truncated or corrupt"):
        read(path, "movielens")


NON_UTF8 = [
    ("log.csv", "csv", b"uid,sku,ts\nu1,s1,5\nu2,s\xe92,6\nu3,s3,7\n", 3),
    ("u.data", "movielens", b"1\t10\t5\t100\n2\t1\xe91\t4\t200\n3\t12\t4\t300\n", 2),
    ("ratings.dat", "movielens", b"1::10::5::100\n2::1\xe91::4::200\n3::12::4::300\n", 2),
    ("UserBehavior.csv", "taobao", b"1,10,7,pv,1511544070\n2,1\xe9,7,pv,1511544071\n", 2),
    (
        "events.csv",
        "retailrocket",
        b"timestamp,visitorid,event,itemid\n1,2,view,3\n1,\xff,view,3\n",
        3,
    ),
    ("seq.txt", "sasrec", b"1 5\n2 \xe96\n3 7\n", 2),
    ("Beauty.txt", "s3rec", b"1 5 6\n2 \xe96 7\n3 7 8\n", 2),
    ("log.jsonl", "jsonl", b'{"uid":"a","sku":"b","ts":5}\n{"uid":"\xe9","sku":"b","ts":5}\n', 2),
    ("short.csv", "csv", b"uid,sku,ts\nu1,s1,5\nu2,\xe9\nu3,s3,7\n", 3),  # also too few fields
]


@pytest.mark.parametrize(("name", "fmt", "data", "line"), NON_UTF8)
def test_one_non_utf8_row_is_a_bad_row(
    tmp_path: Path, name: str, fmt: str, data: bytes, line: int
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    log = read(path, fmt)
    assert set(log.bad.counts) == {"bad_encoding"}
    assert log.bad.examples[0]["line"] == line
    assert "\\x" in str(log.bad.examples[0]["text"])  # the bytes as they are in the file
    assert line not in log.columns.row.tolist()
    with pytest.raises(BadRowError) as error:
        read(path, fmt, "error")
    assert (error.value.line, error.value.reason) == (line, "bad_encoding")


def test_non_utf8_byte_in_a_later_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("influrec.data.loaders.BLOCK_SIZE", 64)
    lines = [b"%d\t%d\t1\t%d" % (i, i, i) for i in range(1, 100)]
    lines[70] = b"71\t7\xc3\t1\t71"  # a cut multi-byte character
    path = tmp_path / "u.data"
    path.write_bytes(b"\n".join(lines) + b"\n")
    log = read(path, "movielens")
    assert dict(log.bad.counts) == {"bad_encoding": 1} and log.bad.examples[0]["line"] == 71
    assert log.columns.row.tolist() == [i for i in range(1, 100) if i != 71]


@pytest.mark.parametrize("kind", [pa.list_(pa.string()), pa.struct([("a", pa.int64())])])
def test_parquet_nested_column_mapped_as_a_field(tmp_path: Path, kind: pa.DataType) -> None:
    value = [["x"], ["y"]] if pa.types.is_list(kind) else [{"a": 1}, {"a": 2}]
    table = pa.table({"uid": ["a", "b"], "sku": pa.array(value, kind), "ts": [5, 6]})
    pq.write_table(table, tmp_path / "log.parquet")
    with pytest.raises(
        InputError, match=r"column 'sku' \(mapped to item\) has type (list|struct)<"
    ):
        read(tmp_path / "log.parquet", "parquet")


def test_parquet_binary_column_with_a_non_utf8_value(tmp_path: Path) -> None:
    table = pa.table(
        {"uid": pa.array([b"a", b"\xe9", b"c"]), "sku": ["x", "y", "z"], "ts": [5] * 3}
    )
    pq.write_table(table, tmp_path / "log.parquet")
    log = read(tmp_path / "log.parquet", "parquet")
    assert dict(log.bad.counts) == {"bad_encoding": 1} and log.bad.examples[0]["line"] == 2
    assert log.columns.users == ["a", "c"]


def prepare_cli(args: list[str], out: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["data", "prepare", *args, "--out", str(out)])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    "content", [b"", b"\x00\x9f\x12garbage\xff\xfe\n\x01", b"name,title\nx,y\n", b"\n\n"]
)
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_bad_items_file_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, suffix: str
) -> None:
    log = write_log(tmp_path / "log.csv", ["1600000000"], "csv")
    items = tmp_path / f"items{suffix}"
    items.write_bytes(content)
    args = [str(log), "--format", "csv", "--map", "user=uid,item=sku,time=ts"]
    code, err = prepare_cli([*args, "--items-file", str(items)], tmp_path / "out", capsys)
    assert code == 2 and "Traceback" not in err
    assert f"items{suffix}" in err and "item" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("name", "fmt", "text"),
    [
        ("log.csv", "csv", "uid,sku,ts\nu1,s1,5\n"),
        ("events.csv", "retailrocket", "timestamp,visitorid,event,itemid\n5000,u1,view,s1\n"),
        ("u.data", "movielens", "u1\ts1\t4\t5\n"),
        ("UserBehavior.csv", "taobao", "u1,s1,7,pv,5\n"),
        ("seq.txt", "sasrec", "u1 s1\n"),
        ("log.jsonl", "jsonl", '{"uid": "u1", "sku": "s1", "ts": 5}\n'),
    ],
)
def test_utf8_bom_before_the_first_line_is_skipped(
    tmp_path: Path, name: str, fmt: str, text: str
) -> None:
    path = tmp_path / name
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    log = read(path, fmt, "error")
    assert (log.columns.users, log.columns.items) == (["u1"], ["s1"])


def test_jsonl_map_key_that_no_row_has(tmp_path: Path) -> None:
    path = write_log(tmp_path / "log.jsonl", ["5", "6"], "jsonl")
    for policy in ("error", "skip"):
        with pytest.raises(
            InputError, match=r"no row has key 'user'.*keys seen: 'uid', 'sku', 'ts'"
        ) as error:
            read(path, "jsonl", policy, column_map=ColumnMap.parse("user=user,item=sku,time=ts"))
        assert error.value.setting == "column_map"


def test_jsonl_optional_value_key_may_be_absent_from_every_row(tmp_path: Path) -> None:
    path = write_log(tmp_path / "log.jsonl", ["5", "6"], "jsonl")
    mapping = ColumnMap.parse("user=uid,item=sku,time=ts,value=price")
    log = read(path, "jsonl", "error", column_map=mapping)
    assert len(log.columns.row) == 2 and np.isnan(log.columns.value).all()


def test_bad_row_text_is_the_line_as_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text('extra,ts,uid,sku\nq,5,u1,s1\n"x",  late ,u2,s2\n')
    with pytest.raises(BadRowError) as error:
        read(path, "csv", "error")
    assert (error.value.line, error.value.text) == (3, '"x",  late ,u2,s2')
    log = read(path, "csv")
    assert log.bad.examples[0]["text"] == '"x",  late ,u2,s2'


def test_lines_stay_right_after_quoted_multiline_fields(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    rows = [
        "uid,sku,note,ts",  # 1
        'u1,s1,"two\nlines",5',  # 2-3
        "u2,s2,x,bad",  # 4
        "",  # 5
        'u3,s3,"a\r\nb\nc",7',  # 6-8
        "u4,s4",  # 9
        "u5,s5,y,9",  # 10
    ]
    path.write_bytes(("\n".join(rows) + "\n").encode())
    log = read(path, "csv")
    assert log.columns.row.tolist() == [2, 6, 10]
    assert [(e["line"], e["reason"]) for e in log.bad.examples] == [
        (4, "bad_time"),
        (9, "wrong_field_count"),
    ]
    assert log.columns.blank_lines == 1


@pytest.mark.parametrize(
    ("name", "fmt", "data"),
    [
        ("u.data", "movielens", "1\t10\t5\t100\n\n2\t11\t4\t200\n"),
        ("ratings.dat", "movielens", "1::10::5::100\n\n2::11::4::200\n"),
        ("UserBehavior.csv", "taobao", "1,10,7,pv,5\n\n2,11,7,pv,6\n"),
        ("seq.txt", "sasrec", "1 5\n\n2 6\n"),
        ("Beauty.txt", "s3rec", "1 5\n\n2 6\n"),
        ("log.csv", "csv", "uid,sku,ts\nu1,s1,5\n\nu2,s2,6\n"),
        ("log.jsonl", "jsonl", '{"uid":"a","sku":"b","ts":5}\n\n{"uid":"c","sku":"d","ts":6}\n'),
    ],
)
def test_blank_lines_are_counted_in_every_text_format(
    tmp_path: Path, name: str, fmt: str, data: str
) -> None:
    path = tmp_path / name
    path.write_text(data)
    log = read(path, fmt, "error")
    assert log.columns.blank_lines == 1 and len(log.columns.row) == 2


def test_missing_user_and_item_is_not_a_blank_line(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("uid,sku,ts\n,,5\nu1,s1,6\n")
    log = read(path, "csv")
    assert dict(log.bad.counts) == {"missing_user": 1} and log.columns.blank_lines == 0


def test_each_bad_row_counted_once_under_its_first_problem(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("uid,sku,ts\n,s1,never\nu2,,later\nu3,s3,7\n")
    log = read(path, "csv")
    assert dict(log.bad.counts) == {"missing_user": 1, "missing_item": 1}


def test_no_events_left_reports_the_bad_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "log.csv"
    log.write_text("uid,sku,ts\n" + "u,s,x\n" * 12 + ",s,5\n" * 3 + "\n")
    args = [str(log), "--format", "csv", "--map", "user=uid,item=sku,time=ts"]
    code, err = prepare_cli([*args, "--on-bad-rows", "skip"], tmp_path / "out", capsys)
    assert code == 2 and not (tmp_path / "out").exists()
    assert "16 rows read" in err and "12 bad_time, 3 missing_user, 1 blank_line" in err
    assert "line 2 bad_time" in err


def test_crlf_inside_a_quoted_field_at_every_block_boundary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pyarrow drops the "\n" of a quoted "\r\n" cut between two blocks; the lines must not shift
    path = tmp_path / "log.csv"
    path.write_bytes(
        b'uid,note,sku,ts\r\nu1,"a\r\nb",s1,5\r\nu2,"c\r\nd\r\ne",s2,6\r\nu3,x,s3,7\r\n'
    )
    for size in range(32, 96):
        monkeypatch.setattr("influrec.data.loaders.BLOCK_SIZE", size)
        log = read(path, "csv", "error")
        assert log.columns.row.tolist() == [2, 4, 7], size


def test_values_beyond_the_model_bound_are_bad_rows(tmp_path: Path) -> None:
    """A value the model cannot read (its layer norms would square 1e20 to inf) is a bad row;
    inf and nan stay what they were (null after preparation)."""
    path = tmp_path / "log.csv"
    rows = ["u1,s1,1600000000,3.5", "u1,s2,1600000001,1e20", "u1,s3,1600000002,-2e15"]
    rows += ["u1,s4,1600000003,inf", "u1,s5,1600000004,1e15"]
    path.write_text("uid,sku,ts,price\n" + "\n".join(rows) + "\n")
    mapping = ColumnMap.parse("user=uid,item=sku,time=ts,value=price")
    log = read(path, "csv", column_map=mapping)
    assert dict(log.bad.counts) == {"bad_value": 2}
    assert log.columns.row.tolist() == [2, 5, 6]
    with pytest.raises(BadRowError, match=r"magnitude at most 1e\+15") as error:
        read(path, "csv", "error", column_map=mapping)
    assert error.value.line == 3


def test_a_bad_row_names_the_flag_only_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_log(tmp_path / "log.csv", ["1600000000", "soon", "1600000002"], "csv")
    with pytest.raises(BadRowError) as error:
        read(path, "csv", "error")
    assert "--" not in str(error.value) and str(error.value).startswith(f"{path}:")
    args = [str(path), "--format", "csv", "--map", "user=uid,item=sku,time=ts"]
    code, err = prepare_cli(args, tmp_path / "out", capsys)
    assert code == 2 and str(error.value) in err
    assert "Fix the row, or pass --on-bad-rows skip to drop and count such rows." in err


COLUMN_MAP_ERRORS = [
    ("user=uid", "the column map must name the item column(s), got 'user=uid'"),
    ("user=uid,sku", "column map: cannot read 'sku'; expected FIELD=COLUMN"),
    ("user=uid,price=p,item=sku", "column map: cannot read 'price=p'"),
]


@pytest.mark.parametrize(("text", "says"), COLUMN_MAP_ERRORS)
def test_a_bad_column_map_names_the_setting_not_a_flag(text: str, says: str) -> None:
    with pytest.raises(InputError) as error:
        ColumnMap.parse(text)
    assert error.value.setting == "column_map" and says in str(error.value)
    assert "--" not in str(error.value)


def test_a_missing_column_map_and_a_missing_column_name_the_setting(tmp_path: Path) -> None:
    path = write_log(tmp_path / "log.csv", ["1600000000"], "csv")
    with pytest.raises(InputError, match="format csv needs a column map") as error:
        read_log(path, "csv", ReadOptions())
    assert error.value.setting == "column_map"
    with pytest.raises(InputError, match=r"no column 't'.*check the column map") as error:
        read(path, "csv", column_map=ColumnMap.parse("user=uid,item=sku,time=t"))
    assert error.value.setting == "column_map"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            ["--min-user-events", "-1"],
            "min_user_events must be >= 0, got -1; set it with --min-user-events",
        ),
        (
            ["--min-item-events", "-3"],
            "min_item_events must be >= 0, got -3; set it with --min-item-events",
        ),
        (["--fill-value", "average"], "got 'average'; set it with --fill-value"),
        (
            ["--clip-quantile", "0.7"],
            "clip_quantile must be in (0, 0.5), got 0.7; set it with --clip-quantile",
        ),
        (["--map", "user=uid"], "must name the item column(s), got 'user=uid'; set it with --map"),
        (
            ["--map", "user=uid,item=sku,time=t"],
            "check the column map (e.g. user=uid,item=sku,time=ts); set it with --map",
        ),
        (
            ["--map", "user=uid,item=sku,time=ts"],
            "which one it is (times of another magnitude "
            "then become bad_time rows); set it with --time-unit",
        ),
    ],
)
def test_prepare_names_the_flag_of_the_bad_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    mixed = ["1600000000", "1600000001", "1600000002000"]
    log = write_log(tmp_path / "log.csv", mixed, "csv")
    code, err = prepare_cli([str(log), "--format", "csv", *args], tmp_path / "out", capsys)
    assert code == 2 and says in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
