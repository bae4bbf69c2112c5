"""Items no one has touched: can a model recommend them from their text?

    python bench/cold_start.py data/ml-100k --config bench/configs/ml-100k.toml --minutes 4

DATA is a prepared dataset with item text vectors (`influrec data embed-text DATA --columns
title,genres`). A share of the items (10% by default, seeded) is held out of training
entirely: every event of them is removed from the training sequences, except when it is a
user's last event, so these items appear only as test targets (leave-one-out). Three models
are trained with the same config and time budget:

- id only: the config as it is (the held-out items' own vectors never train);
- content only: `model.item_features=["text"]`, `model.id_embeddings=false`;
- ids + content: `model.item_features=["text"]` (items without training events by content);
- the same with `model.id_dropout=0.3`: in training, 30% of items per step are scored by their
  content alone, as new items will be.

Each is evaluated on the test targets, split into cold (held-out) and warm items, with full
ranking over every item (seen items not masked: a cold item was never seen). A popularity-of-
category baseline (an item's score: the mean training count of its category values, ties
broken at random, seeded, since ranks count ties against the target) is the reference a
content model must beat. Prints one markdown table and writes results.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from influrec.config import load_config
from influrec.data.dataset import EventDataset
from influrec.data.item_features import ItemFeatures
from influrec.data.sequences import SequenceData
from influrec.data.splits import make_split
from influrec.data_influence.cleaning import remove_events
from influrec.evaluation.protocol import evaluate_targets, history_score_fn, model_score_fn
from influrec.run import load_run
from influrec.training.loop import Trainer
from train import machine_line

VARIANTS = {
    "id only": [],
    "content only": ['model.item_features=["text"]', "model.id_embeddings=false"],
    "ids + content": ['model.item_features=["text"]'],
    "ids + content, id dropout 0.3": ['model.item_features=["text"]', "model.id_dropout=0.3"],
}
KS = (10, 50)


def hold_out_items(dataset: EventDataset, share: float, seed: int) -> tuple[EventDataset, set[int]]:
    """The dataset without the training events of a random `share` of items: their events stay
    only where they are a user's last event (a test target). Returns it and the items."""
    rng = np.random.default_rng(seed)
    n_items = dataset.n_items
    cold = set((rng.permutation(n_items)[: round(share * n_items)] + 1).tolist())
    data = SequenceData.from_dataset(dataset)
    last = np.zeros(len(data.item), bool)
    last[data.user_end[1:][data.user_end[1:] > data.user_start[1:]] - 1] = True
    in_cold = np.isin(data.item, np.fromiter(cold, np.int64))
    removed = np.flatnonzero(in_cold & ~last)
    note = {"cold_start_items": len(cold), "seed": seed}
    return remove_events(dataset, removed, note=note), cold


class CategoryPopularity:
    """An item's score: the mean, over its category values, of how many training events fell
    on items of that value (the same for every user)."""

    def __init__(self, dataset: EventDataset, column: str, train_items: np.ndarray) -> None:
        features = ItemFeatures.from_items(dataset.items, [column], dataset.n_items)
        per_item = np.bincount(train_items, minlength=dataset.n_items + 1).astype(np.float64)
        value_counts = np.zeros(len(features.values) + 1)
        np.add.at(value_counts, features.table, per_item[:, None])
        value_counts[0] = 0
        has = features.table > 0
        total = (value_counts[features.table] * has).sum(axis=1)
        mean = total / np.maximum(has.sum(axis=1), 1)
        tiebreak = np.random.default_rng(0).random(len(mean))
        self.item_scores = np.empty(len(mean), np.float32)  # the rank by (mean, tiebreak)
        self.item_scores[np.lexsort((tiebreak, mean))] = np.arange(len(mean))
        self.item_scores[0] = -np.inf

    def score(self, histories: list[np.ndarray]) -> np.ndarray:
        return np.tile(self.item_scores, (len(histories), 1))


def metrics_by_group(score_fn: Any, data: SequenceData, groups: dict[str, np.ndarray]) -> dict:
    out: dict[str, dict[str, float]] = {}
    for name, targets in groups.items():
        unmasked = evaluate_targets(score_fn, data, targets, ks=KS).metrics.unmasked
        out[name] = {k: unmasked[k] for k in ("HR@10", "NDCG@10", "HR@50")}
    return out


def train_variant(data_dir: Path, config: Any, out: Path) -> tuple[Path, float]:
    started = time.perf_counter()
    dataset = EventDataset.load(data_dir)
    Trainer(dataset, config, out, progress=sys.stderr.isatty()).fit()
    return out, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data", type=Path, help="prepared dataset with item text vectors")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--minutes", type=float, default=4.0, help="training budget per model")
    parser.add_argument("--share", type=float, default=0.1, help="share of items held out")
    parser.add_argument("--category", default="genres", help="item column of the baseline")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench/out/cold-start"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    dataset = EventDataset.load(args.data)
    if dataset.item_text is None:
        sys.exit(f"{args.data} has no item text: run `influrec data embed-text` on it first")
    cold_data, cold = hold_out_items(dataset, args.share, args.seed)
    data_dir = cold_data.save(args.out / "data", overwrite=True)
    print(f"machine: {machine_line()}")
    print(f"{len(cold)} of {dataset.n_items} items held out of training (seed {args.seed})\n")

    data = SequenceData.from_dataset(cold_data)
    base = load_config(args.config, [*args.set, f"train.max_minutes={args.minutes}"])
    split = make_split(data, base.data)
    is_cold = np.isin(data.item[split.test], np.fromiter(cold, np.int64))
    groups = {"cold": split.test[is_cold], "warm": split.test[~is_cold]}
    results: dict[str, Any] = {
        "cold_items": len(cold),
        "targets": {k: len(v) for k, v in groups.items()},
    }
    baseline = CategoryPopularity(cold_data, args.category, data.item[split.train])
    results["category popularity"] = {
        "metrics": metrics_by_group(history_score_fn(baseline, data), data, groups)
    }
    for name, overrides in VARIANTS.items():
        config = load_config(
            args.config, [*args.set, f"train.max_minutes={args.minutes}", *overrides]
        )
        run_dir, seconds = train_variant(
            data_dir, config, args.out / f"run-{name.replace(' ', '-')}"
        )
        model, _, _ = load_run(run_dir)
        score_fn = model_score_fn(model.eval(), data, device=torch.device("cpu"))
        results[name] = {"metrics": metrics_by_group(score_fn, data, groups), "seconds": seconds}
    print_table(results)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))


def print_table(results: dict[str, Any]) -> None:
    targets = results["targets"]
    print(
        f"test targets: {targets['cold']} cold, {targets['warm']} warm (full ranking, unmasked)\n"
    )
    print(
        "| model | cold HR@10 | cold NDCG@10 | cold HR@50 | warm HR@10 | warm NDCG@10 | warm HR@50 | cold/warm HR@50 | train s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, row in results.items():
        if not isinstance(row, dict) or "metrics" not in row:
            continue
        c, w = row["metrics"]["cold"], row["metrics"]["warm"]
        ratio = c["HR@50"] / w["HR@50"] if w["HR@50"] else float("nan")
        seconds = f"{row['seconds']:.0f}" if "seconds" in row else "-"
        print(
            f"| {name} | {c['HR@10']:.4f} | {c['NDCG@10']:.4f} | {c['HR@50']:.4f} | "
            f"{w['HR@10']:.4f} | {w['NDCG@10']:.4f} | {w['HR@50']:.4f} | {ratio:.2f} | {seconds} |"
        )


if __name__ == "__main__":
    main()
