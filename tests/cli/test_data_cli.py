from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from influrec.cli.common import with_flag
from influrec.cli.data import PREPARE_FLAGS
from influrec.cli.main import build_parser, main
from influrec.data.dataset import EventDataset
from influrec.data.loaders import ReadOptions
from influrec.data.preprocess import PrepareConfig
from influrec.errors import InputError

UDATA = "1\t10\t5\t300\n1\t11\t3\t100\n2\t10\t4\t200\n1\t11\t3\t100\n1\t12\t2\t100\n"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_prepare_writes_the_canonical_dataset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write(tmp_path / "u.data", UDATA)
    out = tmp_path / "ds"
    assert main(["data", "prepare", str(source), "--format", "movielens", "--out", str(out)]) == 0
    assert "events" in capsys.readouterr().out
    stats = json.loads((out / "stats.json").read_text())
    assert {k: stats[k] for k in ("users", "items", "events", "behaviors", "dropped")} == {
        "users": 2,
        "items": 3,
        "events": 4,
        "behaviors": {"rate": 4},
        "dropped": {"duplicate": 1},
    }
    assert stats["time_range"]["min"] == 100 and stats["time_range"]["max"] == 300
    events = pq.read_table(out / "events.parquet").to_pylist()
    # user 1 by time, the tie at t=100 in file order (item 11 on line 2 before item 12 on line 5)
    assert [(e["user_id"], e["item_id"], e["timestamp"], e["row"]) for e in events] == [
        ("1", "11", 100, 2),
        ("1", "12", 100, 5),
        ("1", "10", 300, 1),
        ("2", "10", 200, 3),
    ]
    assert [e["item_idx"] for e in events] == [2, 3, 1, 1]  # first appearance in the file, from 1
    ds = EventDataset.load(out)
    assert ds.behaviors == ["[PAD]", "rate"]
    assert ds.items.column("item_id").to_pylist() == ["10", "11", "12"]


