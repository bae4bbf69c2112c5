"""``forget``: the forgotten users' data stops shaping the model, the others' barely moves, the
step is recorded in the lineage, and recommend/explain refuse the users."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from influrec.cli.main import main
from influrec.data.history import History
from influrec.inference import Recommender
from influrec.run import read_run_info
from influrec.unlearning import AscentSettings, forget, forgotten_users
from tests_helpers import train_tiny_run

FORGOTTEN = ["u1", "u2", "u3"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny run trained long enough, without dropout, to remember its training data."""
    root = tmp_path_factory.mktemp("unlearn")
    return train_tiny_run(
        root, users=40, items=30, epochs=20, extra=("model.dropout=0.0", "train.lr=0.01")
    )


@pytest.fixture(scope="module")
def forgot(run: Path) -> Path:
    out = run.parent / "forgot"
    forget(run, FORGOTTEN, out)
    return out


def _target_losses(rec: Recommender, histories: dict[str, History]) -> dict[str, float]:
    """Per user, the mean cross-entropy of each training target (every event but the first
    and the last two: leave-one-out) given the events before it, scored one by one."""
    out = {}
    for user, h in histories.items():
        positions = range(1, len(h) - 2)
        prefixes = [
            History(h.items[:t], h.behaviors[:t], h.timestamps[:t], h.values[:t]) for t in positions
        ]
        scores = rec.scores(prefixes)
        targets = torch.as_tensor(h.items[1 : len(h) - 2])
        out[user] = float(torch.nn.functional.cross_entropy(scores, targets))
    return out


def _event_loss(rec: Recommender, histories: dict[str, History], *, back: int) -> float:
    """Mean cross-entropy of each user's ``back``-th event from the end given those before
    (2: the validation event, never trained on; 3: the last training event)."""
    losses = []
    for h in histories.values():
        t = len(h) - back
        prefix = History(h.items[:t], h.behaviors[:t], h.timestamps[:t], h.values[:t])
        target = torch.as_tensor(h.items[t : t + 1])
        losses.append(float(torch.nn.functional.cross_entropy(rec.scores([prefix]), target)))
    return float(np.mean(losses))


def test_forgetting_raises_their_loss_towards_unseen_and_leaves_the_others(
    run: Path, forgot: Path
) -> None:
    before, after = Recommender.load(run), Recommender.load(forgot)
    histories = {u: before.user_history(u) for u in before.user_index}
    loss_before = _target_losses(before, histories)
    loss_after = _target_losses(after, histories)
    others = [u for u in histories if u not in FORGOTTEN]
    rise = np.mean([loss_after[u] - loss_before[u] for u in FORGOTTEN])
    moved = np.mean([abs(loss_after[u] - loss_before[u]) for u in others])
    rest = {u: histories[u] for u in others}
    gap = _event_loss(before, rest, back=2) - _event_loss(before, rest, back=3)
    assert gap > 0.1  # the fixture's model did remember its training data
    assert rise > 0.4 * gap  # their loss went a good part of the way to unseen data's
    assert moved < 0.25 * rise  # the others' barely moved


def test_the_step_is_recorded_and_their_events_are_gone(run: Path, forgot: Path) -> None:
    info = read_run_info(forgot)
    (step,) = info.lineage
    assert step["kind"] == "forget" and step["parent"] == str(run)
    assert step["users"] == FORGOTTEN and step["method"] == "gradient-ascent"
    assert 1 <= step["steps"] <= AscentSettings().steps and step["at"]
    assert step["change"] <= AscentSettings().max_change + 1e-9
    assert set(forgotten_users(info)) == set(FORGOTTEN)
    events = pq.read_table(forgot / "data" / "events.parquet").column("user_id").to_pylist()
    parent = pq.read_table(run / "data" / "events.parquet").column("user_id").to_pylist()
    assert not set(events) & set(FORGOTTEN)
    assert step["events_removed"] == len(parent) - len(events) > 0
    assert not (forgot / "checkpoints").exists()  # trained on their data: not copied
    # forgetting again keeps the earlier step
    again = forget(forgot, ["u4"], forgot.parent / "forgot-again")
    lineage = read_run_info(again.out_dir).lineage
    assert [s["users"] for s in lineage] == [FORGOTTEN, ["u4"]]


def test_bounds_hold(run: Path, tmp_path: Path) -> None:
    result = forget(run, ["u5"], tmp_path / "f", settings=AscentSettings(steps=2, max_change=0.001))
    assert result.ascent is not None and result.ascent.steps <= 2
    assert result.ascent.change <= 0.001 + 1e-9


def test_recommend_and_explain_refuse_a_forgotten_user(
    forgot: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["recommend", str(forgot), "--user", "u2"]) == 2
    err = capsys.readouterr().err
    assert "'u2' was forgotten" in err and "--cold-start popular" in err
    assert main(["explain", str(forgot), "--user", "u2"]) == 2
    assert "'u2' was forgotten" in capsys.readouterr().err
    assert (
        main(["recommend", str(forgot), "--user", "u2", "--cold-start", "popular", "--json"]) == 0
    )
    assert json.loads(capsys.readouterr().out)["cold_start"] is True
    assert main(["recommend", str(forgot), "--user", "u9", "--json"]) == 0  # not forgotten
    assert json.loads(capsys.readouterr().out)["cold_start"] is False


def test_clear_errors(
    run: Path, forgot: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    out = str(tmp_path / "x")
    assert main(["forget", str(run), "--user", "nobody", "--out", out]) == 2
    assert "unknown user 'nobody'" in capsys.readouterr().err
    assert main(["forget", str(run.parent / "data"), "--user", "u1", "--out", out]) == 2
    assert "not a run folder" in capsys.readouterr().err
    assert main(["forget", str(forgot), "--user", "u1", "--out", out]) == 2
    assert "already forgotten" in capsys.readouterr().err
    assert main(["forget", str(run), "--user", "u1", "--out", str(run)]) == 2
    assert "error" in capsys.readouterr().err
    assert (run / "model.safetensors").exists()  # the parent is never replaced
    assert not (tmp_path / "x").exists()


def test_exact_retrains_without_them(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = run.parent / "exact"
    capsys.readouterr()
    assert (
        main(
            [
                "forget",
                str(run),
                "--user",
                "u1",
                "--out",
                str(out),
                "--exact",
                "--json",
                "--no-progress",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["method"] == "retrain"
    info = read_run_info(out)
    assert info.finished and info.lineage[-1]["method"] == "retrain"
    assert (out / "checkpoints").is_dir()
    users = pq.read_table(out / "data" / "events.parquet").column("user_id").to_pylist()
    assert "u1" not in users
    assert main(["recommend", str(out), "--user", "u1"]) == 2
