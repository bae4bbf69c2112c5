"""Poisoning: fake users push an item; does the audit find them, and does removing them help?

    python bench/poison.py data/ml-100k --config bench/configs/ml-100k.toml --minutes 4

Fake profiles (shilling) are added to the training data of a prepared dataset: `--fakes` of the
users' count (2% by default), each `--profile-len` events that pair filler items with one
target item (the target after every third filler), in the three usual styles:

- random: fillers drawn from the whole catalogue;
- bandwagon: fillers from the 5% most popular items;
- segment: fillers from the target's own category (its first genre or category value).

The target is a rarely bought item (seeded choice among items with 5 to 15 events). For each
style: train on the clean and on the poisoned data; audit the poisoned run for the target
(`influrec audit`: training users ranked by TracIn push); remove the flagged users and train
again. The target's exposure (share of real users with it in their top 10, and its mean rank)
and test NDCG@10 are measured on real users only (full ranking, seen items not masked).
Prints one markdown table; writes results.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from influrec.config import load_config
from influrec.data.dataset import EventDataset
from influrec.data.item_names import CATEGORY_COLUMNS
from influrec.data.sequences import SequenceData
from influrec.data.splits import make_split
from influrec.data_influence.audit import audit_items, without_users
from influrec.data_influence.tracin import DataInfluence
from influrec.evaluation.metrics import ranks_from_scores
from influrec.evaluation.protocol import evaluate_targets, model_score_fn
from influrec.run import load_run
from influrec.training.loop import Trainer
from train import machine_line

STYLES = ("random", "bandwagon", "segment")


@dataclass
class Poisoned:
    dataset: EventDataset
    fakes: np.ndarray  # user_idx of the fake users
    target: int  # item_idx pushed


def pick_target(dataset: EventDataset, seed: int) -> int:
    counts = np.bincount(
        dataset.events.column("item_idx").to_numpy(), minlength=dataset.n_items + 1
    )
    rare = np.flatnonzero((counts >= 5) & (counts <= 15))
    return int(np.random.default_rng(seed).choice(rare))


def fillers(dataset: EventDataset, style: str, target: int) -> np.ndarray:
    counts = np.bincount(
        dataset.events.column("item_idx").to_numpy(), minlength=dataset.n_items + 1
    )
    counts[0] = 0
    if style == "random":
        pool = np.arange(1, dataset.n_items + 1)
    elif style == "bandwagon":
        pool = np.argsort(-counts, kind="stable")[: max(10, dataset.n_items // 20)]
    else:
        column = next(c for c in CATEGORY_COLUMNS if c in dataset.items.column_names)
        first = [
            (c or "").split("|")[0]
            for c in dataset.items.column(column).cast(pa.string()).to_pylist()
        ]
        pool = np.array([i + 1 for i, c in enumerate(first) if c and c == first[target - 1]])
    return pool[pool != target]


def inject_shilling(
    dataset: EventDataset, *, target: int, share: float, style: str, profile_len: int, seed: int
) -> Poisoned:
    """The dataset with fake users appended (new user ids `fake-N`, times after the data's)."""
    rng = np.random.default_rng(seed)
    n_fakes = max(1, round(share * dataset.n_users))
    pool = fillers(dataset, style, target)
    behavior = int(np.bincount(dataset.events.column("behavior_idx").to_numpy()).argmax())
    values = dataset.events.column("value").to_numpy(zero_copy_only=False)
    top_value = float(np.nanmax(values)) if np.isfinite(values).any() else np.nan
    items: list[int] = []
    users: list[int] = []
    for fake in range(n_fakes):
        sequence: list[int] = []
        for filler in rng.choice(pool, size=profile_len - profile_len // 4):
            sequence.append(int(filler))
            if len(sequence) % 4 == 3:
                sequence.append(target)
        items += sequence[:profile_len]
        users += [dataset.n_users + 1 + fake] * len(sequence[:profile_len])
    n = len(items)
    start = int(dataset.events.column("timestamp").to_numpy().max()) + 1
    times = start + np.arange(n, dtype=np.int64)
    user_ids = dataset.users.column("user_id").to_pylist() + [f"fake-{f}" for f in range(n_fakes)]
    item_ids = dataset.items.column("item_id").to_pylist()
    old = dataset.events
    fake_table = pa.table(
        {
            "user_id": pa.array([user_ids[u - 1] for u in users]),
            "item_id": pa.array([item_ids[i - 1] for i in items]),
            "behavior": pa.array([dataset.behaviors[behavior]] * n),
            "timestamp": pa.array(times),
            "value": pa.array(np.full(n, top_value), mask=np.isnan(np.full(n, top_value))),
            "row": pa.array(int(old.column("row").to_numpy().max()) + 1 + np.arange(n)),
            "user_idx": pa.array(users, pa.int32()),
            "item_idx": pa.array(items, pa.int32()),
            "behavior_idx": pa.array([behavior] * n, pa.int16()),
        }
    )
    plain = old.cast(fake_table.schema)  # dictionaries to plain strings, then both concatenated
    events = pa.concat_tables([plain, fake_table.cast(plain.schema)])
    for name in ("user_id", "item_id", "behavior"):
        events = events.set_column(
            events.schema.get_field_index(name), name, events.column(name).dictionary_encode()
        )
    users_table = pa.table(
        {"user_idx": pa.array(np.arange(1, len(user_ids) + 1), pa.int32()), "user_id": user_ids}
    )
    stats = copy.deepcopy(dataset.stats)
    stats.update(users=len(user_ids), events=events.num_rows)
    stats.setdefault("edits", []).append({"edit": "shilling", "style": style, "fakes": n_fakes})
    poisoned = EventDataset(
        events.combine_chunks(),
        users_table,
        dataset.items,
        dataset.behaviors,
        stats,
        item_text=dataset.item_text,
    )
    fakes = np.arange(dataset.n_users + 1, dataset.n_users + 1 + n_fakes)
    return Poisoned(poisoned, fakes, target)


def exposure(run_dir: Path, real_users: int, target: int) -> dict[str, float]:
    """On real users' test queries: share with the target in the top 10, its mean rank, and
    test NDCG@10 / HR@10 (full ranking, seen items not masked)."""
    model, info, dataset = load_run(run_dir)
    data = SequenceData.from_dataset(dataset)
    test = make_split(data, info.config.data).test
    test = test[data.user[test] <= real_users]
    score_fn = model_score_fn(model.eval(), data, device=torch.device("cpu"))
    ranks = []
    for begin in range(0, len(test), 512):
        scores, _ = score_fn(test[begin : begin + 512])
        ranks.append(ranks_from_scores(scores, torch.full((scores.shape[0],), target)))
    rank = torch.cat(ranks).numpy()
    metrics = evaluate_targets(score_fn, data, test, ks=(10,)).metrics.unmasked
    return {
        "target_in_top10": float((rank < 10).mean()),
        "target_mean_rank": float(rank.mean() + 1),
        "NDCG@10": metrics["NDCG@10"],
        "HR@10": metrics["HR@10"],
    }


def train(dataset: EventDataset, config: Any, out: Path) -> Path:
    Trainer(dataset, config, out, progress=sys.stderr.isatty()).fit()
    return out


def one_style(
    args: argparse.Namespace, clean: EventDataset, config: Any, style: str, target: int
) -> dict[str, Any]:
    poisoned = inject_shilling(
        clean,
        target=target,
        share=args.fakes,
        style=style,
        profile_len=args.profile_len,
        seed=args.seed,
    )
    run = train(poisoned.dataset, config, args.out / f"run-{style}")
    started = time.perf_counter()
    item_id = clean.items.column("item_id")[target - 1].as_py()
    audit = audit_items(DataInfluence(run), [item_id], seed=args.seed)
    audit_s = time.perf_counter() - started
    top = audit.users[: len(poisoned.fakes)]
    flagged_fake = np.isin(audit.flagged, poisoned.fakes)
    cleaned = without_users(poisoned.dataset, audit.flagged, note={"audit": item_id})
    retrained = train(cleaned, config, args.out / f"run-{style}-cleaned")
    return {
        "fakes": len(poisoned.fakes),
        "poisoned": exposure(run, clean.n_users, target),
        "cleaned": exposure(retrained, clean.n_users, target),
        "precision_at_fakes": float(np.isin(top, poisoned.fakes).mean()),
        "flagged": len(audit.flagged),
        "flagged_precision": float(flagged_fake.mean()) if len(flagged_fake) else 0.0,
        "flagged_recall": float(flagged_fake.sum() / len(poisoned.fakes)),
        "audit_seconds": audit_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data", type=Path, help="prepared dataset folder")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--minutes", type=float, default=4.0, help="training budget per model")
    parser.add_argument("--fakes", type=float, default=0.02, help="fake users, share of users")
    parser.add_argument("--profile-len", type=int, default=40)
    parser.add_argument("--styles", default=",".join(STYLES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench/out/poison"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    clean = EventDataset.load(args.data)
    config = load_config(args.config, [*args.set, f"train.max_minutes={args.minutes}"])
    target = pick_target(clean, args.seed)
    print(f"machine: {machine_line()}")
    print(
        f"target item {clean.items.column('item_id')[target - 1]} ({target}); {args.fakes:.0%} fake users of {args.profile_len} events\n"
    )
    results: dict[str, Any] = {
        "target": target,
        "clean": exposure(train(clean, config, args.out / "run-clean"), clean.n_users, target),
    }
    for style in args.styles.split(","):
        results[style] = one_style(args, clean, config, style, target)
        (args.out / "results.json").write_text(json.dumps(results, indent=1))
    print_table(results)


def print_table(results: dict[str, Any]) -> None:
    clean = results["clean"]
    print(
        "| attack | fakes | target in top 10: clean / poisoned / cleaned | mean rank: clean / poisoned / cleaned | NDCG@10: clean / poisoned / cleaned | audit precision at #fakes | flagged (precision, recall) | audit s |"
    )
    print("|---|---:|---|---|---|---:|---|---:|")
    for style, row in results.items():
        if style in ("target", "clean"):
            continue
        p, c = row["poisoned"], row["cleaned"]
        print(
            f"| {style} | {row['fakes']} | {clean['target_in_top10']:.3f} / {p['target_in_top10']:.3f} / {c['target_in_top10']:.3f} "
            f"| {clean['target_mean_rank']:.0f} / {p['target_mean_rank']:.0f} / {c['target_mean_rank']:.0f} "
            f"| {clean['NDCG@10']:.4f} / {p['NDCG@10']:.4f} / {c['NDCG@10']:.4f} | {row['precision_at_fakes']:.2f} "
            f"| {row['flagged']} ({row['flagged_precision']:.2f}, {row['flagged_recall']:.2f}) | {row['audit_seconds']:.0f} |"
        )


if __name__ == "__main__":
    main()
