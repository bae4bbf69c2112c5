"""`recommend`/`explain` with --mute-*: the history without the muted events, offline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from influrec.cli.main import main
from influrec.data.history import History
from influrec.data.times import readable_time
from influrec.inference import Recommender
from tests_helpers import train_tiny_run


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_run(tmp_path_factory.mktemp("mutes-cli"))


def json_out(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    capsys.readouterr()
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def without(history: History, keep: np.ndarray) -> History:
    return History(history.items[keep], history.behaviors[keep], history.timestamps[keep],
                   history.values[keep])  # fmt: skip


def test_a_muted_event_by_position_or_by_name_leaves_the_history(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = Recommender.load(run)
    history = rec.user_history("u2")
    last = len(history) - 1
    keep = np.arange(len(history)) != last
    expected = [r.item_id for r in rec.recommend(without(history, keep), k=5)]
    behavior = {i: b for b, i in rec.behavior_index.items()}[int(history.behaviors[last])]
    named = f"{rec.item_ids[int(history.items[last]) - 1]}:{behavior}:{history.timestamps[last]}"
    argv = ["recommend", str(run), "--user", "u2", "--k", "5"]
    for mute in (str(last), named):
        answer = json_out(capsys, [*argv, "--mute-event", mute])
        assert [r["item_id"] for r in answer["recommendations"]] == expected
        assert answer["muted_events"] == 1
    plain = json_out(capsys, argv)
    assert "muted_events" not in plain


def test_behaviour_and_window_mutes_in_explain_and_recommend(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = Recommender.load(run)
    history = rec.user_history("u3")
    argv = ["explain", str(run), "--user", "u3", "--k", "1", "--mute-behavior", "view"]
    answer = json_out(capsys, argv)
    assert all(e["behavior"] != "view" for e in answer["recommendations"][0]["events"])
    assert answer["muted_events"] == int((history.behaviors == rec.behavior_index["view"]).sum())
    first, last = readable_time(history.timestamps[0]), readable_time(history.timestamps[-1] + 60)
    window = f"{first.replace(' ', 'T')},{last.replace(' ', 'T')}"  # ISO, whole history
    everything = json_out(capsys, ["recommend", str(run), "--user", "u3", "--mute-window", window])
    assert everything["cold_start"] is True and everything["muted_events"] == len(history)
    capsys.readouterr()
    assert main(["recommend", str(run), "--user", "u3", "--mute-behavior", "view"]) == 0
    assert "muted: " in capsys.readouterr().out


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--mute-event", "9999"], "the history has"),
        (["--mute-event", "i1:view"], "expected a position"),
        (["--mute-window", "2024-01-01"], "expected START,END"),
        (["--mute-window", "5,4"], "start 5 is after end 4"),
        (["--mute-window", "soon,later"], "neither epoch seconds nor an ISO date"),
    ],
)
def test_bad_mutes_are_one_clear_error(
    run: Path, capsys: pytest.CaptureFixture[str], option: list[str], message: str
) -> None:
    capsys.readouterr()
    assert main(["recommend", str(run), "--user", "u3", *option]) == 2
    err = capsys.readouterr().err
    assert message in err and option[0] in err


def test_mutes_are_for_one_user(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    argv = ["recommend", str(run), "--all-users", "--mute-behavior", "view"]
    assert main(argv) == 2
    assert "not to --all-users" in capsys.readouterr().err
