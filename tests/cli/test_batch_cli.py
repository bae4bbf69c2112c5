"""--all-users on recommend and explain: one Parquet file, the same from two real processes
sharded as torchrun would shard them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from influrec.cli.main import main
from tests_helpers import train_tiny_run


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_run(tmp_path_factory.mktemp("batch-cli"), users=25)


def test_two_ranks_write_what_one_process_writes(run: Path, tmp_path: Path, capsys) -> None:
    single = tmp_path / "one.parquet"
    assert main(["recommend", str(run), "--all-users", "--out", str(single), "--k", "3"]) == 0
    assert "wrote" in capsys.readouterr().err
    assert pq.read_table(single).num_rows == 25 * 3
    sharded = tmp_path / "two.parquet"
    command = [sys.executable, "-m", "influrec.cli.main", "recommend", str(run), "--all-users"]
    command += ["--out", str(sharded), "--k", "3", "--chunk-users", "4"]
    ranks = [
        subprocess.Popen(command, env={**os.environ, "RANK": str(r), "WORLD_SIZE": "2"})
        for r in range(2)
    ]
    assert [rank.wait(timeout=300) for rank in ranks] == [0, 0]
    assert pq.read_table(sharded).equals(pq.read_table(single))


def test_explain_all_users_and_the_flags_it_needs(run: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "effects.parquet"
    argv = ["explain", str(run), "--all-users", "--out", str(out), "--k", "2", "--shard", "0/1"]
    assert main(argv) == 0
    table = pq.read_table(out)
    assert set(table.column_names) >= {"user", "rank", "item", "event_item", "effect"}
    assert len(set(table.column("user").to_pylist())) == 25
    assert main(["recommend", str(run), "--all-users"]) == 2
    assert "--out" in capsys.readouterr().err
    bad_shard = ["recommend", str(run), "--all-users", "--out", str(out), "--shard", "2/2"]
    assert main(bad_shard) == 2
    assert "expected 0 <= I < N" in capsys.readouterr().err
