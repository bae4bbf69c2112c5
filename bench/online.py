"""Online learning on real logs with time: a stale model, `update`, and a full retrain.

Global temporal protocol on the ML-1M timestamped part (5-core, the first ``--users`` users):
events are cut by time into a first period (``--first`` of the events) and periods of
``--period`` of the events each. A base model is trained on period 1. Then for each step s:

    stale    the base model, never trained again
    update   the previous step's model (the base at step 1) updated on period s+1's events
    retrain  a model trained from scratch on periods 1..s+1

and each is scored on the events of period s+2: every event predicted from all of its user's
earlier events (any period, the way the service reads history), full ranking over the items the
model knows (a target item it does not know counts as a miss), items already in the history
masked. Users who had no event in the update's period are reported apart ("old users"): how
much the models forget the users they no longer see. Wall times are training only; the machine
is shared and loaded, so compare times within one run only.

    python bench/online.py                           # 1 step, replay 0 and the default share
    python bench/online.py --steps 2 --replay 0,0.25,0.5,0.75
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from influrec.config import ExperimentConfig
from influrec.data import schema
from influrec.data.dataset import EventDataset, build_dataset, columns_from_table
from influrec.data.history import History
from influrec.data.preprocess import PrepareConfig
from influrec.inference import Recommender
from influrec.training.loop import train
from influrec.training.update import DEFAULT_REPLAY, UpdateSettings, update_run
from train import machine_line, prepared

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "online"
CONFIG = {
    "model": {"max_len": 50, "d_model": 32, "layers": 1, "heads": 1, "dropout": 0.2},
    "train": {
        "epochs": 8,
        "batch_size": 128,
        "lr": 0.002,
        "warmup_steps": 50,
        "loss": "ce",
        "behavior_weight": 0.0,
        "patience": 2,
    },
    "model_extra": {"behavior_head": False, "attn_dropout": 0.2},
    "eval": {"ks": [10], "mask_seen": True},
}


def experiment_config() -> ExperimentConfig:
    model = {**CONFIG["model"], **CONFIG["model_extra"]}
    return ExperimentConfig.from_dict(
        {"model": model, "train": CONFIG["train"], "eval": CONFIG["eval"]}
    )


def raw_events(dataset: EventDataset, users: int) -> pa.Table:
    """The first ``users`` users' events as a RAW_SCHEMA table (row: position)."""
    events = dataset.events.filter(pc.less_equal(dataset.events.column("user_idx"), users))
    return pa.table(
        {name: events.column(name).cast(pa.string()) for name in ("user_id", "item_id", "behavior")}
        | {"timestamp": events.column("timestamp"), "value": events.column("value")}
        | {"row": pa.array(np.arange(events.num_rows), pa.int64())},
        schema=schema.RAW_SCHEMA,
    )


def period_cuts(raw: pa.Table, first: float, period: float, steps: int) -> list[int]:
    """Times ending period 1, 2, ... steps + 2 (event-count quantiles)."""
    times = np.sort(raw.column("timestamp").to_numpy())
    shares = [first + period * n for n in range(steps + 2)]
    return [int(times[min(len(times) - 1, int(len(times) * s))]) for s in shares]


def between(raw: pa.Table, low: int | None, high: int) -> pa.Table:
    t = raw.column("timestamp").to_numpy()
    keep = (t < high) if low is None else ((t >= low) & (t < high))
    return raw.filter(pa.array(keep))


def as_dataset(raw: pa.Table) -> EventDataset:
    return build_dataset(columns_from_table(raw), PrepareConfig(), read_stats={"source": "bench"})


class Evaluator:
    """Scores runs on one period's events with every user's whole earlier history."""

    def __init__(self, raw: pa.Table, low: int, high: int, *, targets: int, seed: int) -> None:
        order = np.lexsort((raw.column("row").to_numpy(), raw.column("timestamp").to_numpy()))
        raw = raw.take(pa.array(order))
        self.user = np.array(raw.column("user_id").to_pylist(), object)
        self.item = np.array(raw.column("item_id").to_pylist(), object)
        self.time = raw.column("timestamp").to_numpy()
        self.behavior = np.array(raw.column("behavior").to_pylist(), object)
        self.value = np.nan_to_num(raw.column("value").to_numpy(zero_copy_only=False))
        by_user: dict[str, list[int]] = {}
        for n, user in enumerate(self.user):
            by_user.setdefault(user, []).append(n)
        self.earlier = by_user
        pool = np.flatnonzero((self.time >= low) & (self.time < high))
        pool = np.array([p for p in pool if by_user[self.user[p]][0] != p])  # has a history
        rng = np.random.default_rng(seed)
        self.targets = np.sort(rng.choice(pool, size=min(targets, len(pool)), replace=False))

    def history(self, rec: Recommender, target: int) -> History:
        events = self.earlier[self.user[target]]
        before = [e for e in events[: events.index(target)]][-rec.model.config.max_len :]
        items = [rec.item_index.get(self.item[e], 0) for e in before]
        kept = [e for e, i in zip(before, items, strict=True) if i]
        return History(
            np.array([rec.item_index[self.item[e]] for e in kept], np.int64),
            np.array([rec.behavior_index[self.behavior[e]] for e in kept], np.int64),
            self.time[kept].astype(np.int64),
            self.value[kept].astype(np.float32),
        )

    def score(self, run: Path, groups: dict[str, np.ndarray], k: int = 10) -> dict[str, Any]:
        rec = Recommender.load(run)
        hits, gains = np.zeros(len(self.targets)), np.zeros(len(self.targets))
        for begin in range(0, len(self.targets), 256):
            chunk = self.targets[begin : begin + 256]
            histories = [self.history(rec, int(t)) for t in chunk]
            nonempty = [n for n, h in enumerate(histories) if len(h)]
            scores = rec.scores([histories[n] for n in nonempty])
            for row, n in enumerate(nonempty):
                wanted = rec.item_index.get(self.item[chunk[n]])
                if wanted is None:
                    continue  # an item the model does not know: a miss
                s = scores[row].clone()
                s[torch.from_numpy(histories[n].items)] = -math.inf
                rank = int((s > s[wanted]).sum())
                hits[begin + n] = rank < k
                gains[begin + n] = 1 / math.log2(rank + 2) if rank < k else 0.0
        out = {}
        for name, mask in groups.items():
            out[name] = {
                "targets": int(mask.sum()),
                f"HR@{k}": float(hits[mask].mean()) if mask.any() else math.nan,
                f"NDCG@{k}": float(gains[mask].mean()) if mask.any() else math.nan,
            }
        return out


