"""Each file of a real run folder damaged in turn: every command that reads it answers with one
``error:`` line naming that file and what to do (exit 2), never a traceback."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from influrec.cli.main import main
from influrec.run import saved_checkpoints
from tests_helpers import train_tiny_run


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_run(tmp_path_factory.mktemp("damaged"), users=40, epochs=2)


def last_checkpoint(run: Path) -> Path:
    return saved_checkpoints(run)[-1].folder


def edit_json(relative: str, change: Callable[[object], object]) -> Callable[[Path], Path]:
    def damage(run: Path) -> Path:
        path = run / relative
        path.write_text(json.dumps(change(json.loads(path.read_text()))))
        return path

    return damage


def drop(key: str) -> Callable[[object], object]:
    def change(data: object) -> object:
        assert isinstance(data, dict) and key in data
        return {k: v for k, v in data.items() if k != key}

    return change


def truncate(relative: str | Callable[[Path], Path]) -> Callable[[Path], Path]:
    def damage(run: Path) -> Path:
        path = relative(run) if callable(relative) else run / relative
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        return path

    return damage


def delete(relative: str) -> Callable[[Path], Path]:
    def damage(run: Path) -> Path:
        (run / relative).unlink()
        return run / relative

    return damage


def garbage_trainer_state(run: Path) -> Path:
    path = last_checkpoint(run) / "trainer.pt"
    path.write_bytes(b"\x80\x04not a pickle at all" * 10)
    return path


def state_without_keys(run: Path) -> Path:
    path = last_checkpoint(run) / "state.json"
    path.write_text(json.dumps({"epoch": 2}))
    return path


def state_with_impossible_values(run: Path) -> Path:
    path = last_checkpoint(run) / "state.json"
    state = json.loads(path.read_text())
    path.write_text(json.dumps({**state, "epoch": 1_000_000, "step": -5}))  # types still right
    return path


def config_deleted(run: Path) -> Path:
    path = run / "config.toml"
    path.unlink()
    return path


def grow(key: str, by: int) -> Callable[[object], object]:
    def change(data: object) -> object:
        assert isinstance(data, dict)
        return {**data, key: data[key] + by}

    return change


def short_behaviors(data: object) -> object:
    assert isinstance(data, list)
    return data[:1]


READERS = ("evaluate", "recommend", "explain")  # commands that load the trained model and data
DATA_READERS = (*READERS, "stats")
CASES = [
    ("run.json is a list", edit_json("run.json", lambda info: [info]), (*READERS, "resume")),
    ("run.json lacks n_items", edit_json("run.json", drop("n_items")), (*READERS, "resume")),
    ("run.json n_items edited", edit_json("run.json", grow("n_items", 5)), (*READERS, "resume")),
    ("events.parquet truncated", truncate("data/events.parquet"), (*DATA_READERS, "resume")),
    ("stats.json is a list", edit_json("data/stats.json", lambda s: [s]), DATA_READERS),
    ("stats.json lacks events", edit_json("data/stats.json", drop("events")), DATA_READERS),
    ("stats.json miscounts", edit_json("data/stats.json", grow("users", 3)), DATA_READERS),
    ("behaviors.json short", edit_json("data/behaviors.json", short_behaviors), DATA_READERS),
    ("model.safetensors missing", delete("model.safetensors"), READERS),
    ("model.safetensors truncated", truncate("model.safetensors"), READERS),
    ("trainer.pt corrupted", garbage_trainer_state, ("resume",)),
    ("trainer.pt truncated", truncate(lambda r: last_checkpoint(r) / "trainer.pt"), ("resume",)),
    ("state.json without keys", state_without_keys, ("resume",)),
    ("state.json impossible values", state_with_impossible_values, ("resume",)),
    ("config.toml deleted", config_deleted, ("resume",)),
    (
        "checkpoint weights truncated",
        truncate(lambda r: last_checkpoint(r) / "model.safetensors"),
        ("resume",),
    ),
]


RESUME_FLAGS = ("--no-progress", "--set", "train.epochs=3")  # one epoch more than the run


def command(name: str, run: Path) -> list[str]:
    return {
        "evaluate": ["evaluate", str(run)],
        "recommend": ["recommend", str(run), "--user", "u1"],
        "explain": ["explain", str(run), "--user", "u1", "--k", "2"],
        "stats": ["data", "stats", str(run / "data")],
        "resume": ["train", str(run / "data"), "--out", str(run), "--resume", *RESUME_FLAGS],
    }[name]


@pytest.mark.parametrize(("case", "damage", "commands"), CASES, ids=[c[0] for c in CASES])
def test_damaged_file_is_named_in_one_error_line(
    pristine: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case: str,
    damage: Callable[[Path], Path],
    commands: tuple[str, ...],
) -> None:
    run = tmp_path / "run"
    shutil.copytree(pristine, run)
    damaged = damage(run)
    for name in commands:
        capsys.readouterr()
        code = main(command(name, run))
        err = capsys.readouterr().err
        assert code == 2, f"{name}: exit {code}\n{err}"
        assert "Traceback" not in err and "weights_only" not in err, err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), err
        assert str(damaged) in lines[0], f"{name} does not name {damaged}: {err}"
        assert any(word in lines[0] for word in ("restore", "again", "delete")), err


def test_the_pristine_run_passes_every_command(
    pristine: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The table above fails because of the damage, not because a command fails anyway."""
    run = tmp_path / "run"
    shutil.copytree(pristine, run)
    for name in ("evaluate", "recommend", "explain", "stats", "resume"):
        assert main(command(name, run)) == 0, capsys.readouterr().err
    assert [c.epoch for c in saved_checkpoints(run)] == [1, 2, 3]


def test_a_run_stopped_before_its_first_epoch_says_so(
    pristine: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    shutil.copytree(pristine, run)
    (run / "model.safetensors").unlink()
    shutil.rmtree(run / "checkpoints")  # what a run killed during epoch 1 holds
    for name in ("evaluate", "resume"):
        capsys.readouterr()
        assert main(command(name, run)) == 2
        err = capsys.readouterr().err
        assert "before" in err and "first epoch" in err and "train" in err, err
