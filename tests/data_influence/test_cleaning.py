"""Removal of interactions, the harm signals, and the denoise command end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from influrec.cli.main import main
from influrec.data.dataset import EventDataset
from influrec.data.synthesize import synthesize_dataset
from influrec.data.synthetic import SynthConfig
from influrec.data_influence import DataInfluence
from influrec.data_influence.cleaning import remove_events, signal, worst
from influrec.data_influence.tracin import TracInScores
from tests_helpers import held_out_events, train_tiny_run


@pytest.fixture(scope="module")
def dataset() -> EventDataset:
    return synthesize_dataset(SynthConfig(n_users=60, n_items=40, mean_events=20, seed=3))


def test_remove_events_keeps_the_other_rows_and_notes_the_edit(dataset: EventDataset) -> None:
    removed = np.array([3, 10, 11])
    smaller = remove_events(dataset, removed, note={"edit": "test"})
    assert smaller.events.num_rows == dataset.events.num_rows - 3
    assert smaller.stats["edits"][-1] == {"edit": "test", "removed_events": 3}
    kept = np.setdiff1d(np.arange(dataset.events.num_rows), removed)
    assert (
        smaller.events.column("row").to_pylist()
        == dataset.events.take(kept).column("row").to_pylist()
    )


def test_worst_picks_the_right_end() -> None:
    events = np.array([10, 11, 12, 13])
    scores = np.array([0.5, -2.0, 3.0, 0.1])
    assert worst(events, scores, fraction=0.5, by="self").tolist() == [10, 12]  # highest
    assert worst(events, scores, fraction=0.25, by="loss").tolist() == [12]
    assert worst(events, scores, fraction=0.5, by="harm").tolist() == [11, 13]  # most negative
    with pytest.raises(ValueError, match="fraction"):
        worst(events, scores, fraction=1.0, by="self")
    with pytest.raises(ValueError, match="unknown score"):
        worst(events, scores, fraction=0.5, by="random")


def test_context_signal_adds_the_harm_as_context_and_fills_the_last_interactions() -> None:
    scores = TracInScores(
        events=np.array([1, 2, 3, 4]),
        self_influence=np.zeros(4),
        validation=np.zeros(0),
        queries=np.zeros((4, 0)),
        loss=np.array([1.0, 2.0, 3.0, 4.0]),
        context=np.array([0.5, np.nan, -1.0, np.nan]),
    )
    # the two without a next interaction get the mean of the others, (0.5 - 1.0) / 2
    np.testing.assert_allclose(signal(scores, "context"), [1.5, 1.75, 2.0, 3.75])
    np.testing.assert_array_equal(signal(scores, "loss"), scores.loss)
    with pytest.raises(ValueError, match="unknown score"):
        signal(scores, "random")


def test_denoise_writes_a_trainable_dataset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = train_tiny_run(tmp_path, epochs=2, extra=("train.keep_every=1",))
    capsys.readouterr()
    out = tmp_path / "clean"
    assert main(["denoise", str(run), "--fraction", "0.05", "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    original = EventDataset.load(run / "data")
    cleaned = EventDataset.load(out)
    assert cleaned.events.num_rows == original.events.num_rows - report["removed_events"]
    assert report["removed_events"] == round(0.05 * report["training_interactions"])
    assert sum(report["removed_by_behavior"].values()) == report["removed_events"]
    listing = pq.read_table(out / "removed.parquet")
    assert listing.num_rows == report["removed_events"]
    assert cleaned.stats["edits"][-1]["by"] == "context"  # the default
    # the removed are the highest by loss + context harm, listed with those values
    tracin = DataInfluence(run).tracin(validation=False)
    values = signal(tracin, "context")
    original_rows = original.events.column("row").to_numpy()
    removed_events = np.flatnonzero(np.isin(original_rows, listing.column("row").to_numpy()))
    removed = np.isin(tracin.events, removed_events)
    assert removed.sum() == report["removed_events"]
    np.testing.assert_allclose(
        np.sort(listing.column("score").to_numpy()), np.sort(values[removed])
    )
    assert values[removed].min() >= values[~removed].max()
    assert held_out_events(cleaned) == held_out_events(original)
    assert main(["denoise", str(run), "--fraction", "0.05", "--out", str(out)]) == 2  # exists
    assert main(["denoise", str(run), "--fraction", "1.5", "--out", str(tmp_path / "x")]) == 2
    settings = ["--set", "model.d_model=16", "--set", "train.epochs=1", "--no-progress"]
    assert main(["train", str(out), "--out", str(tmp_path / "run2"), *settings]) == 0
