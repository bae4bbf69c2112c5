"""Influence engine benchmark on a trained run: speed, counterfactual quality, faithfulness.

    python bench/influence.py bench/out/run-ml-1m --users 100 --faithfulness-users 500

Prints, for histories of the run's max_len events: exact leave-one-out for all events x all
items (p50/p95; and paired with Captum's FeatureAblation on the same measurement, history by
history, on ``--captum-users`` of them),
integrated gradients (50 steps) for the top-10 items, counterfactual sets for a top-10 item
(p50/p95 time, validity rate, mean size), and the faithfulness table.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from influrec.data.batching import batch_rows
from influrec.data.history import History
from influrec.inference import Recommender
from influrec.influence.api import faithfulness_report
from influrec.influence.attribution import integrated_gradients_many, leave_one_out
from influrec.influence.counterfactual import counterfactual_set
from influrec.influence.engine import Scorer
from influrec.influence.measurement import ItemScore, LogProbability
from influrec.models.protocol import score_last

sys.path.insert(0, str(Path(__file__).parent))
from train import machine_line


def timed(fn: Callable[[], object], repeats: int = 1) -> float:
    started = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - started) / repeats


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000


def long_histories(rec: Recommender, n: int, seed: int) -> list[History]:
    """Users with at least max_len events, their last max_len events (seeded sample)."""
    max_len = rec.model.config.max_len
    lengths = rec.data.user_end[1:] - rec.data.user_start[1:]
    users = np.flatnonzero(lengths >= max_len) + 1
    users = np.random.default_rng(seed).permutation(users)[:n]
    out = []
    for u in users:
        end = rec.data.user_end[u]
        span = slice(end - max_len, end)
        d = rec.data
        out.append(History(d.item[span], d.behavior[span], d.timestamp[span], d.value[span]))
    return out


def captum_feature_ablation(rec: Recommender, history: History, item: int, per_eval: int) -> float:
    """Seconds for Captum's FeatureAblation of log p(item), ablating one event at a time by
    masking it as padding (Captum perturbs in place; it does not re-pack the sequence)."""
    from captum.attr import FeatureAblation

    model = rec.model
    batch = batch_rows(
        history,
        [np.arange(len(history))],
        max_len=model.config.max_len,
        time_buckets=model.config.time_buckets,
    )

    def forward(items: torch.Tensor) -> torch.Tensor:
        b = items.shape[0]
        scores = score_last(
            model,
            items,
            batch.behaviors.expand(b, -1),
            batch.gaps.expand(b, -1),
            batch.values.expand(b, -1),
        )
        return torch.log_softmax(scores, -1)[:, item]

    ablation = FeatureAblation(forward)
    started = time.perf_counter()
    with torch.no_grad():
        ablation.attribute(batch.items, baselines=0, perturbations_per_eval=per_eval)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", type=Path)
    parser.add_argument("--users", type=int, default=100, help="histories timed")
    parser.add_argument("--counterfactual-users", type=int, default=500)
    parser.add_argument("--captum-users", type=int, default=30, help="histories timed with Captum")
    parser.add_argument("--faithfulness-users", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rec = Recommender.load(args.run)
    config = rec.model.config
    print(f"machine: {machine_line()}")
    print(f"command: python bench/influence.py {' '.join(sys.argv[1:])}")
    print(
        f"model: {args.run}: d {config.d_model}, {config.layers} layers, max_len {config.max_len}, "
        f"{rec.data.n_items:,} items"
    )
    scorer = Scorer(rec.model, batch_size=512)
    histories = long_histories(rec, args.users, args.seed)
    print(
        f"histories: {len(histories)} users with >= {config.max_len} events (their last {config.max_len})"
    )
    top = [int(torch.argmax(rec.scores([h])[0])) for h in histories]
    for h, item in zip(histories[:3], top[:3], strict=True):  # warm-up
        leave_one_out(scorer, h, LogProbability(item))
    loo = [
        timed(lambda h=h, i=i: leave_one_out(scorer, h, LogProbability(i)))
        for h, i in zip(histories, top, strict=True)
    ]
    print(f"\nexact leave-one-out, {config.max_len} deletions x all items (first layer shared):")
    print(
        f"  influrec                         p50 {pct(loo, 50):8.1f} ms   p95 {pct(loo, 95):8.1f} ms"
    )
    try:
        # paired: each history runs ours, Captum batched and Captum default back to back, so
        # the machine's drift (±10-20% between minutes here) hits all three alike
        pairs: list[tuple[float, float, float]] = []
        for h, i in list(zip(histories, top, strict=True))[: args.captum_users]:
            ours = timed(lambda h=h, i=i: leave_one_out(scorer, h, LogProbability(i)))
            batched = captum_feature_ablation(rec, h, i, config.max_len)
            default = captum_feature_ablation(rec, h, i, 1)
            pairs.append((ours, batched, default))
        ours_t, batched_t, default_t = (list(column) for column in zip(*pairs, strict=True))
        ratio_b = np.median(np.array(batched_t) / np.array(ours_t))
        ratio_d = np.median(np.array(default_t) / np.array(ours_t))
        print(
            f"  paired with Captum on {len(pairs)} of the histories (median of per-history ratios):"
        )
        print(f"  influrec                         p50 {pct(ours_t, 50):8.1f} ms")
        print(
            f"  Captum FeatureAblation, default  p50 {pct(default_t, 50):8.1f} ms   "
            f"({ratio_d:.1f}x ours)"
        )
        print(
            f"  Captum, perturbations_per_eval=L p50 {pct(batched_t, 50):8.1f} ms   "
            f"({ratio_b:.2f}x ours)"
        )
    except ImportError:
        print("  Captum not installed: comparison skipped")
    ig = []
    for h in histories[: max(10, args.users // 5)]:
        items = torch.topk(rec.scores([h])[0], 10).indices.tolist()
        measurements = [ItemScore(i) for i in items]
        ig.append(
            timed(lambda h=h, m=measurements: integrated_gradients_many(scorer, h, m, steps=50))
        )
    print(
        f"\nintegrated gradients, 50 steps, top-10 items: p50 {pct(ig, 50):.1f} ms   p95 {pct(ig, 95):.1f} ms"
    )
    counterfactual_bench(rec, scorer, args)
    report = faithfulness_report(
        rec, ["loo", "ig", "attention", "random"], users=args.faithfulness_users, seed=args.seed
    )
    print(f"\nfaithfulness over {report.users} users (explaining each top-1 item):")
    metrics = report.metrics
    rows = [f"DEL@{k}" for k in (1, 3, 5)] + [f"INS@{k}" for k in (1, 3, 5)]
    rows += [f"POS@{r},{k}" for r in (1, 5, 10, 20) for k in (1, 5)] + [
        "CDCG@1",
        "CDCG@5",
        "DEL-AUC",
        "INS-AUC",
    ]
    print(f"{'metric':10}" + "".join(f"{m:>11}" for m in metrics))
    for row in rows:
        print(f"{row:10}" + "".join(f"{metrics[m][row]:11.4f}" for m in metrics))
    for method, found in (report.planted_cause or {}).items():
        print(
            f"planted cause precision@1 {method}: {found.precision_at_1:.3f} ({found.cases} cases)"
        )


def counterfactual_bench(rec: Recommender, scorer: Scorer, args: argparse.Namespace) -> None:
    rng = np.random.default_rng(args.seed)
    user_ids = rec.dataset.users.column("user_id").to_pylist()
    sample = rng.choice(
        len(user_ids), size=min(args.counterfactual_users, len(user_ids)), replace=False
    )
    seconds, valid, sizes = [], [], []
    for u in sample:
        history = rec.user_history(user_ids[u])
        top = torch.topk(rec.scores([history])[0], 10).indices.tolist()
        item = top[int(rng.integers(0, 10))]
        result = counterfactual_set(scorer, history, item, k=10)
        seconds.append(result.seconds)
        valid.append(result.valid)
        if result.valid:
            sizes.append(result.size)
    print(
        f"\ncounterfactual sets for a random top-10 item of {len(sample)} users (verified by re-scoring):"
    )
    print(
        f"  time p50 {pct(seconds, 50):.1f} ms, p95 {pct(seconds, 95):.1f} ms; "
        f"valid {np.mean(valid):.1%}; mean size {np.mean(sizes) if sizes else float('nan'):.2f}"
    )


if __name__ == "__main__":
    main()
