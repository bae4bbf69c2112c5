"""``torchrun -m influrec train``: the command line under torchrun, two real CPU processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from influrec.cli.main import main
from influrec.run import read_run_info
from tests_helpers import train_tiny_run

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.mark.slow  # torchrun and two interpreters starting on a shared 2-core machine
def test_torchrun_continues_a_run_on_two_processes_and_one_process_finishes_it(
    tmp_path: Path,
) -> None:
    run = train_tiny_run(tmp_path, epochs=1)  # one process, one epoch
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    command = [
        *(sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"),
        *("-m", "influrec", "train", str(tmp_path / "data"), "--out", str(run)),
        *("--resume", "--set", "train.epochs=2", "--no-progress"),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("best epoch") == 1  # one table: rank 0 reports, rank 1 is quiet
    info = read_run_info(run)
    assert info.finished and info.epochs_run == 2
    extend = ["train", str(tmp_path / "data"), "--out", str(run), "--resume", "--no-progress"]
    assert main([*extend, "--set", "train.epochs=3"]) == 0  # one process again
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]
    assert read_run_info(run).epochs_run == 3
