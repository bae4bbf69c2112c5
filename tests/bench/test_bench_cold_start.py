"""bench/cold_start.py: held-out items appear only as users' last events, and the category
baseline scores an item by its categories' training popularity."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from cold_start import CategoryPopularity, hold_out_items
from influrec.data.sequences import SequenceData
from influrec.data.synthesize import synthesize_dataset
from influrec.data.synthetic import SynthConfig


def test_held_out_items_are_only_last_events() -> None:
    dataset = synthesize_dataset(SynthConfig(n_users=60, n_items=40, mean_events=20, seed=3))
    held, cold = hold_out_items(dataset, 0.1, seed=1)
    assert len(cold) == 4 and held.n_items == dataset.n_items  # the items stay in the catalogue
    data = SequenceData.from_dataset(held)
    positions = np.flatnonzero(np.isin(data.item, list(cold)))
    assert len(positions) > 0
    assert set(positions + 1) <= set(data.user_end[1:].tolist())  # each one a user's last
    before = SequenceData.from_dataset(dataset)
    lasts = before.item[before.user_end[1:] - 1]
    assert len(positions) == int(np.isin(lasts, list(cold)).sum())
    assert held.events.num_rows == dataset.events.num_rows - int(
        np.isin(before.item, list(cold)).sum() - len(positions)
    )


def test_category_popularity_is_the_mean_count_of_an_items_values() -> None:
    synthetic = synthesize_dataset(SynthConfig(n_users=60, n_items=40, mean_events=20, seed=3))
    items = pa.table(
        {
            "item_idx": [1, 2, 3],
            "item_id": ["a", "b", "c"],
            "genres": ["x", "x|y", ""],
        }
    )
    dataset = type(synthetic)(
        events=synthetic.events, users=synthetic.users, items=items,
        behaviors=synthetic.behaviors, stats=synthetic.stats,
    )  # fmt: skip
    train_items = np.array([1, 1, 2, 3, 3, 3])  # x: items 1, 2 -> 3 events; y: item 2 -> 1
    scores = CategoryPopularity(dataset, "genres", train_items).score([np.array([1])])[0]
    assert np.argsort(scores[1:]).tolist() == [2, 1, 0] and scores[0] == -np.inf
