"""The one rule for output folders (influrec.folders), through every command that writes one."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from influrec.cli.main import main
from influrec.data.dataset import DATASET_FOLDER, EventDataset
from influrec.errors import InputError
from influrec.folders import (
    FolderExistsError,
    check_output_dir,
    new_folder,
    remove_stale_temporaries,
    replace_dir,
)
from tests_helpers import train_tiny_run

UDATA = "1\t10\t5\t300\n1\t11\t3\t100\n2\t10\t4\t200\n2\t12\t2\t100\n"
TINY = ["--set", "model.d_model=16", "--set", "model.layers=1", "--set", "model.max_len=8"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_run(tmp_path_factory.mktemp("folders"), users=30, items=20)


def fails(argv: list[str], capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    """Run the CLI, expect one error line (exit 2) containing every needle."""
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    return err


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name or ".old-" in p.name)


def prepare(source: Path, out: Path, *extra: str) -> list[str]:
    return ["data", "prepare", str(source), "--format", "movielens", "--out", str(out), *extra]


def test_overwrite_never_deletes_a_folder_holding_the_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "ds").mkdir()
    source = tmp_path / "ds" / "u.data"
    source.write_text(UDATA)
    fails(prepare(source, tmp_path / "ds", "--overwrite"), capsys, "holds the input")
    fails(prepare(source, tmp_path, "--overwrite"), capsys, "holds the input")
    assert source.read_text() == UDATA
    # even a real dataset folder is kept when the input lives in it
    assert main(prepare(source, tmp_path / "out")) == 0
    moved = tmp_path / "out" / "u.data"
    shutil.copy(source, moved)
    fails(prepare(moved, tmp_path / "out", "--overwrite"), capsys, "holds the input")
    assert moved.exists() and (tmp_path / "out" / "events.parquet").exists()


def test_overwrite_replaces_only_an_influrec_dataset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "u.data"
    source.write_text(UDATA)
    tree = tmp_path / "src"
    (tree / "pkg").mkdir(parents=True)
    (tree / "pkg" / "main.py").write_text("print('mine')\n")
    err = fails(prepare(source, tree, "--overwrite"), capsys, "not an influrec prepared dataset")
    assert "choose another" in err
    synth = ["data", "synth", "--out", str(tree), "--users", "20", "--overwrite"]
    fails(synth, capsys, "not an influrec prepared dataset")
    err = fails(prepare(source, tree), capsys, "already exists", "choose another --out")
    assert "pass --overwrite" not in err  # it would not help
    assert (tree / "pkg" / "main.py").read_text() == "print('mine')\n"
    out = tmp_path / "ds"
    assert main(prepare(source, out)) == 0
    fails(prepare(source, out), capsys, "an influrec prepared dataset", "pass --overwrite")
    (out / "notes.txt").write_text("keep")
    fails(prepare(source, out, "--overwrite"), capsys, "did not write there: notes.txt")
    (out / "notes.txt").unlink()
    assert main(prepare(source, out, "--overwrite", "--min-user-events", "2")) == 0
    assert EventDataset.load(out).stats["config"]["min_user_events"] == 2
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("command", ["prepare", "synth", "train", "denoise", "demo"])
def test_unwritable_out_is_one_error_before_any_work(
    command: str, run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "u.data"
    source.write_text(UDATA)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    argv = {
        "prepare": lambda out: prepare(source, out),
        "synth": lambda out: ["data", "synth", "--out", str(out), "--users", "20"],
        "train": lambda out: ["train", str(run / "data"), "--out", str(out), *TINY],
        "denoise": lambda out: ["denoise", str(run), "--fraction", "0.1", "--out", str(out)],
        "demo": lambda out: ["demo", "--out", str(out), "--users", "20", *TINY],
    }[command]
    before = sorted(p.name for p in tmp_path.iterdir())
    fails(argv(a_file / "out"), capsys, f"{a_file} is a file, not a folder")
    fails(argv(a_file), capsys, "is a file")
    fails(argv(Path("/proc/influrec-out")), capsys, "cannot be written")
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing was written
    assert a_file.read_text() == "x"


def test_denoise_never_replaces_the_run_or_its_dataset(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for out in (run, run / "data", run.parent):
        argv = ["denoise", str(run), "--fraction", "0.1", "--out", str(out), "--overwrite"]
        fails(argv, capsys, str(out))
    assert (run / "run.json").exists() and EventDataset.load(run / "data").n_users == 30


def test_a_runs_dataset_is_never_replaced_on_its_own(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "u.data"
    source.write_text(UDATA)
    fails(prepare(source, run / "data", "--overwrite"), capsys, "part of the run folder")
    synth = ["data", "synth", "--out", str(run / "data"), "--users", "20", "--overwrite"]
    fails(synth, capsys, "part of the run folder")
    assert EventDataset.load(run / "data").n_users == 30


def test_train_refuses_a_non_empty_out(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = run / "data"
    fails(["train", str(data), "--out", str(run), *TINY], capsys, "pass --resume")
    fails(["train", str(data), "--out", str(run.parent), *TINY], capsys, "choose another --out")
    assert EventDataset.load(data).n_users == 30


def test_demo_replaces_only_a_demo_folder(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = tmp_path / "mine"
    (mine / "run").mkdir(parents=True)
    (mine / "run" / "results.csv").write_text("keep")
    fails(["demo", "--out", str(mine), "--users", "20", *TINY], capsys, "not an influrec demo")
    assert (mine / "run" / "results.csv").read_text() == "keep"
    shutil.copytree(run.parent / "data", mine / "data")  # a dataset, but run/ is not a run
    fails(["demo", "--out", str(mine), "--users", "20", *TINY], capsys, "not an influrec run")
    assert (mine / "run" / "results.csv").read_text() == "keep"
    earlier = tmp_path / "demo"  # what an earlier demo left: its dataset and run
    shutil.copytree(run.parent / "data", earlier / "data")
    shutil.copytree(run, earlier / "run")
    argv = ["demo", "--out", str(earlier), "--users", "20", "--set", "train.epochs=1", *TINY]
    assert main(argv) == 0, capsys.readouterr().err
    assert EventDataset.load(earlier / "data").n_users == 20
    assert EventDataset.load(earlier / "run" / "data").n_users == 20
    assert leftovers(tmp_path) == [] and leftovers(earlier) == []


def dataset(tmp_path: Path) -> EventDataset:
    source = tmp_path / "u.data"
    source.write_text(UDATA)
    assert main(prepare(source, tmp_path / "first")) == 0
    return EventDataset.load(tmp_path / "first")


def test_a_failed_write_leaves_the_old_folder_and_no_orphans(tmp_path: Path) -> None:
    ds = dataset(tmp_path)
    out = ds.save(tmp_path / "ds")
    before = (out / "events.parquet").read_bytes()
    with (
        pytest.raises(RuntimeError, match="disk full"),
        new_folder(out, DATASET_FOLDER, overwrite=True) as tmp,
    ):
        (tmp / "events.parquet").write_text("half")
        raise RuntimeError("disk full")
    assert (out / "events.parquet").read_bytes() == before and leftovers(tmp_path) == []
    # the swap itself fails (the new folder vanished): the old folder is put back
    with pytest.raises(FileNotFoundError):
        replace_dir(tmp_path / "vanished", out)
    assert (out / "events.parquet").read_bytes() == before and leftovers(tmp_path) == []


def test_leftovers_of_a_killed_writer_are_removed(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])  # its pid belongs to no running process once it ended
    dead.wait()
    ds = dataset(tmp_path)
    stale = [tmp_path / f".ds.tmp-{dead.pid}-abcd1234", tmp_path / f".ds.old-{dead.pid}"]
    alive = tmp_path / f".ds.tmp-{os.getpid()}-00000000"
    for folder in (*stale, alive):
        folder.mkdir()
    ds.save(tmp_path / "ds")
    assert not any(p.exists() for p in stale) and alive.exists()
    remove_stale_temporaries(tmp_path / "ds")  # never another live process's
    assert alive.exists()


def test_an_old_folder_whose_swap_was_interrupted_is_put_back(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    ds = dataset(tmp_path)
    out = ds.save(tmp_path / "ds")
    out.rename(tmp_path / f".ds.old-{dead.pid}-abcd1234")  # killed between the two renames
    with pytest.raises(FolderExistsError):  # it is back, and not replaced without overwrite
        ds.save(out)
    assert EventDataset.load(out).n_users == ds.n_users and leftovers(tmp_path) == []


def test_check_output_dir_rule(tmp_path: Path) -> None:
    check_output_dir(tmp_path / "new", DATASET_FOLDER, overwrite=False)
    (tmp_path / "empty").mkdir()
    check_output_dir(tmp_path / "empty", DATASET_FOLDER, overwrite=False)
    ds = dataset(tmp_path)
    out = ds.save(tmp_path / "ds")
    with pytest.raises(FolderExistsError) as info:
        check_output_dir(out, DATASET_FOLDER, overwrite=False)
    assert info.value.replaceable and "--" not in str(info.value)  # no CLI flags in the library
    check_output_dir(out, DATASET_FOLDER, overwrite=True)
    for target in (out, tmp_path / "empty", tmp_path / "nowhere"):
        link = tmp_path / f"link-to-{target.name}"
        link.symlink_to(target)
        with pytest.raises(InputError, match="symbolic link"):
            check_output_dir(link, DATASET_FOLDER, overwrite=True)
    with pytest.raises(InputError, match="holds the input"):
        check_output_dir(out, DATASET_FOLDER, overwrite=True, inputs=[out / "events.parquet"])


def test_the_current_folder_can_be_replaced_by_name_dot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = dataset(tmp_path).save(tmp_path / "ds")
    monkeypatch.chdir(out)
    assert main(["data", "synth", "--out", ".", "--users", "20", "--overwrite"]) == 0
    assert EventDataset.load(tmp_path / "ds").n_users == 20
    assert leftovers(tmp_path) == [] and leftovers(tmp_path / "ds") == []
