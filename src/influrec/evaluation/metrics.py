"""Ranking and behaviour metrics as pure functions.

Items are indexed ``0..I`` where index 0 is padding: it is never ranked and never a target.
Ranks are 0-based (rank 0 = the target is the top item) and pessimistic on ties: every other
eligible item whose score equals the target's is counted as ranked above it, so a model that
gives all items the same score gets the worst rank rather than a lucky one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def ranks_from_scores(
    scores: torch.Tensor, targets: torch.Tensor, *, exclude: torch.Tensor | None = None
) -> torch.Tensor:
    """0-based pessimistic rank of each target among all eligible items.

    Args:
        scores: (B, I+1) float, one score per item; column 0 is padding and is ignored.
        targets: (B,) int64 item indices in ``1..I``.
        exclude: optional (B, I+1) bool, True for items removed from the ranking (for example
            items the user has already seen). Excluded items never count above the target.

    Returns:
        (B,) int64: ``#{j eligible, j != target, scores[j] >= scores[target]}``. A target that is
        itself excluded, or whose score is NaN, is not rankable and gets rank ``I``, which is a
        miss at every cut-off ``K <= I``. Items with NaN scores never count above a target.

    Raises:
        ValueError: on mismatched shapes, a non-bool mask, or a target outside ``1..I``.

    Memory: one (B, I+1) bool temporary; no sort.
    """
    _check_rank_inputs(scores, targets, exclude)
    n_items = scores.shape[1] - 1
    column = targets.unsqueeze(1)  # (B, 1)
    target_score = scores.gather(1, column)  # (B, 1)
    above = scores >= target_score  # (B, I+1) bool; ties count as above (pessimistic)
    above[:, 0] = False  # padding never counts
    above.scatter_(1, column, False)  # the target does not outrank itself
    if exclude is not None:
        above.masked_fill_(exclude, False)
    ranks = above.sum(dim=1)  # (B,) int64
    unrankable = torch.isnan(target_score.squeeze(1))
    if exclude is not None:
        unrankable |= exclude.gather(1, column).squeeze(1)
    return ranks.masked_fill(unrankable, n_items)


def _check_rank_inputs(
    scores: torch.Tensor, targets: torch.Tensor, exclude: torch.Tensor | None
) -> None:
    if scores.dim() != 2 or scores.shape[1] < 2:
        raise ValueError(f"scores must be (B, I+1) with I >= 1, got shape {tuple(scores.shape)}")
    if targets.dim() != 1 or targets.shape[0] != scores.shape[0]:
        raise ValueError(
            f"targets must be ({scores.shape[0]},) to match scores, got {tuple(targets.shape)}"
        )
    if targets.dtype != torch.int64:
        raise ValueError(f"targets must be int64, got {targets.dtype}")
    n_items = scores.shape[1] - 1
    if targets.numel() and (int(targets.min()) < 1 or int(targets.max()) > n_items):
        raise ValueError(f"targets must be item indices in 1..{n_items} (0 is padding)")
    if exclude is not None and (exclude.shape != scores.shape or exclude.dtype != torch.bool):
        raise ValueError(
            f"exclude must be a bool tensor of shape {tuple(scores.shape)}, "
            f"got {exclude.dtype} {tuple(exclude.shape)}"
        )


def ranking_metrics(
    ranks: np.ndarray | torch.Tensor, ks: Sequence[int] = (1, 5, 10, 20, 50)
) -> dict[str, float]:
    """Mean top-K metrics over targets, one target per row.

    Args:
        ranks: (N,) 0-based ranks as returned by :func:`ranks_from_scores`.
        ks: cut-offs, each a positive integer.

    Returns:
        For each K, keys ``HR@K`` (rank < K), ``NDCG@K`` (1 / log2(rank + 2) if rank < K else 0),
        ``MRR@K`` (1 / (rank + 1) if rank < K else 0) and ``Recall@K`` (equal to HR@K with a
        single target per row), each the mean over the N targets.

    Raises:
        ValueError: if ``ranks`` is empty, not 1-D, negative, or a cut-off is not positive.
    """
    r = ranks.detach().cpu().numpy() if isinstance(ranks, torch.Tensor) else np.asarray(ranks)
    if r.ndim != 1 or r.size == 0:
        raise ValueError(f"ranks must be a non-empty 1-D array, got shape {r.shape}")
    if np.any(r < 0):
        raise ValueError("ranks must be >= 0 (0-based)")
    if any(int(k) < 1 for k in ks):
        raise ValueError(f"cut-offs must be positive integers, got {list(ks)}")
    r = r.astype(np.float64)
    out: dict[str, float] = {}
    for k in ks:
        hit = r < k
        out[f"HR@{k}"] = float(hit.mean())
        out[f"NDCG@{k}"] = float(np.where(hit, 1.0 / np.log2(r + 2.0), 0.0).mean())
        out[f"MRR@{k}"] = float(np.where(hit, 1.0 / (r + 1.0), 0.0).mean())
        out[f"Recall@{k}"] = float(hit.mean())
    return out


def behavior_metrics(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy, macro F1 and macro one-vs-rest ROC AUC of a C-class behaviour classifier.

    Args:
        probs: (N, C) class probabilities (any scores work; only their order matters for AUC).
        labels: (N,) ints in ``0..C-1``.

    Returns:
        ``accuracy``: mean of ``argmax(probs) == labels`` (argmax ties go to the lower class).
        ``macro_f1``: mean F1 over the classes present in the labels or the predictions.
        ``auc``: mean one-vs-rest ROC AUC over the classes that have both positive and negative
        labels (Mann-Whitney U with average ranks for tied scores); NaN if no class qualifies.

    Raises:
        ValueError: on empty input, mismatched shapes, or labels outside ``0..C-1``.
    """
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels)
    if p.ndim != 2 or p.shape[0] == 0 or y.shape != (p.shape[0],):
        raise ValueError(f"need probs (N, C) and labels (N,), N > 0; got {p.shape} and {y.shape}")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= p.shape[1]:
        raise ValueError(f"labels must be integers in 0..{p.shape[1] - 1}")
    predicted = p.argmax(axis=1)
    return {
        "accuracy": float((predicted == y).mean()),
        "macro_f1": _macro_f1(predicted, y),
        "auc": _macro_auc(p, y),
    }


def _macro_f1(predicted: np.ndarray, labels: np.ndarray) -> float:
    """Mean over classes in ``labels`` or ``predicted`` of 2TP / (2TP + FP + FN); (N,) inputs."""
    scores = []
    for c in np.union1d(predicted, labels):
        tp = np.sum((predicted == c) & (labels == c))
        fp = np.sum((predicted == c) & (labels != c))
        fn = np.sum((predicted != c) & (labels == c))
        scores.append(2.0 * tp / (2.0 * tp + fp + fn))
    return float(np.mean(scores))


def _macro_auc(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean one-vs-rest AUC over classes with both positives and negatives; NaN if none."""
    aucs = []
    for c in range(probs.shape[1]):
        positive = labels == c
        n_pos = int(positive.sum())
        n_neg = len(labels) - n_pos
        if n_pos == 0 or n_neg == 0:
            continue
        ranks = _average_ranks(probs[:, c])
        u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
        aucs.append(u / (n_pos * n_neg))
    return float(np.mean(aucs)) if aucs else float("nan")


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of (N,) values in ascending order; tied values share their mean rank."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    first = np.cumsum(counts) - counts + 1  # 1-based rank of the first value of each tie group
    return (first + (counts - 1) / 2.0)[inverse]
