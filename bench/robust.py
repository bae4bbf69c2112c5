"""Robust ranking against accidental clicks: NDCG with and without the option.

    python bench/robust.py                           # planted synthetic data, 3 seeds
    python bench/robust.py --data data/ml-100k --config bench/configs/ml-100k.toml --seeds 0 1 2

For each training seed a model is trained (leave-one-out split), then every test target is
ranked among all items (full ranking, seen items not masked) after its user's history:

- clean: the history as it is;
- accidental: the history with one extra low-intent event among its last three (seeded
  position), a uniformly random item (seeded): an accidental click shortly before the true
  next event.

Each is ranked plainly and with robust ranking (`influrec.influence.robust`: each item's worst
log-probability over single deletions of the last `--recent` low-intent events). On the
built-in synthetic data the low-intent behaviour is `view`; on a dataset with one behaviour
every event counts (`--low-intent` overrides). The accidental click on real data is added with
that dataset's first low-intent behaviour. Prints one markdown table (mean and spread over
seeds); writes results.json next to the runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from influrec.config import load_config
from influrec.data.dataset import EventDataset
from influrec.data.history import History
from influrec.data.splits import make_split
from influrec.data.synthesize import synthesize_dataset
from influrec.data.synthetic import SynthConfig
from influrec.inference import Recommender
from influrec.influence.engine import Scorer
from influrec.influence.robust import RECENT, deletable, low_intent_codes
from influrec.training.loop import train
from train import machine_line

K = 10
SYNTHETIC = [
    "model.max_len=50",
    "model.d_model=64",
    "model.layers=2",
    "model.heads=2",
    "train.epochs=30",
    "train.patience=5",
    "train.max_minutes=4",
]


def with_click(history: History, item: int, behavior: int, at: int) -> History:
    """The history with one more event at position ``at``: ``item`` with ``behavior``, at the
    time of the event before it."""
    time = int(history.timestamps[at - 1]) if at > 0 else int(history.timestamps[0])
    return History(
        np.insert(history.items, at, item),
        np.insert(history.behaviors, at, behavior),
        np.insert(history.timestamps, at, time),
        np.insert(history.values, at, np.float32(0)),
    )


def plain_and_robust(
    scorer: Scorer, history: History, low_intent: np.ndarray | None, recent: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(I + 1,) plain log-probabilities and robust ones, from one batch of rows."""
    positions = deletable(history, low_intent, recent=recent)
    n = len(history)
    rows = [np.arange(n)] + [np.delete(np.arange(n), p) for p in positions]
    log_probabilities = torch.log_softmax(scorer.scores(history, rows), dim=-1)
    return log_probabilities[0], log_probabilities.amin(dim=0)


def ndcg_hr(scores: torch.Tensor, target: int) -> tuple[float, float]:
    rank = int((scores[1:] > scores[target]).sum()) + 1
    return (1 / np.log2(rank + 1) if rank <= K else 0.0), float(rank <= K)


def evaluate(
    rec: Recommender, low_intent: np.ndarray | None, recent: int, seed: int
) -> dict[str, float]:
    """NDCG@10 / HR@10 of the test targets: clean and with an accidental click, plain and
    robust."""
    data = rec.data
    targets = make_split(data, rec.info.config.data).test
    rng = np.random.default_rng(seed + 1000)
    click_behavior = int(low_intent[0]) if low_intent is not None else 1
    scorer = Scorer(rec.model)
    sums: dict[str, list[float]] = {}
    started = time.perf_counter()
    for target in targets:
        start = data.user_start[data.user[target]]
        if target - start < 1:
            continue
        span = slice(start, target)
        history = History(
            data.item[span], data.behavior[span], data.timestamp[span], data.value[span]
        )
        at = len(history) - int(rng.integers(0, 3))  # among the last three events
        clicked = with_click(history, int(rng.integers(1, rec.n_items + 1)), click_behavior, at)
        item = int(data.item[target])
        for case, h in (("clean", history), ("accidental", clicked)):
            plain, robust = plain_and_robust(scorer, h, low_intent, recent)
            for how, scores in (("plain", plain), ("robust", robust)):
                ndcg, hr = ndcg_hr(scores, item)
                sums.setdefault(f"{case} {how} NDCG@10", []).append(ndcg)
                sums.setdefault(f"{case} {how} HR@10", []).append(hr)
    result = {name: float(np.mean(values)) for name, values in sums.items()}
    result["targets"] = len(sums["clean plain NDCG@10"])
    result["seconds"] = time.perf_counter() - started
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="a prepared dataset (default: synthetic)")
    parser.add_argument("--config", type=Path, help="training config (default: a small one)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--recent", type=int, default=RECENT)
    parser.add_argument(
        "--low-intent",
        nargs="*",
        help="low-intent behaviours (default: view on synthetic data, every behaviour otherwise)",
    )
    parser.add_argument(
        "--trigger-view",
        type=float,
        default=0.25,
        help="synthetic data: how often a view causes a later event (views that matter make "
        "an accidental one costly)",
    )
    parser.add_argument("--minutes", type=float, help="training time budget per seed")
    parser.add_argument("--out", type=Path, default=Path("bench/out/robust"))
    args = parser.parse_args()
    if args.data:
        dataset = EventDataset.load(args.data)
        low = args.low_intent
    else:
        synth = SynthConfig(
            n_users=2000, n_items=300, mean_events=30, trigger_view=args.trigger_view
        )
        dataset = synthesize_dataset(synth)
        low = args.low_intent if args.low_intent is not None else ["view"]
    print(machine_line())
    rows: dict[int, dict[str, float]] = {}
    for seed in args.seeds:
        overrides = ([] if args.config else SYNTHETIC) + [f"train.seed={seed}"]
        if args.minutes:
            overrides.append(f"train.max_minutes={args.minutes}")
        run = args.out / f"seed{seed}"
        started = time.perf_counter()
        train(dataset, load_config(args.config, overrides), run, progress=False)
        rec = Recommender.load(run)
        train_s = time.perf_counter() - started
        rows[seed] = evaluate(rec, low_intent_codes(rec, low), args.recent, seed)
        rows[seed]["train seconds"] = train_s
        print(f"seed {seed}: {json.dumps(rows[seed])}", flush=True)
    print_table(rows, low, args.recent)
    (args.out / "results.json").write_text(
        json.dumps(
            {"machine": machine_line(), "low_intent": low, "recent": args.recent, "seeds": rows},
            indent=2,
        )
    )


def print_table(rows: dict[int, dict[str, Any]], low: list[str] | None, recent: int) -> None:
    print(
        f"\nlow-intent behaviours: {low or 'all'}; deletions among the last {recent} events; "
        f"{len(rows)} seeds (mean ± sd)\n"
    )
    print("| history | ranking | NDCG@10 | HR@10 |")
    print("|---|---|---|---|")
    for case in ("clean", "accidental"):
        for how in ("plain", "robust"):
            cells = []
            for metric in ("NDCG@10", "HR@10"):
                values = [r[f"{case} {how} {metric}"] for r in rows.values()]
                sd = statistics.stdev(values) if len(values) > 1 else 0.0
                cells.append(f"{statistics.mean(values):.4f} ± {sd:.4f}")
            print(f"| {case} | {how} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
