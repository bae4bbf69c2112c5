"""Small builders shared by tests."""

from __future__ import annotations

import numpy as np

from influrec.data.sequences import SequenceData


def make_data(lengths: list[int], seed: int = 0) -> SequenceData:
    rng = np.random.default_rng(seed)
    user = np.repeat(np.arange(1, len(lengths) + 1), lengths).astype(np.int64)
    counts = np.bincount(user, minlength=len(lengths) + 1)
    end = np.cumsum(counts)
    n = len(user)
    return SequenceData(
        item=rng.integers(1, 6, n),
        behavior=rng.integers(1, 3, n),
        timestamp=np.arange(n, dtype=np.int64) * 10,
        value=np.arange(n, dtype=np.float32),
        has_value=np.ones(n, bool),
        user=user,
        user_start=end - counts,
        user_end=end,
        n_items=5,
        n_behaviors=2,
    )
