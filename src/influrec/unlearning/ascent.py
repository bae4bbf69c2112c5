"""Approximate unlearning by bounded gradient ascent on the output side of a model.

To forget users, the model's loss on their training interactions is raised (gradient ascent)
while the loss on a fixed sample of other users' training interactions is held down (a
descent term), moving only the output-side parameters: the final LayerNorm, the item
embedding table (the item scores' side; tied with the inputs) and the last block of layers
when the model has blocks. Three bounds keep the step from wrecking the model:

* at most ``steps`` updates, each moving the parameters by the same length, so that all of them
  together move them by at most ``max_change`` of their norm (relative L2);
* the ascent stops as soon as the forgotten users' loss reaches a target: their loss before
  plus the model's generalisation gap, i.e. about the loss of interactions the model never
  trained on. The gap is measured on the sampled other users as the loss of their validation
  targets (never trained on) minus that of their last training targets (the event just
  before, predicted from as long a history, but trained on);
* an update that raises the other users' loss by more than ``max_retain_rise`` (relative) is
  undone and the ascent stops.

Losses are the full-softmax next-item cross-entropy (nats per target) at every training
target of the users' training windows (:func:`~influrec.data.sequences.training_windows`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from influrec.data.batching import batch_windows
from influrec.data.sequences import SequenceData, history_windows
from influrec.models.protocol import SequenceModel

WINDOW_BATCH = 256  # windows per forward pass


@dataclass(frozen=True, kw_only=True)
class AscentSettings:
    """How far the ascent may go (see the module docstring)."""

    steps: int = 20  # updates at most
    max_change: float = 0.05  # total parameter move / parameter norm, at most
    retain_users: int = 128  # other users whose training loss is held down
    retain_weight: float = 1.0  # weight of their loss in the objective
    max_retain_rise: float = 0.02  # an update raising their loss by more is undone
    seed: int = 0  # the sample of other users

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")
        if not 0 < self.max_change <= 1:
            raise ValueError(f"max_change must be in (0, 1], got {self.max_change}")


@dataclass
class AscentReport:
    """What the ascent did; losses in nats per target."""

    steps: int  # updates kept
    stopped: str  # "target" | "steps" | "retain" (why it ended)
    forget_loss: tuple[float, float]  # forgotten users' training loss, before and after
    retain_loss: tuple[float, float]  # the sampled other users' training loss, before, after
    heldout_loss: float  # the sampled users' validation loss before (never trained on)
    seen_loss: float  # their last training targets' loss before (trained on)
    target_loss: float  # what the forgotten users' loss was raised towards
    change: float  # parameter move / parameter norm, of the updated parameters
    parameters: list[str] = field(default_factory=list)  # names of those updated


def output_side(model: SequenceModel) -> dict[str, torch.nn.Parameter]:
    """The parameters the ascent moves: final LayerNorm, item embeddings, last block."""
    named = dict(model.named_parameters())
    blocks = {int(name.split(".")[1]) for name in named if name.startswith("blocks.")}
    prefixes = ["ln_final.", "item_embedding."]
    if blocks:
        prefixes.append(f"blocks.{max(blocks)}.")
    return {n: p for n, p in named.items() if any(n.startswith(x) for x in prefixes)}


def windows_of(
    windows: tuple[np.ndarray, np.ndarray], data: SequenceData, users: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The training windows (starts, ends) whose events belong to ``users`` (indices)."""
    starts, ends = windows
    keep = np.isin(data.user[starts], users)
    return starts[keep], ends[keep]


def window_loss(
    model: SequenceModel,
    data: SequenceData,
    windows: tuple[np.ndarray, np.ndarray],
    *,
    per_user: bool = False,
) -> torch.Tensor:
    """Mean cross-entropy over every target of ``windows`` (a scalar with the graph when
    gradients are on), or with ``per_user`` the (U + 1,) sum of each user's target losses
    and (second row) their counts, indexed by user."""
    starts, ends = windows
    total = torch.zeros(())
    sums = torch.zeros(2, len(data.user_start))
    count = 0
    for begin in range(0, len(starts), WINDOW_BATCH):
        s, e = starts[begin : begin + WINDOW_BATCH], ends[begin : begin + WINDOW_BATCH]
        batch = batch_windows(data, s, e, time_buckets=model.config.time_buckets)
        hidden = model.encode(batch.items, batch.behaviors, batch.gaps, batch.values)
        hidden = hidden[torch.from_numpy(batch.valid)]  # (N, D)
        targets = torch.from_numpy(data.item[batch.targets])
        queries, items = model.scoring_space(hidden, model.item_table())
        logits = queries @ items.T  # (N, I + 1)
        logits[:, 0] = float("-inf")
        losses = F.cross_entropy(logits.float(), targets, reduction="none")
        if per_user:
            owner = torch.from_numpy(data.user[batch.targets])
            sums[0].index_add_(0, owner, losses.detach())
            sums[1].index_add_(0, owner, torch.ones_like(losses))
        total = total + losses.sum()
        count += len(losses)
    return sums if per_user else total / max(count, 1)


