"""What the trainer sets up before its first step: the device, the seeds, the optimizer's
parameter groups, the sampled softmax's proposal, and the check that the split leaves something
to train on."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from influrec.config import ExperimentConfig
from influrec.data.sequences import SequenceData
from influrec.data.splits import Split
from influrec.errors import InputError
from influrec.models import SequenceModel


def select_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("train.device=cuda but no CUDA device is available")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def param_groups(model: SequenceModel, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on the Linear weights only (not embeddings, norms or biases)."""
    decay = [p for n, p in model.named_parameters() if p.dim() == 2 and "embedding" not in n]
    others = [p for n, p in model.named_parameters() if not (p.dim() == 2 and "embedding" not in n)]
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": others, "weight_decay": 0.0},
    ]


def require_targets(
    windows: tuple[np.ndarray, np.ndarray], split: Split, config: ExperimentConfig
) -> None:
    """InputError when the split leaves no training windows or no validation targets."""
    if len(windows[0]) == 0:
        raise InputError(
            "the dataset has no training targets: every user needs at least 2 training events"
        )
    if len(split.valid) == 0:
        raise InputError(
            f"the dataset has no validation targets under data.split={config.data.split}: "
            "leave_one_out needs users with >= 3 events, temporal a larger data.valid_fraction"
        )


def proposal_log_q(data: SequenceData, split: Split, sampler: str) -> torch.Tensor:
    """log q (n_items + 1,) of the sampled softmax's proposal (padding -inf). A uniform q makes
    the logQ correction a constant that cancels: plain sampled softmax over uniform negatives."""
    if sampler == "uniform":
        q = np.ones(data.n_items + 1)
    else:
        counts = np.bincount(data.item[split.train], minlength=data.n_items + 1)
        q = counts.astype(np.float64) + 1.0
    log_q = np.log(q / q[1:].sum())
    log_q[0] = -np.inf  # padding is never sampled
    return torch.from_numpy(log_q).float()