def timed_train(raw: pa.Table, out: Path) -> tuple[Path, float]:
    started = time.perf_counter()
    train(as_dataset(raw), experiment_config(), out, progress=False)
    return out, time.perf_counter() - started


def timed_update(
    parent: Path, new: pa.Table, out: Path, replay: float, epochs: int
) -> tuple[Path, float]:
    started = time.perf_counter()
    settings = UpdateSettings(epochs=epochs, replay=replay)
    update_run(parent, new, out, settings=settings, source="bench", progress=False)
    return out, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1500)
    parser.add_argument("--first", type=float, default=0.6, help="share of events in period 1")
    parser.add_argument("--period", type=float, default=0.1, help="share of events per period")
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--replay", default=f"0,{DEFAULT_REPLAY}", help="update replay shares")
    parser.add_argument("--update-epochs", type=int, default=UpdateSettings.epochs)
    parser.add_argument("--targets", type=int, default=4000, help="sampled evaluation events")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    print(machine_line())
    print("command: python bench/online.py " + " ".join(sys.argv[1:]))
    print(f"config: {json.dumps(CONFIG)}")
    raw = raw_events(prepared("ml-1m"), args.users)
    cuts = period_cuts(raw, args.first, args.period, args.steps)
    print(f"{raw.num_rows:,} events of {args.users} users; period ends {cuts}")
    replays = [float(r) for r in args.replay.split(",")]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = args.out / stamp
    base, base_s = timed_train(between(raw, None, cuts[0]), out / "base")
    print(f"base trained on period 1 in {base_s:.0f} s")
    rows: list[dict[str, Any]] = []
    previous = dict.fromkeys(replays, base)
    for step in range(1, args.steps + 1):
        rows += run_step(raw, cuts, step, base, previous, replays, args, out)
    (out / "results.json").write_text(json.dumps(rows, indent=1))
    print_table(rows)


def run_step(
    raw: pa.Table,
    cuts: list[int],
    step: int,
    base: Path,
    previous: dict[float, Path],
    replays: list[float],
    args: argparse.Namespace,
    out: Path,
) -> list[dict[str, Any]]:
    """One step: update on period step+1, retrain on periods 1..step+1, score period step+2."""
    new = between(raw, cuts[step - 1], cuts[step])
    evaluator = Evaluator(raw, cuts[step], cuts[step + 1], targets=args.targets, seed=step)
    active = set(new.column("user_id").to_pylist())
    old = np.array([evaluator.user[t] not in active for t in evaluator.targets])
    groups = {"all": np.ones(len(old), bool), "old users": old}
    retrain, retrain_s = timed_train(between(raw, None, cuts[step]), out / f"retrain-{step}")
    rows = [
        {"step": step, "model": "stale", "seconds": 0.0, **evaluator.score(base, groups)},
        {
            "step": step,
            "model": "retrain",
            "seconds": retrain_s,
            **evaluator.score(retrain, groups),
        },
    ]
    for replay in replays:
        run, seconds = timed_update(
            previous[replay], new, out / f"update-{step}-r{replay}", replay, args.update_epochs
        )
        previous[replay] = run
        name = f"update r={replay}"
        rows.append(
            {"step": step, "model": name, "seconds": seconds, **evaluator.score(run, groups)}
        )
    for row in rows:
        print(json.dumps(row), flush=True)
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    print(
        f"\n{'step':>4} {'model':<16} {'NDCG@10':>8} {'HR@10':>7} {'old NDCG':>9} "
        f"{'seconds':>8} {'gain kept':>9} {'time':>6}"
    )
    for step in sorted({r["step"] for r in rows}):
        part = {r["model"]: r for r in rows if r["step"] == step}
        stale, retrain = part["stale"]["all"]["NDCG@10"], part["retrain"]["all"]["NDCG@10"]
        for name, r in part.items():
            # a retrain no better than the stale model has no gain to keep: no ratio
            gain = (r["all"]["NDCG@10"] - stale) / (retrain - stale) if retrain > stale else None
            share = r["seconds"] / part["retrain"]["seconds"]
            kept = "n/a" if gain is None else f"{gain:.0%}"
            print(
                f"{step:>4} {name:<16} {r['all']['NDCG@10']:>8.4f} {r['all']['HR@10']:>7.4f} "
                f"{r['old users']['NDCG@10']:>9.4f} {r['seconds']:>8.1f} {kept:>9} {share:>6.0%}"
            )
    print("gain kept: (NDCG - stale) / (retrain - stale); time: share of the retrain's seconds")


if __name__ == "__main__":
    main()