@torch.no_grad()
def prediction_loss(model: SequenceModel, data: SequenceData, targets: np.ndarray) -> float:
    """Mean cross-entropy of ``targets`` (event positions), each predicted from the (at most
    ``max_len``) events before it."""
    if len(targets) == 0:
        return math.nan
    starts, ends = history_windows(data, targets, max_len=model.config.max_len)
    total = 0.0
    for begin in range(0, len(targets), WINDOW_BATCH):
        s, e = starts[begin : begin + WINDOW_BATCH], ends[begin : begin + WINDOW_BATCH]
        batch = batch_windows(data, s, e, time_buckets=model.config.time_buckets)
        hidden = model.encode(batch.items, batch.behaviors, batch.gaps, batch.values)[:, -1]
        scores = model.item_scores(hidden)
        wanted = torch.from_numpy(data.item[targets[begin : begin + WINDOW_BATCH]])
        total += float(F.cross_entropy(scores.float(), wanted, reduction="sum"))
    return total / len(targets)


@contextmanager
def _only_training(model: SequenceModel, params: dict[str, torch.nn.Parameter]) -> Iterator[None]:
    """Gradients on ``params`` alone, dropout off; restores ``requires_grad`` after."""
    every = list(model.parameters())
    before = [p.requires_grad for p in every]
    chosen = {id(p) for p in params.values()}
    for p in every:
        p.requires_grad_(id(p) in chosen)
    model.eval()
    try:
        yield
    finally:
        for p, flag in zip(every, before, strict=True):
            p.requires_grad_(flag)


def _loss(
    model: SequenceModel, data: SequenceData, windows: tuple[np.ndarray, np.ndarray]
) -> float:
    with torch.no_grad():
        return float(window_loss(model, data, windows))


def gradient_ascent(
    model: SequenceModel,
    data: SequenceData,
    *,
    forget: tuple[np.ndarray, np.ndarray],
    retain: tuple[np.ndarray, np.ndarray],
    heldout: tuple[np.ndarray, np.ndarray],
    settings: AscentSettings,
) -> AscentReport:
    """Raise the loss of the ``forget`` windows, hold that of the ``retain`` windows (both
    (starts, ends) of training windows), in place. ``heldout``: (validation targets, the
    training targets just before them) of the retained users, event positions, whose loss
    difference is the generalisation gap. Returns what was done."""
    params = output_side(model)
    forget0, retain0 = _loss(model, data, forget), _loss(model, data, retain)
    held = prediction_loss(model, data, heldout[0])
    gap = held - prediction_loss(model, data, heldout[1]) if len(heldout[0]) else 0.0
    target = forget0 + max(gap, 0.0) if len(forget[0]) else forget0  # none: nothing to raise
    start = {n: p.detach().clone() for n, p in params.items()}
    norm = math.sqrt(sum(float(p.pow(2).sum()) for p in start.values()))
    step_length = settings.max_change * norm / settings.steps
    forget_now, retain_now, kept, stopped = forget0, retain0, 0, "steps"
    with _only_training(model, params):
        for _ in range(settings.steps):
            if forget_now >= target:
                stopped = "target"
                break
            objective = -window_loss(model, data, forget)
            objective = objective + settings.retain_weight * window_loss(model, data, retain)
            grads = torch.autograd.grad(objective, list(params.values()))
            length = math.sqrt(sum(float(g.pow(2).sum()) for g in grads))
            if length == 0:
                stopped = "target"
                break
            previous = {n: p.detach().clone() for n, p in params.items()}
            with torch.no_grad():
                for p, g in zip(params.values(), grads, strict=True):
                    p.sub_(g, alpha=step_length / length)
            new_retain = _loss(model, data, retain)
            if new_retain > retain0 * (1 + settings.max_retain_rise):
                with torch.no_grad():
                    for n, p in params.items():
                        p.copy_(previous[n])
                stopped = "retain"
                break
            forget_now, retain_now, kept = _loss(model, data, forget), new_retain, kept + 1
        else:
            stopped = "target" if forget_now >= target else "steps"
    moved = math.sqrt(sum(float((p.detach() - start[n]).pow(2).sum()) for n, p in params.items()))
    return AscentReport(
        steps=kept,
        stopped=stopped,
        forget_loss=(forget0, forget_now),
        retain_loss=(retain0, retain_now),
        heldout_loss=held,
        seen_loss=held - gap,
        target_loss=target,
        change=moved / max(norm, 1e-30),
        parameters=sorted(params),
    )
