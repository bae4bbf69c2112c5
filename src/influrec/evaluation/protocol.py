"""Full-ranking evaluation: every target is ranked against ALL items, in bounded batches.

Both conventions are always computed and labelled:

* ``unmasked``: every item competes, including items the user has already interacted with;
* ``masked``: items from the user's history before the target are removed from the ranking.
  When the target itself was seen before it cannot be ranked and counts as a miss
  (``targets_seen`` says how often that happened).

Scores for a batch of targets are a (B, I + 1) tensor; memory never exceeds one batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from influrec.data.batching import batch_windows
from influrec.data.sequences import SequenceData, history_windows, seen_items_mask
from influrec.evaluation.metrics import behavior_metrics, ranking_metrics, ranks_from_scores
from influrec.models.protocol import SequenceModel, last_hidden
from influrec.progress import steps


@dataclass(frozen=True)
class Metrics:
    """Full-ranking metrics of one scorer ("HR@10" -> value in [0, 1]) in both conventions."""

    unmasked: dict[str, float]  # every item competes, items seen before the target included
    masked: dict[str, float]  # items seen before the target are left out of the ranking

    def headline(self, *, mask_seen: bool) -> dict[str, Any]:
        """Flat metrics of one convention, labelled: {"HR@10": ..., "seen_items_masked": bool}."""
        return {**(self.masked if mask_seen else self.unmasked), "seen_items_masked": mask_seen}

    def to_dict(self) -> dict[str, Any]:
        """Unmasked metrics at the top level, the masked ones under "masked"; both labelled."""
        out = self.headline(mask_seen=False)
        out["masked"] = self.headline(mask_seen=True)
        return out


@dataclass(frozen=True)
class TargetEvaluation:
    """What :func:`evaluate_targets` measured over a set of target events."""

    targets: int  # events ranked
    targets_seen: float  # share of targets whose item the user had interacted with before
    metrics: Metrics
    behavior: dict[str, float] | None = None  # behaviour-head metrics, for scorers with one


ScoreFn = Callable[[np.ndarray], tuple[torch.Tensor, torch.Tensor | None]]
"""targets (B,) event indices -> (scores (B, I + 1), behaviour probabilities (B, C + 1) or None)."""


def model_score_fn(model: SequenceModel, data: SequenceData, *, device: torch.device) -> ScoreFn:
    """Score function of a trained model: its prediction after the target's history."""
    config = model.config

    @torch.no_grad()
    def score(targets: np.ndarray) -> tuple[torch.Tensor, torch.Tensor | None]:
        starts, ends = history_windows(data, targets, max_len=config.max_len)
        empty = ends == starts
        batch = batch_windows(
            data, starts, np.maximum(ends, starts + 1), time_buckets=config.time_buckets
        )
        for tensor in (batch.items, batch.behaviors, batch.gaps, batch.values):
            tensor[torch.from_numpy(empty)] = 0  # a target without history sees only padding
        batch = batch.to(device)
        hidden = last_hidden(model, batch.items, batch.behaviors, batch.gaps, batch.values)
        scores = model.item_scores(hidden).float().cpu()
        probs = None
        if model.behavior_head is not None:
            probs = torch.softmax(model.behavior_logits(hidden).float(), dim=-1).cpu()
        return scores, probs

    return score


def history_score_fn(scorer: Any, data: SequenceData) -> ScoreFn:
    """Score function of a baseline with ``score(histories) -> (B, I + 1)`` (see baselines)."""

    def score(targets: np.ndarray) -> tuple[torch.Tensor, torch.Tensor | None]:
        starts = data.user_start[data.user[targets]]
        histories = [data.item[s:t] for s, t in zip(starts, targets, strict=True)]
        return torch.from_numpy(np.asarray(scorer.score(histories), dtype=np.float32)), None

    return score


