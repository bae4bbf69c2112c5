"""bench/online.py: periods are cut by time, and evaluation targets are the next period's events
that have an earlier event of their user, each predicted from all of the user's earlier events."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from influrec.data import schema
from online import Evaluator, between, period_cuts


def log(rows: list[tuple[str, str, int]]) -> pa.Table:
    users, items, times = (list(c) for c in zip(*rows, strict=True))
    return pa.table(
        {
            "user_id": users,
            "item_id": items,
            "behavior": ["rate"] * len(rows),
            "timestamp": pa.array(times, pa.int64()),
            "value": pa.array([4.0] * len(rows), pa.float64()),
            "row": pa.array(range(len(rows)), pa.int64()),
        },
        schema=schema.RAW_SCHEMA,
    )


def test_periods_are_time_quantiles_and_do_not_overlap() -> None:
    raw = log([("u", f"i{n}", 100 + n) for n in range(100)])
    cuts = period_cuts(raw, 0.6, 0.1, steps=1)
    assert cuts == [160, 170, 180]
    first, second = between(raw, None, cuts[0]), between(raw, cuts[0], cuts[1])
    assert first.num_rows == 60 and second.num_rows == 10
    assert max(first.column("timestamp").to_pylist()) < min(second.column("timestamp").to_pylist())


def test_targets_need_an_earlier_event_and_histories_cross_periods() -> None:
    # "b" first appears in the evaluated period: its first event has nothing to predict from
    raw = log([("a", "x", 1), ("a", "y", 5), ("b", "x", 6), ("b", "z", 7), ("a", "z", 8)])
    evaluator = Evaluator(raw, 5, 100, targets=10, seed=0)
    picked = [(evaluator.user[t], evaluator.item[t]) for t in evaluator.targets]
    assert picked == [("a", "y"), ("b", "z"), ("a", "z")]
    earlier = evaluator.earlier["a"]
    assert [evaluator.item[e] for e in earlier] == ["x", "y", "z"]  # period 1's x included
    assert np.all(np.diff(evaluator.time[earlier]) >= 0)
