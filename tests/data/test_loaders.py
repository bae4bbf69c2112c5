from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from influrec.data.loaders import ColumnMap, ReadOptions, read_log
from influrec.errors import BadRowError, InputError


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def events(path: Path, fmt: str, **options: object) -> list[tuple[str, str, str, int, float]]:
    cols = read_log(path, fmt, ReadOptions(**options)).columns  # type: ignore[arg-type]
    return [
        (cols.users[u], cols.items[i], cols.behaviors[b], int(t), float(v))
        for u, i, b, t, v in zip(
            cols.user, cols.item, cols.behavior, cols.timestamp, cols.value, strict=True
        )
    ]


def test_movielens_100k_tab_separated(tmp_path: Path) -> None:
    path = write(tmp_path / "u.data", "196\t242\t3\t881250949\n186\t302\t3.5\t891717742\n")
    assert events(path, "movielens") == [
        ("196", "242", "rate", 881250949, 3.0),
        ("186", "302", "rate", 891717742, 3.5),
    ]


def test_movielens_1m_double_colon_gzip(tmp_path: Path) -> None:
    path = tmp_path / "ratings.dat.gz"
    path.write_bytes(gzip.compress(b"1::1193::5::978300760\n1::661::3::978302109\n"))
    assert events(path, "movielens") == [
        ("1", "1193", "rate", 978300760, 5.0),
        ("1", "661", "rate", 978302109, 3.0),
    ]


def test_movielens_three_field_file_is_read_in_file_order(tmp_path: Path) -> None:
    path = write(tmp_path / "ratings.dat", "1::10::5\n2::10::4\n1::11::3\n")
    log = read_log(path, "movielens")
    assert log.columns.time_kind == "order"
    assert log.columns.timestamp.tolist() == [0, 0, 1]


def test_movielens_csv_and_item_metadata(tmp_path: Path) -> None:
    write(tmp_path / "ratings.csv", "userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n")
    write(tmp_path / "movies.csv", 'movieId,title,genres\n31,"Dangerous Minds, The (1995)",Drama\n')
    log = read_log(tmp_path / "ratings.csv", "movielens")
    assert events(tmp_path / "ratings.csv", "movielens") == [("1", "31", "rate", 1260759144, 2.5)]
    assert log.item_meta is not None
    assert log.item_meta.to_pylist() == [
        {"item_id": "31", "title": "Dangerous Minds, The (1995)", "genres": "Drama"}
    ]


def test_taobao_keeps_behaviours_and_category(tmp_path: Path) -> None:
    path = write(tmp_path / "UserBehavior.csv", "1,100,7,pv,1511544070\n1,100,7,buy,1511544080\n")
    log = read_log(path, "taobao")
    assert log.columns.behaviors == ["pv", "buy"]
    assert log.item_meta is not None
    assert log.item_meta.to_pylist() == [{"item_id": "100", "category": "7"}]


def test_retailrocket_milliseconds_become_seconds(tmp_path: Path) -> None:
    text = "timestamp,visitorid,event,itemid,transactionid\n1433221332117,257597,view,355908,\n"
    path = write(tmp_path / "events.csv", text)
    assert events(path, "retailrocket")[0][:4] == ("257597", "355908", "view", 1433221332)


def test_sasrec_and_s3rec_sequences_keep_line_order(tmp_path: Path) -> None:
    sasrec = write(tmp_path / "seq.txt", "1 5\n2 6\n1 7\n")
    cols = read_log(sasrec, "sasrec").columns
    assert cols.time_kind == "order"
    assert list(zip(cols.user.tolist(), cols.timestamp.tolist(), strict=True)) == [
        (0, 0),
        (1, 0),
        (0, 1),
    ]
    s3rec = write(tmp_path / "Beauty.txt", "1 1 2 3\n2 4 1\n")
    got = events(s3rec, "s3rec")
    assert [(u, i, t) for u, i, _, t, _ in got] == [
        ("1", "1", 0),
        ("1", "2", 1),
        ("1", "3", 2),
        ("2", "4", 0),
        ("2", "1", 1),
    ]


