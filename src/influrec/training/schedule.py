"""The order and pace of training: which windows share a batch in each epoch, and the
learning-rate factor of each step."""

from __future__ import annotations

import math

import numpy as np

LENGTH_SORT_CHUNK = 50  # batches whose windows are sorted by length together


def lr_factor(step: int, *, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warmup to 1, then cosine decay to ``min_ratio`` at ``total`` steps."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def epoch_batches(
    starts: np.ndarray, ends: np.ndarray, *, batch_size: int, seed: int, epoch: int
) -> list[np.ndarray]:
    """Shuffled batches of window indices; windows of similar length share a batch."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(starts))
    lengths = (ends - starts)[order]
    batches: list[np.ndarray] = []
    chunk = batch_size * LENGTH_SORT_CHUNK
    for begin in range(0, len(order), chunk):
        part = order[begin : begin + chunk][
            np.argsort(-lengths[begin : begin + chunk], kind="stable")
        ]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]
