"""Last-layer loss gradients of many examples, kept in factored form.

Training-data influence needs the gradient of each example's loss with respect to the
parameters. Here those parameters are the model's last layer: the item embeddings in their
output role (every item's score is ``E h``) and the final LayerNorm's gain ``γ`` and bias ``β``
(``h = γ ⊙ x̂ + β``, ``x̂`` the normalised input). For one example with target item ``y``::

    g = softmax(E h) - onehot(y)        # (I + 1,) gradient of the loss w.r.t. the scores
    ∇E ℓ = g hᵀ,   r = Eᵀ g  (= ∇h ℓ),   ∇β ℓ = r,   ∇γ ℓ = r ⊙ x̂

So an example's gradient is determined by ``(p, y, h, x̂, r)`` and inner products between two
examples never build the (I + 1) x d matrix::

    ⟨∇ℓ, ∇ℓ'⟩ = (g·g')(h·h') + r·r' + (r⊙x̂)·(r'⊙x̂'),   g·g' = p·p' - p[y'] - p'[y] + [y = y']

A :class:`Direction` is an arbitrary vector in the same parameter space (a sum of gradients, an
inverse-Hessian-vector product); its inner product with an example's gradient is
``p·(G h) - (G h)[y] + r·Gβ + (r⊙x̂)·Gγ``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from influrec.data.batching import batch_windows
from influrec.data.sequences import SequenceData
from influrec.models.protocol import SequenceModel, last_hidden

ROW_CHUNK = 2048  # examples whose (I + 1)-wide score rows are held at once


@dataclass
class LastLayer:
    """Activations of a batch of examples at the last layer (one row per example)."""

    hidden: torch.Tensor  # (n, d) h, the final hidden state
    normed: torch.Tensor  # (n, d) x̂, the final LayerNorm's normalised input
    targets: torch.Tensor  # (n,) int64 target item (the label of the loss)

    def __len__(self) -> int:
        return len(self.targets)

    def rows(self, begin: int, end: int) -> LastLayer:
        return LastLayer(self.hidden[begin:end], self.normed[begin:end], self.targets[begin:end])

    @staticmethod
    def concat(parts: list[LastLayer]) -> LastLayer:
        return LastLayer(
            torch.cat([p.hidden for p in parts]),
            torch.cat([p.normed for p in parts]),
            torch.cat([p.targets for p in parts]),
        )


@dataclass
class Gradients:
    """Factored last-layer gradients of a few examples (see the module docstring)."""

    probs: torch.Tensor  # (k, I + 1) p
    targets: torch.Tensor  # (k,) y
    hidden: torch.Tensor  # (k, d) h
    normed: torch.Tensor  # (k, d) x̂
    grad_hidden: torch.Tensor  # (k, d) r

    def direction(self, weights: torch.Tensor | None = None) -> Direction:
        """The dense sum of these gradients (weighted by ``weights``, default 1 each)."""
        w = torch.ones(len(self.targets)) if weights is None else weights
        g = self.probs.clone()
        g[torch.arange(len(g)), self.targets] -= 1.0
        return Direction(
            items=(g * w[:, None]).T @ self.hidden,
            gain=((self.grad_hidden * self.normed) * w[:, None]).sum(0),
            bias=(self.grad_hidden * w[:, None]).sum(0),
        )


@dataclass
class Direction:
    """A vector in last-layer parameter space: item-embedding part (I + 1, d), gain, bias."""

    items: torch.Tensor
    gain: torch.Tensor
    bias: torch.Tensor

    def flat(self) -> torch.Tensor:
        return torch.cat([self.items.ravel(), self.gain, self.bias])

    def dot(self, other: Direction) -> float:
        return float(self.flat() @ other.flat())

    def scaled(self, factor: float) -> Direction:
        return Direction(self.items * factor, self.gain * factor, self.bias * factor)


def last_layer_params(model: SequenceModel) -> Direction:
    """The model's own last-layer parameters (E, γ, β), detached. E is the item table the scores
    use (:meth:`SequenceModel.item_table`): with item features, each row is the item's own
    vector plus its features' mean, and is treated as one parameter of the output layer."""
    return Direction(
        model.item_table().detach(),
        model.ln_final.weight.detach(),
        model.ln_final.bias.detach(),
    )


