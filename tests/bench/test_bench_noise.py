"""bench/noise.py: the seeded noise of the data-influence benchmarks (imported as the bench
scripts import it: bench/ is on pytest's python path)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from influrec.config import load_config
from influrec.data.dataset import EventDataset
from influrec.data.synthesize import synthesize_dataset
from influrec.data.synthetic import SynthConfig
from noise import flag_quality, inject_noise, training_targets
from tests_helpers import held_out_events


@pytest.fixture(scope="module")
def dataset() -> EventDataset:
    return synthesize_dataset(SynthConfig(n_users=60, n_items=40, mean_events=20, seed=3))


def test_inject_noise_touches_only_training_sequences(
    dataset: EventDataset, tmp_path: Path
) -> None:
    config = load_config()
    targets = training_targets(dataset, config)
    noisy = inject_noise(dataset, config, fraction=0.1, seed=7)
    events = noisy.dataset.events
    assert int(noisy.injected.sum()) == round(0.1 * len(targets))
    assert events.num_rows == dataset.events.num_rows + int(noisy.injected.sum())
    assert held_out_events(noisy.dataset) == held_out_events(dataset)  # valid, test unchanged
    user = events.column("user_idx").to_numpy()
    times = events.column("timestamp").to_numpy()
    same_user = user[1:] == user[:-1]
    assert np.all(np.diff(times)[same_user] >= 0)  # still in time order
    injected = np.flatnonzero(noisy.injected)
    assert np.all(user[injected] == user[injected - 1])  # never a user's first event
    assert np.all(np.isin(injected, training_targets(noisy.dataset, config)))
    ids = events.column("item_id").to_pylist()
    vocabulary = dataset.items.column("item_id").to_pylist()
    assert [ids[i] for i in injected] == [
        vocabulary[k - 1] for k in events.column("item_idx").to_numpy()[injected]
    ]
    original = np.flatnonzero(~noisy.injected)
    assert (
        events.take(original).column("row").to_pylist() == dataset.events.column("row").to_pylist()
    )
    again = inject_noise(dataset, config, fraction=0.1, seed=7)
    assert again.dataset.events.equals(events)  # seeded
    noisy.dataset.save(tmp_path / "noisy")
    assert EventDataset.load(tmp_path / "noisy").events.num_rows == events.num_rows


def test_flag_quality_is_precision_and_recall_of_the_injected() -> None:
    injected = np.zeros(20, bool)
    injected[[1, 2, 3, 4]] = True
    assert flag_quality(np.array([1, 2, 9]), injected) == {
        "flagged": 3,
        "injected": 4,
        "precision": 2 / 3,
        "recall": 0.5,
    }
    assert flag_quality(np.array([], np.int64), injected)["precision"] == 0.0
