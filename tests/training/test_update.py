"""`influrec update`: a trained run learns from new events, new items included."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch

from influrec.cli.main import main
from influrec.data import schema
from influrec.data.history import History
from influrec.errors import InputError
from influrec.inference import Recommender
from influrec.models import build_model
from influrec.run import MODEL_FILE, load_run, read_run_info, read_weights
from influrec.serving.store import StoredEvent, open_store
from influrec.training.update import UpdateSettings, grow_into, update_run
from tests_helpers import train_tiny_run

START = 1_800_000_000  # after the synthetic data's last event
TRIGGER = "i3"  # in the new events every user views i3, then buys the new item


@pytest.fixture(scope="module")
def parent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_run(tmp_path_factory.mktemp("update"), epochs=2)


def new_events(users: range, *, behavior: str = "view") -> pa.Table:
    rows = []
    for n in users:
        t = START + 1000 * n
        rows += [(f"u{n}", TRIGGER, behavior, t), (f"u{n}", "i-new", "buy", t + 10)]
        rows += [(f"u{n}", TRIGGER, behavior, t + 20), (f"u{n}", "i-new", "buy", t + 30)]
    columns = list(zip(*rows, strict=True)) or [[], [], [], []]
    return pa.table(
        {
            "user_id": columns[0],
            "item_id": columns[1],
            "behavior": columns[2],
            "timestamp": pa.array(columns[3], pa.int64()),
            "value": pa.nulls(len(rows), pa.float64()),
            "row": pa.array(range(len(rows)), pa.int64()),
        },
        schema=schema.RAW_SCHEMA,
    )


def rank_of(rec: Recommender, model: torch.nn.Module, user: str, item: str) -> int:
    """Rank (1 = top) of ``item`` after the user's stored history and a view of TRIGGER."""
    history = rec.user_history(user)
    if rec.item_ids[int(history.items[-1]) - 1] != TRIGGER:
        history = History(
            np.r_[history.items, rec.item_index[TRIGGER]],
            np.r_[history.behaviors, rec.behavior_index["view"]],
            np.r_[history.timestamps, history.timestamps[-1] + 1],
            np.r_[history.values, np.float32(0)],
        )
    rec.model = model  # type: ignore[assignment]
    scores = rec.scores([history])[0]
    assert torch.isfinite(scores[1:]).all()
    return int((scores > scores[rec.item_index[item]]).sum()) + 1


def test_update_makes_the_new_item_scorable_and_moves_scores_toward_the_new_events(
    parent: Path, tmp_path: Path
) -> None:
    settings = UpdateSettings(epochs=12, lr_scale=1.0, replay=0.5)
    result = update_run(parent, new_events(range(1, 31)), tmp_path / "run2", settings=settings)
    rec = Recommender.load(tmp_path / "run2")
    assert rec.n_items == 31 and rec.item_ids[-1] == "i-new"
    # the reference: the parent's weights grown to the new sizes (the new item at the mean
    # of the others), before any update training
    _, info, _ = load_run(tmp_path / "run2")
    grown = build_model(info.config.model, **info.model_sizes)
    grow_into(grown, read_weights(parent / MODEL_FILE), parent / MODEL_FILE)
    grown.eval()
    trained = rec.model
    before = [rank_of(rec, grown, f"u{n}", "i-new") for n in range(31, 41)]
    after = [rank_of(rec, trained, f"u{n}", "i-new") for n in range(31, 41)]  # held-out users
    assert np.mean(after) <= 5 and np.mean(after) < np.mean(before) - 8, (before, after)
    step = result.step
    assert step["events_added"] == 120 and step["new_items"] == 1 and step["new_users"] == 0
    assert step["samples"]["new"] == 30 and step["samples"]["replayed"] == 30  # windows
    assert step["time_span"] == {"min": START + 1000, "max": START + 30_030}


def test_lineage_is_recorded_and_carried_over_and_the_run_serves_every_command(
    parent: Path, tmp_path: Path
) -> None:
    first = tmp_path / "run2"
    update_run(parent, new_events(range(1, 5)), first, settings=UpdateSettings(replay=0.0))
    store = open_store(tmp_path / "events.sqlite3")
    store.append([StoredEvent("u99", "i-newer", "view", START + 10**6 + n) for n in range(3)])
    store.append([StoredEvent("u99", "i1", "view", START + 10**6 + 9)])
    store.close()
    second = tmp_path / "run3"
    command = ["update", str(first), "--events", str(tmp_path / "events.sqlite3")]
    assert main([*command, "--out", str(second), "--no-progress"]) == 0
    lineage = read_run_info(second).lineage
    assert [step["kind"] for step in lineage] == ["update", "update"]
    assert lineage[0]["parent"] == str(parent.resolve()) and lineage[1]["parent"] == str(
        first.resolve()
    )
    assert lineage[1]["new_users"] == 1 and lineage[1]["new_items"] == 1
    assert lineage[1]["optimizer_from"].startswith("checkpoints/")
    assert json.loads((second / "run.json").read_text())["n_items"] == 32
    assert main(["recommend", str(second), "--user", "u99", "--k", "3"]) == 0
    assert main(["explain", str(second), "--user", "u99", "--k", "2"]) == 0


def test_bad_inputs_are_clear_errors(
    parent: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(InputError, match=r"behaviours \['like'\] that the model does not know"):
        update_run(parent, new_events(range(1, 3), behavior="like"), tmp_path / "a")
    with pytest.raises(InputError, match="no events to update"):
        update_run(parent, new_events(range(0)), tmp_path / "b")
    with pytest.raises(InputError, match="already in the data"):
        update_run(parent, load_run(parent)[2], tmp_path / "c")
    with pytest.raises(InputError, match="not a run folder"):
        update_run(tmp_path, new_events(range(1, 3)), tmp_path / "d")
    code = main(["update", str(parent), "--events", str(tmp_path / "none"), "--out", "x"])
    assert code == 2 and "no such dataset folder or event store file" in capsys.readouterr().err
    assert main(["update", str(parent), "--events", "x", "--out", "y", "--replay", "1"]) == 2
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