@pytest.mark.parametrize(
    ("raw", "unit", "expected"),
    [
        ("1511544070", "auto", 1511544070),
        ("1511544070123", "auto", 1511544070),
        ("1511544070.9", "s", 1511544070),
        ("2017-11-24T17:21:10Z", "auto", 1511544070),
        ("2017-11-24 19:21:10+02:00", "iso", 1511544070),
        ("2017-11-24T17:21:10", "iso", 1511544070),
    ],
)
def test_generic_csv_time_formats(tmp_path: Path, raw: str, unit: str, expected: int) -> None:
    path = write(tmp_path / "log.csv", f"uid,sku,ts,price\nu1,s1,{raw},9.5\n")
    got = events(
        path,
        "csv",
        column_map=ColumnMap.parse("user=uid,item=sku,time=ts,value=price"),
        time_unit=unit,
    )
    assert got == [("u1", "s1", "event", expected, 9.5)]


def test_generic_csv_with_quoted_fields_and_behaviour(tmp_path: Path) -> None:
    path = write(tmp_path / "log.csv", 'uid,sku,event,ts\n"a, b",x,click,10\n')
    got = events(
        path, "csv", column_map=ColumnMap.parse("user=uid,item=sku,behavior=event,time=ts")
    )
    assert got[0][:4] == ("a, b", "x", "click", 10)


def test_parquet_and_jsonl(tmp_path: Path) -> None:
    table = pa.table({"uid": [1, 2], "sku": ["a", "b"], "ts": [5, 6]})
    pq.write_table(table, tmp_path / "log.parquet")
    mapping = ColumnMap.parse("user=uid,item=sku,time=ts")
    assert [e[:4] for e in events(tmp_path / "log.parquet", "parquet", column_map=mapping)] == [
        ("1", "a", "event", 5),
        ("2", "b", "event", 6),
    ]
    lines = [
        json.dumps({"uid": 1, "sku": "a", "ts": 5}),
        "",
        json.dumps({"uid": 2, "sku": "b", "ts": 6}),
    ]
    path = write(tmp_path / "log.jsonl", "\n".join(lines) + "\n")
    log = read_log(path, "jsonl", ReadOptions(column_map=mapping))
    assert log.columns.row.tolist() == [1, 3]
    assert log.columns.items == ["a", "b"]


def test_column_map_errors() -> None:
    with pytest.raises(InputError, match="must name the item"):
        ColumnMap.parse("user=uid")
    with pytest.raises(InputError, match="expected FIELD=COLUMN"):
        ColumnMap.parse("user=uid,item=sku,colour=red")


def test_map_naming_a_missing_column_is_one_clear_error(tmp_path: Path) -> None:
    path = write(tmp_path / "log.csv", "uid,sku\n1,2\n")
    with pytest.raises(InputError, match=r"no column 'ts'.*\['uid', 'sku'\]"):
        read_log(path, "csv", ReadOptions(column_map=ColumnMap.parse("user=uid,item=sku,time=ts")))


def test_missing_empty_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_log(tmp_path / "nope.dat", "movielens")
    with pytest.raises(InputError, match="file is empty"):
        read_log(write(tmp_path / "u.data", ""), "movielens")
    with pytest.raises(InputError, match="unknown format 'excel'"):
        read_log(write(tmp_path / "x", "1"), "excel")


BAD_ROWS = [
    ("1\t10\t5\t100\n2\t11\t4\n3\t12\t3\t300\n", 2, "wrong_field_count", "4 fields, got 3"),
    ("1\t10\t5\t100\n2\t11\t4\tyesterday\n", 2, "bad_time", "epoch time"),
    ("1\t10\t5\t100\n\t11\t4\t200\n", 2, "missing_user", "a non-empty user id"),
    ("1\t10\t5\t100\n1\t\t4\t200\n", 2, "missing_item", "a non-empty item id"),
    ("1\t10\t5\t100\n\n1\t11\t4\t\n", 3, "missing_time", "a timestamp"),
    ("1\t10\tfive\t100\n", 1, "bad_value", "a number"),
]