@dataclass(frozen=True)
class TargetRanks:
    """Each target's rank among all items, before metrics are taken: what the processes of a
    distributed evaluation each compute for their share of the targets, gathered and joined."""

    unmasked: np.ndarray  # (N,) int64 rank of the target's item, every item competing
    masked: np.ndarray  # (N,) int64 rank with the items seen before the target left out
    seen: np.ndarray  # (N,) bool: the target's item was seen before it
    probs: np.ndarray | None  # (N, C) behaviour probabilities (padding class dropped), or None

    @classmethod
    def join(cls, parts: Sequence[TargetRanks], order: np.ndarray) -> TargetRanks:
        """``parts`` concatenated, then row ``i`` put at position ``order[i]``."""
        probs = [p.probs for p in parts if p.probs is not None]
        joined = [
            np.concatenate([getattr(p, name) for p in parts])
            for name in ("unmasked", "masked", "seen")
        ]
        placed = [np.empty_like(a) for a in joined]
        for source, target in zip(joined, placed, strict=True):
            target[order] = source
        probs_placed = None
        if probs:
            stacked = np.concatenate(probs)
            probs_placed = np.empty_like(stacked)
            probs_placed[order] = stacked
        return cls(placed[0], placed[1], placed[2], probs_placed)


def rank_targets(
    score_fn: ScoreFn,
    data: SequenceData,
    targets: np.ndarray,
    *,
    batch_size: int = 512,
    progress: bool | None = None,
    description: str = "evaluating",
) -> TargetRanks:
    """Rank each target event's item among all items, ``batch_size`` targets at a time."""
    unmasked, masked, seen, probs_all = [], [], [], []
    with steps(len(targets), description, enabled=progress) as bar:
        for begin in range(0, len(targets), batch_size):
            chunk = targets[begin : begin + batch_size]
            scores, probs = score_fn(chunk)
            target_items = torch.from_numpy(data.item[chunk])
            history = seen_items_mask(data, chunk)
            unmasked.append(ranks_from_scores(scores, target_items).numpy())
            masked.append(ranks_from_scores(scores, target_items, exclude=history).numpy())
            seen.append(history[torch.arange(len(chunk)), target_items].numpy())
            if probs is not None:
                probs_all.append(probs.numpy()[:, 1:])  # drop the padding class
            bar.advance(len(chunk))
    if len(targets) == 0:  # a process given no targets
        return TargetRanks(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool), None)
    return TargetRanks(
        np.concatenate(unmasked),
        np.concatenate(masked),
        np.concatenate(seen),
        np.concatenate(probs_all) if probs_all else None,
    )


def summarize_ranks(
    ranks: TargetRanks, data: SequenceData, targets: np.ndarray, *, ks: Sequence[int]
) -> TargetEvaluation:
    """The metrics of ``targets`` from their ranks (rows in the order of ``targets``)."""
    behavior = None
    if ranks.probs is not None:
        behavior = behavior_metrics(ranks.probs, data.behavior[targets] - 1)
    return TargetEvaluation(
        targets=len(targets),
        targets_seen=float(torch.from_numpy(ranks.seen).float().mean()),
        metrics=Metrics(
            unmasked=ranking_metrics(ranks.unmasked, ks),
            masked=ranking_metrics(ranks.masked, ks),
        ),
        behavior=behavior,
    )


def evaluate_targets(
    score_fn: ScoreFn,
    data: SequenceData,
    targets: np.ndarray,
    *,
    ks: Sequence[int] = (1, 5, 10, 20, 50),
    batch_size: int = 512,
    progress: bool | None = None,
    description: str = "evaluating",
) -> TargetEvaluation:
    """Rank each target event's item among all items; metrics for both conventions.

    ``progress``: a bar over the targets (:func:`influrec.progress.steps`; ``None``: on a
    terminal only), labelled ``description``."""
    if len(targets) == 0:
        raise ValueError("no targets to evaluate (is the split empty?)")
    ranks = rank_targets(
        score_fn,
        data,
        targets,
        batch_size=batch_size,
        progress=progress,
        description=description,
    )
    return summarize_ranks(ranks, data, targets, ks=ks)
