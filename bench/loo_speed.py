"""Exact leave-one-out speed: every deletion re-scored whole in one batch, against the events
before each deletion encoded once and reused, and against the first layer shared by all
deletions (what ``leave_one_out`` does for long windows of models without time gaps).

    python bench/loo_speed.py --histories 50 --threads 2 [--chunk-rows 10,20,40]

Builds the model of bench/configs/ml-1m.toml (d 64, 2 layers, max_len 200) from random initial
weights: the work done does not depend on the weights, so no training is needed for timing.
Each history has max_len events, so every leave-one-out is max_len deletions x all items. The
methods run in turn on each history (so machine noise hits them alike), timed after a warm-up.
Both paths, for both ``model.positions``, are checked against one-at-a-time re-scoring on a few
histories.

The prefix path runs several times more (smaller) tensor operations than one big batch; on
oversubscribed cores (another process using them while torch runs 2 threads) each operation
waits on a descheduled thread. Time on a quiet machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from influrec.config import load_config
from influrec.data.batching import batch_histories
from influrec.data.history import History
from influrec.influence.attribution import leave_one_out
from influrec.influence.engine import Scorer
from influrec.influence.measurement import LogProbability
from influrec.models.protocol import SequenceModel
from influrec.models.registry import build_model

sys.path.insert(0, str(Path(__file__).parent))
from train import machine_line

CONFIG = Path(__file__).parent / "configs" / "ml-1m.toml"


def random_histories(n: int, length: int, *, items: int, seed: int) -> list[History]:
    rng = np.random.default_rng(seed)
    return [
        History(
            rng.integers(1, items + 1, length),
            rng.integers(1, 2, length),
            np.cumsum(rng.integers(0, 86_400, length)),
            np.zeros(length, np.float32),
        )
        for _ in range(n)
    ]


def models(n_items: int, seed: int) -> dict[str, SequenceModel]:
    base = load_config(CONFIG).model
    out = {}
    for positions in ("end", "start"):
        torch.manual_seed(seed)  # the same weights for both
        config = base.replace(positions=positions)
        out[positions] = build_model(config, n_items=n_items, n_behaviors=1).eval()
    return out


@torch.no_grad()
def one_at_a_time_effects(model: SequenceModel, history: History, item: int) -> np.ndarray:
    """f(history) - f(history without e) for every event, one full forward pass each."""
    config = model.config

    def log_p(h: History) -> float:
        tensors = batch_histories(
            [h], max_len=config.max_len, time_buckets=config.time_buckets
        ).inputs
        scores = model.item_scores(model(*tensors)[:, -1])
        return float(torch.log_softmax(scores, -1)[0, item])

    def without(p: int) -> History:
        keep = np.arange(len(history)) != p
        return History(*(a[keep] for a in dataclasses.astuple(history)))

    full = log_p(history)
    return np.array([full - log_p(without(p)) for p in range(len(history))])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--histories", type=int, default=50, help="histories timed")
    parser.add_argument("--items", type=int, default=3_600, help="items scored")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument(
        "--chunk-rows",
        default="20",
        help="Scorer(prefix_chunk_rows=...) for the prefix rows; a comma list times each",
    )
    parser.add_argument("--checked", type=int, default=3, help="histories checked by re-scoring")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    built = models(args.items, args.seed)
    config = built["end"].config
    print(f"machine: {machine_line()}")
    print(f"command: python bench/loo_speed.py {' '.join(sys.argv[1:])}")
    print(
        f"model: {CONFIG.name} [model]: d {config.d_model}, {config.layers} layers, "
        f"{config.heads} heads, max_len {config.max_len}, {args.items:,} items; "
        "random initial weights (timing does not depend on the weights)"
    )
    histories = random_histories(args.histories, config.max_len, items=args.items, seed=args.seed)
    print(f"histories: {len(histories)} random histories of {config.max_len} events each")
    chunk_rows = [int(r) for r in args.chunk_rows.split(",")]
    whole = Scorer(built["end"], batch_size=512, prefix_chunk_rows=config.max_len)
    rows: dict[str, Callable[[History, int], object]] = {
        "all deletions re-scored whole, one batch (before)": lambda h, i: leave_one_out(
            whole, h, LogProbability(i)
        ),
    }
    for r in chunk_rows:
        reused = Scorer(built["end"], batch_size=512, prefix_chunk_rows=r)
        rows[f"prefix reused, {r} deletions per batch"] = lambda h, i, s=reused: LogProbability(i)(
            s.deletion_scores_reusing_prefix(h)
        )
    shared = Scorer(built["end"])
    rows["first layer shared by all deletions"] = lambda h, i: LogProbability(i)(
        shared.deletion_scores_sharing_first_layer(h)
    )
    timings = time_rows(rows, histories, built["end"])
    check_rows(built, histories[: args.checked], chunk_rows[0])
    baseline = float(np.median(next(iter(timings.values()))))
    print(f"\nexact leave-one-out, {config.max_len} deletions x all items (ms):")
    print(f"  {'method':50} {'p50':>7} {'p95':>7} {'min':>7} {'max':>7} {'speed-up':>9}")
    for name, seconds in timings.items():
        ms = np.array(seconds) * 1000
        p50, p95 = np.percentile(ms, 50), np.percentile(ms, 95)
        print(
            f"  {name:50} {p50:7.1f} {p95:7.1f} {ms.min():7.1f} {ms.max():7.1f} "
            f"{baseline * 1000 / p50:8.2f}x"
        )


def time_rows(
    rows: dict[str, Callable[[History, int], object]],
    histories: list[History],
    model: SequenceModel,
) -> dict[str, list[float]]:
    """Seconds per history for each row, the rows run in turn on each history."""
    with torch.no_grad():
        top = [int(torch.argmax(one_at_a_time_scores(model, h))) for h in histories]
    for fn in rows.values():  # warm-up
        for h, i in zip(histories[:3], top[:3], strict=True):
            fn(h, i)
    timings: dict[str, list[float]] = {name: [] for name in rows}
    for h, i in zip(histories, top, strict=True):
        for name, fn in rows.items():
            started = time.perf_counter()
            fn(h, i)
            timings[name].append(time.perf_counter() - started)
    return timings


def one_at_a_time_scores(model: SequenceModel, history: History) -> torch.Tensor:
    config = model.config
    tensors = batch_histories(
        [history], max_len=config.max_len, time_buckets=config.time_buckets
    ).inputs
    return model.item_scores(model(*tensors)[:, -1])[0]


def check_rows(built: dict[str, SequenceModel], histories: list[History], chunk_rows: int) -> None:
    """Print the largest relative difference of each method from one-at-a-time re-scoring."""
    worst: dict[str, float] = {}
    for h in histories:
        for positions, model in built.items():
            with torch.no_grad():
                item = int(torch.argmax(one_at_a_time_scores(model, h)))
            expected = one_at_a_time_effects(model, h, item)
            scale = np.abs(expected).max()
            for path in ("whole", "prefix", "shared"):
                scorer = Scorer(model, prefix_chunk_rows=chunk_rows)
                if path == "whole":
                    scores = Scorer(model, prefix_chunk_rows=model.config.max_len)
                    effects = leave_one_out(scores, h, LogProbability(item)).effects
                else:
                    fast = (
                        scorer.deletion_scores_reusing_prefix(h)
                        if path == "prefix"
                        else scorer.deletion_scores_sharing_first_layer(h)
                    )
                    values = LogProbability(item)(fast).double().numpy()
                    effects = values[0] - values[1:]
                name = f"{positions}/{path}"
                error = float(np.abs(effects - expected).max() / scale)
                worst[name] = max(worst.get(name, 0.0), error)
    print(
        f"check against one-at-a-time re-scoring ({len(histories)} histories, log p(top item)), "
        "max |difference| / max |effect|: "
        + ", ".join(f"{name} {value:.1e}" for name, value in worst.items())
    )


if __name__ == "__main__":
    main()
