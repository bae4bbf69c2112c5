"""Seeded noise for the data-influence benchmarks (``bench/data_influence.py noise``): random
interactions injected into a prepared dataset's training sequences, and how well a method's
flagged interactions find them.

Only training interactions are added (never a validation or test target), and the
vocabularies are kept, so a noisy dataset trains and evaluates like the original.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from influrec.config import ExperimentConfig
from influrec.data.dataset import EventDataset
from influrec.data.sequences import SequenceData
from influrec.data.splits import make_split


def training_targets(dataset: EventDataset, config: ExperimentConfig) -> np.ndarray:
    """Event indices of the dataset's training targets under ``config.data``'s split."""
    data = SequenceData.from_dataset(dataset)
    train = make_split(data, config.data).train
    return np.sort(train[train > data.user_start[data.user[train]]])


@dataclass
class NoisyDataset:
    dataset: EventDataset
    injected: np.ndarray  # (N,) bool over the new dataset's events: True for injected ones


def inject_noise(
    dataset: EventDataset, config: ExperimentConfig, *, fraction: float, seed: int
) -> NoisyDataset:
    """Insert ``fraction`` x (training targets) random interactions into training sequences.

    Each is placed just before a distinct, randomly chosen training target, with an item drawn
    uniformly from the catalogue, that target's behaviour, a time between its neighbours and
    no value; validation and test targets are unchanged.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    rng = np.random.default_rng(seed)
    targets = training_targets(dataset, config)
    anchors = np.sort(rng.choice(targets, round(fraction * len(targets)), replace=False))
    n = dataset.events.num_rows
    source = np.insert(np.arange(n), anchors, anchors)  # each anchor row copied before itself
    injected = np.insert(np.zeros(n, bool), anchors, True)
    table = dataset.events.take(pa.array(source))
    noise = np.flatnonzero(injected)
    items = table.column("item_idx").to_numpy().copy()
    items[noise] = rng.integers(1, dataset.n_items + 1, len(noise))
    times = table.column("timestamp").to_numpy().copy()
    before, after = times[noise - 1], times[noise]  # the previous event is the same user's
    times[noise] = before + np.floor(rng.random(len(noise)) * (after - before + 1)).astype(np.int64)
    rows = table.column("row").to_numpy().copy()
    rows[noise] = rows.max() + 1 + np.arange(len(noise))
    value = table.column("value").to_numpy(zero_copy_only=False).copy()
    value[noise] = np.nan
    item_dictionary = dataset.events.column("item_id").chunk(0).dictionary
    columns = {
        "item_id": pa.DictionaryArray.from_arrays(pa.array(items, pa.int32()), item_dictionary),
        "timestamp": pa.array(times, pa.int64()),
        "value": pa.array(value, pa.float64(), mask=np.isnan(value)),
        "row": pa.array(rows, pa.int64()),
        "item_idx": pa.array(items, pa.int32()),
    }
    for name, column in columns.items():
        table = table.set_column(table.schema.get_field_index(name), name, column)
    stats = copy.deepcopy(dataset.stats)
    stats["events"] = table.num_rows
    stats.setdefault("edits", []).append(
        {"edit": "inject_noise", "fraction": fraction, "seed": seed, "injected": len(noise)}
    )
    noisy = EventDataset(
        table.combine_chunks(), dataset.users, dataset.items, dataset.behaviors, stats
    )
    return NoisyDataset(noisy, injected)


def flag_quality(flagged: np.ndarray, injected: np.ndarray) -> dict[str, float]:
    """Precision and recall of ``flagged`` event indices against the ``injected`` mask."""
    hits = int(injected[flagged].sum())
    return {
        "flagged": len(flagged),
        "injected": int(injected.sum()),
        "precision": hits / max(1, len(flagged)),
        "recall": hits / max(1, int(injected.sum())),
    }
