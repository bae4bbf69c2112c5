"""Evaluate a trained run folder (and baselines under the same protocol) on its split."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from influrec.data.sequences import SequenceData
from influrec.data.splits import make_split
from influrec.evaluation.protocol import (
    Metrics,
    ScoreFn,
    evaluate_targets,
    history_score_fn,
    model_score_fn,
)
from influrec.models.baselines import BASELINES
from influrec.run import load_run


@dataclass(frozen=True)
class RunEvaluation:
    """What :func:`evaluate_run` measured: the run's model and baselines on one split."""

    run: str  # the run folder
    split: str  # "test" or "valid"
    split_kind: str  # how the run's events were split (leave-one-out or global temporal)
    protocol: str
    targets: int  # events ranked
    targets_seen: float  # share of targets whose item the user had already interacted with
    model: Metrics
    behavior: dict[str, float] | None = None  # behaviour-head metrics, when it has one
    baselines: dict[str, Metrics] = field(default_factory=dict)
    monitor: str = "NDCG@10"  # the run's early-stopping metric (train.monitor)

    def to_dict(self) -> dict[str, Any]:
        """The JSON layout: the model's metrics at the top level (see :meth:`Metrics.to_dict`)."""
        out: dict[str, Any] = {
            "run": self.run,
            "split": self.split,
            "split_kind": self.split_kind,
            "protocol": self.protocol,
            "targets": self.targets,
            "targets_seen": self.targets_seen,
            **self.model.to_dict(),
        }
        if self.behavior is not None:
            out["behavior"] = self.behavior
        if self.baselines:
            out["baselines"] = {name: m.to_dict() for name, m in self.baselines.items()}
        return out


def train_sequences(data: SequenceData, train_targets: np.ndarray) -> list[np.ndarray]:
    """Each user's training items in time order (what baselines are fitted on)."""
    is_train = np.zeros(len(data), bool)
    is_train[train_targets] = True
    is_train[data.user_start[1:][data.user_end[1:] > data.user_start[1:]]] |= True  # first events
    return [
        data.item[s:e][is_train[s:e]]
        for s, e in zip(data.user_start[1:], data.user_end[1:], strict=True)
    ]


def evaluate_run(
    run_dir: Path,
    *,
    split: str = "test",
    baselines: Sequence[str] = (),
    device: str = "cpu",
    ks: Sequence[int] | None = None,
    progress: bool | None = None,
) -> RunEvaluation:
    """Full-ranking metrics of the run's best model on ``split`` ("test" or "valid");
    ``ks`` overrides the run's ``eval.ks``. ``progress``: a bar per scorer (the model, then
    each baseline) over the targets; ``None`` draws it on a terminal only."""
    model, info, dataset = load_run(run_dir)
    config = info.config
    data = SequenceData.from_dataset(dataset)
    parts = make_split(data, config.data)
    targets = parts.test if split == "test" else parts.valid
    torch_device = torch.device(device)
    model.to(torch_device)
    scorers: dict[str, ScoreFn] = {"model": model_score_fn(model, data, device=torch_device)}
    fitted_on = train_sequences(data, parts.train)
    for name in baselines:
        scorers[name] = history_score_fn(BASELINES[name]().fit(fitted_on, data.n_items), data)
    results = {
        name: evaluate_targets(
            fn,
            data,
            targets,
            ks=ks or config.eval.ks,
            batch_size=config.eval.batch_size,
            progress=progress,
            description=f"evaluating {name} on {split}",
        )
        for name, fn in scorers.items()
    }
    model_result = results.pop("model")
    return RunEvaluation(
        run=str(run_dir),
        split=split,
        split_kind=parts.kind,
        protocol="full ranking over all items",
        targets=model_result.targets,
        targets_seen=model_result.targets_seen,
        model=model_result.metrics,
        behavior=model_result.behavior,
        baselines={name: r.metrics for name, r in results.items()},
        monitor=config.train.monitor,
    )