@pytest.mark.parametrize(("text", "line", "reason", "expected"), BAD_ROWS)
def test_bad_row_stops_with_file_line_text_and_expectation(
    tmp_path: Path, text: str, line: int, reason: str, expected: str
) -> None:
    path = write(tmp_path / "u.data", text)
    with pytest.raises(BadRowError) as error:
        read_log(path, "movielens")
    assert (error.value.line, error.value.reason) == (line, reason)
    assert expected in error.value.expected
    assert str(path) in str(error.value) and f":{line}:" in str(error.value)


def test_skip_counts_bad_rows_and_keeps_line_numbers(tmp_path: Path) -> None:
    text = "1\t10\t5\t100\n\n2\t11\t4\n3\t12\t3\tnoon\n4\t13\t2\t400\n5\t14\t1\t500\n"
    log = read_log(write(tmp_path / "u.data", text), "movielens", ReadOptions(on_bad_rows="skip"))
    assert dict(log.bad.counts) == {"wrong_field_count": 1, "bad_time": 1}
    assert [e["line"] for e in log.bad.examples] == [3, 4]
    assert log.columns.blank_lines == 1
    assert log.columns.row.tolist() == [1, 5, 6]
    assert log.columns.users == ["1", "4", "5"]


def test_line_numbers_survive_many_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("influrec.data.loaders.BLOCK_SIZE", 64)  # force many small blocks
    lines = [f"{i}\t{i}\t1\t{i}" if i % 7 else f"{i}\t{i}\t1" for i in range(1, 200)]
    log = read_log(
        write(tmp_path / "u.data", "\n".join(lines) + "\n"),
        "movielens",
        ReadOptions(on_bad_rows="skip"),
    )
    expected = np.array([i for i in range(1, 200) if i % 7])
    assert log.columns.row.tolist() == expected.tolist()
    assert log.columns.timestamp.tolist() == expected.tolist()
    assert log.bad.counts["wrong_field_count"] == len([i for i in range(1, 200) if i % 7 == 0])


def test_real_movielens_1m_timestamped_part(shared_file) -> None:
    log = read_log(shared_file("ml-1m/ratings.first487650.dat.gz"), "movielens")
    assert (len(log.columns.row), len(log.columns.users), len(log.columns.items)) == (
        487650,
        2999,
        3615,
    )
    assert log.item_meta is not None and log.item_meta.num_rows == 3883


def test_real_full_movielens_1m_without_timestamps(shared_file) -> None:
    log = read_log(shared_file("ml-1m/ratings_all_no_timestamp.dat.gz"), "movielens")
    assert (len(log.columns.row), len(log.columns.users), len(log.columns.items)) == (
        1000209,
        6040,
        3706,
    )


def test_real_beauty_s3rec(shared_file) -> None:
    log = read_log(shared_file("s3rec-sequences/Beauty.txt"), "s3rec")
    assert (len(log.columns.row), len(log.columns.users), len(log.columns.items)) == (
        198502,
        22363,
        12101,
    )
    assert log.item_meta is not None  # Beauty_item2attributes.json, beside it
    attributes = log.item_meta.column("attributes").to_pylist()
    assert log.item_meta.num_rows == 12101 and all(attributes)
    assert len({a for cell in attributes for a in cell.split("|")}) == 637


def test_real_ml100k_with_titles(shared_file) -> None:
    log = read_log(shared_file("ml-100k/u.data"), "movielens")
    assert len(log.columns.row) == 100000
    assert log.item_meta is not None
    first = log.item_meta.slice(0, 1).to_pylist()[0]
    assert first == {
        "item_id": "1",
        "title": "Toy Story (1995)",
        "genres": "Animation|Children's|Comedy",
    }