def _probabilities(hidden: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    scores = hidden @ items.T
    scores[:, 0] = float("-inf")  # padding is never a prediction
    return torch.softmax(scores, dim=-1)


def gradients(model: SequenceModel, acts: LastLayer) -> Gradients:
    """Factored gradients of a few examples (all of their (I + 1)-wide rows are kept)."""
    items = model.item_table().detach()
    probs = _probabilities(acts.hidden, items)
    grad_hidden = probs @ items - items[acts.targets]
    return Gradients(probs, acts.targets, acts.hidden, acts.normed, grad_hidden)


@dataclass
class Products:
    """Per-example results of one pass over many examples."""

    loss: np.ndarray  # (N,) cross-entropy of each example
    self_dot: np.ndarray  # (N,) ‖∇ℓ‖²
    query_dots: np.ndarray  # (N, k) ⟨∇ℓ, ∇ℓ_q⟩ for each query example q
    direction_dots: np.ndarray  # (N, m) ⟨∇ℓ, G⟩ for each direction G
    other_loss: np.ndarray  # (N,) cross-entropy of ``other`` from the same row; NaN where 0


def products(
    model: SequenceModel,
    acts: LastLayer,
    *,
    queries: Gradients | None = None,
    directions: list[Direction] | None = None,
    other: torch.Tensor | None = None,
) -> Products:
    """Loss, squared gradient norm and inner products with ``queries`` and ``directions`` for
    every example of ``acts``, in chunks of :data:`ROW_CHUNK` rows. ``other`` (N,): a second
    item per example whose loss under the same prediction is wanted (0: none)."""
    items = model.item_table().detach()
    directions = directions or []
    n, k = len(acts), 0 if queries is None else len(queries.targets)
    out = Products(
        np.zeros(n, np.float64),
        np.zeros(n, np.float64),
        np.zeros((n, k), np.float64),
        np.zeros((n, len(directions)), np.float64),
        np.full(n, np.nan),
    )
    for begin in range(0, n, ROW_CHUNK):
        part = acts.rows(begin, begin + ROW_CHUNK)
        rows = torch.arange(len(part))
        h, xhat, y = part.hidden, part.normed, part.targets
        probs = _probabilities(h, items)
        p_y = probs[rows, y]
        r = probs @ items - items[y]
        rx = r * xhat
        end = begin + len(part)
        out.loss[begin:end] = (-torch.log(p_y.clamp_min(1e-30))).numpy()
        if other is not None:
            wanted = other[begin:end]
            p_other = -torch.log(probs[rows, wanted].clamp_min(1e-30)).double()
            out.other_loss[begin:end] = torch.where(wanted > 0, p_other, np.nan).numpy()
        g_sq = (probs * probs).sum(1) - 2 * p_y + 1
        out.self_dot[begin:end] = (
            g_sq * (h * h).sum(1) + (r * r).sum(1) + (rx * rx).sum(1)
        ).numpy()
        if queries is not None:
            q = queries
            g_dot = (
                probs @ q.probs.T
                - probs[:, q.targets]
                - q.probs[:, y].T
                + (y[:, None] == q.targets[None]).float()
            )
            dots = (
                g_dot * (h @ q.hidden.T) + r @ q.grad_hidden.T + rx @ (q.grad_hidden * q.normed).T
            )
            out.query_dots[begin:end] = dots.numpy()
        for j, direction in enumerate(directions):
            projected = h @ direction.items.T  # (n, I + 1): (G h) per example
            along = (probs * projected).sum(1) - projected[rows, y]
            out.direction_dots[begin:end, j] = (
                along + r @ direction.bias + rx @ direction.gain
            ).numpy()
    return out


class _FinalNormInput:
    """Captures the input of the model's final LayerNorm during a forward pass."""

    def __init__(self, model: SequenceModel) -> None:
        self.value: torch.Tensor | None = None
        self.handle = model.ln_final.register_forward_hook(self._hook)

    def _hook(self, module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], _: object) -> None:
        self.value = inputs[0]

    def close(self) -> None:
        self.handle.remove()


def _normalised(model: SequenceModel, x: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(x, x.shape[-1:], eps=model.ln_final.eps)


@torch.no_grad()
def window_activations(
    model: SequenceModel,
    data: SequenceData,
    starts: np.ndarray,
    ends: np.ndarray,
    *,
    batch_size: int = 128,
) -> Iterator[tuple[np.ndarray, LastLayer]]:
    """For training windows ``[starts, ends)``: (target event indices, activations) of every
    target the windows predict (slot t predicts event t + 1), a batch of windows at a time."""
    model.eval()
    capture = _FinalNormInput(model)
    order = np.argsort(-(ends - starts), kind="stable")  # similar lengths share a batch
    try:
        for begin in range(0, len(order), batch_size):
            index = order[begin : begin + batch_size]
            batch = batch_windows(
                data, starts[index], ends[index], time_buckets=model.config.time_buckets
            )
            hidden = model.encode(batch.items, batch.behaviors, batch.gaps, batch.values)
            assert capture.value is not None
            valid, targets = torch.from_numpy(batch.valid), batch.targets
            yield (
                targets,
                LastLayer(
                    hidden[valid],
                    _normalised(model, capture.value[valid]),
                    torch.from_numpy(data.item[targets]),
                ),
            )
    finally:
        capture.close()


@torch.no_grad()
def history_activations(
    model: SequenceModel,
    data: SequenceData,
    starts: np.ndarray,
    ends: np.ndarray,
    targets: np.ndarray,
) -> LastLayer:
    """Activations after each history ``[starts, ends)`` (non-empty), labelled ``targets``
    (item indices), computed at the last position only."""
    model.eval()
    capture = _FinalNormInput(model)
    try:
        batch = batch_windows(data, starts, ends, time_buckets=model.config.time_buckets)
        hidden = last_hidden(model, batch.items, batch.behaviors, batch.gaps, batch.values)
        assert capture.value is not None
        return LastLayer(
            hidden,
            _normalised(model, capture.value[:, -1]),
            torch.as_tensor(targets, dtype=torch.int64),
        )
    finally:
        capture.close()