def test_bad_row_exits_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write(tmp_path / "u.data", "1\t10\t5\t300\n1\t11\t3\n")
    out = tmp_path / "ds"
    code = main(["data", "prepare", str(source), "--format", "movielens", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert (
        "u.data:2" in err and "4 fields, got 3" in err and "1\\t11\\t3" in err.replace("\t", "\\t")
    )
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["u.data"]  # no temporary leftovers


def test_skip_records_counts_and_examples(tmp_path: Path) -> None:
    source = write(tmp_path / "u.data", "1\t10\t5\t300\n1\t11\t3\n2\t12\t1\tlater\n")
    out = tmp_path / "ds"
    args = [
        "data",
        "prepare",
        str(source),
        "--format",
        "movielens",
        "--out",
        str(out),
        "--on-bad-rows",
        "skip",
    ]
    assert main(args) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["dropped"] == {"wrong_field_count": 1, "bad_time": 1}
    assert [e["line"] for e in stats["bad_row_examples"]] == [2, 3]
    assert stats["events"] == 1 and stats["rows_read"] == 3


def test_filters_and_overwrite(tmp_path: Path) -> None:
    source = write(tmp_path / "u.data", UDATA)
    out = tmp_path / "ds"
    base = ["data", "prepare", str(source), "--format", "movielens", "--out", str(out)]
    assert main(base) == 0
    assert main(base) == 2  # exists: refused
    assert main([*base, "--overwrite", "--min-user-events", "2", "--implicit-threshold", "3"]) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["dropped"] == {"duplicate": 1, "below_threshold": 1, "min_user_events": 1}
    assert stats["users"] == 1 and stats["events"] == 2


def test_clear_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "ds")
    csv = write(tmp_path / "log.csv", "uid,sku\n1,2\n")
    cases = [
        (
            [
                "data",
                "prepare",
                str(tmp_path / "missing.dat"),
                "--format",
                "movielens",
                "--out",
                out,
            ],
            "no such file",
        ),
        (
            [
                "data",
                "prepare",
                str(write(tmp_path / "e.dat", "")),
                "--format",
                "movielens",
                "--out",
                out,
            ],
            "empty",
        ),
        (
            [
                "data",
                "prepare",
                str(csv),
                "--format",
                "csv",
                "--map",
                "user=uid,item=sku,time=t",
                "--out",
                out,
            ],
            "no column 't'",
        ),
        (
            ["data", "prepare", str(csv), "--format", "csv", "--out", out],
            "format csv needs a column map, e.g. user=uid,item=sku,time=ts; set it with --map",
        ),
    ]
    for argv, message in cases:
        assert main(argv) == 2
        assert message in capsys.readouterr().err
    assert main(["data", "prepare", str(csv), "--format", "excel", "--out", out]) == 2
    assert "invalid choice: 'excel'" in capsys.readouterr().err


def test_synth_then_stats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "synth"
    assert (
        main(["data", "synth", "--out", str(out), "--users", "50", "--items", "40", "--seed", "3"])
        == 0
    )
    ds = EventDataset.load(out)
    assert ds.n_users == 50
    truth = ds.ground_truth
    assert truth is not None and truth.num_rows > 0
    rows = set(ds.column("row").tolist())
    assert (
        set(truth.column("row").to_pylist()) <= rows
        and set(truth.column("cause_row").to_pylist()) <= rows
    )
    timestamps = dict(zip(ds.column("row").tolist(), ds.column("timestamp").tolist(), strict=True))
    assert all(
        timestamps[c] < timestamps[r]
        for r, c in zip(
            truth.column("row").to_pylist(), truth.column("cause_row").to_pylist(), strict=True
        )
    )
    capsys.readouterr()
    assert main(["data", "stats", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["users"] == 50
    assert main(["data", "synth", "--out", str(tmp_path / "x"), "--users", "0"]) == 2


def test_console_script_help_lists_commands() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "influrec.cli.main", "data", "prepare", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    for option in (
        "--format",
        "--map",
        "--min-user-events",
        "--implicit-threshold",
        "--on-bad-rows",
        "--out",
    ):
        assert option in result.stdout


def test_real_taobao_counts(shared_file, tmp_path: Path) -> None:
    source = shared_file("taobao-userbehavior-head/UserBehavior.head84475.csv")
    assert (
        main(["data", "prepare", str(source), "--format", "taobao", "--out", str(tmp_path / "t")])
        == 0
    )
    stats = json.loads((tmp_path / "t" / "stats.json").read_text())
    assert (stats["users"], stats["items"], stats["events"]) == (815, 55368, 84475)
    assert stats["behaviors"] == {"pv": 75872, "fav": 2356, "buy": 1750, "cart": 4497}
    ds = EventDataset.load(tmp_path / "t")
    user, ts = ds.column("user_idx"), ds.column("timestamp")
    same_user = user[1:] == user[:-1]
    assert np.all(np.diff(user) >= 0) and np.all(ts[1:][same_user] >= ts[:-1][same_user])
    assert "category" in ds.items.column_names


def test_every_setting_flag_of_prepare_is_one_of_its_options() -> None:
    base = ["data", "prepare", "log.csv", "--format", "csv", "--out", "out"]
    defaults = build_parser().parse_args(base)
    assert defaults.setting_flags is PREPARE_FLAGS
    for flag in PREPARE_FLAGS.values():
        value = {"--map": "user=u,item=i", "--time-unit": "s"}.get(flag, "0.25")
        if flag.startswith("--min-"):
            value = "3"
        # an unknown flag exits; a known one changes what was parsed
        assert build_parser().parse_args([*base, flag, value]) != defaults
    # each setting is a field of the library object that the flag's value goes into
    fields = set(PrepareConfig.__dataclass_fields__) | set(ReadOptions.__dataclass_fields__)
    assert set(PREPARE_FLAGS) <= fields


def test_with_flag_adds_only_the_flag_of_a_known_setting() -> None:
    flags = {"time_unit": "--time-unit"}
    assert with_flag(InputError("bad unit", setting="time_unit"), flags) == (
        "bad unit; set it with --time-unit"
    )
    assert with_flag(InputError("bad map", setting="column_map"), flags) == "bad map"
    assert with_flag(InputError("no setting"), flags) == "no setting"
