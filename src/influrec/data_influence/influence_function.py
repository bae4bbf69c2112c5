"""Influence functions (Koh & Liang, ICML'17) on the last layer, a second estimator beside TracIn.

Removing a training interaction ``z`` from ``n`` changes the loss of a query ``q`` by about
``(1/n) ∇ℓ(q)ᵀ (H + λI)⁻¹ ∇ℓ(z)``, with ``H`` the Hessian of the mean training loss at the
trained weights and ``λ`` a damping term. Here the parameters are the same last layer as
TracIn's (output item embeddings, final LayerNorm gain and bias) with the layers below held
fixed, and ``H`` is its Gauss-Newton matrix, estimated on a random sample of training
interactions: the positive semi-definite part of the Hessian (for the item embeddings alone,
whose scores are linear, it is the Hessian itself; the LayerNorm parameters make the exact
Hessian indefinite). ``(H + λI)⁻¹ ∇ℓ(q)`` is solved by conjugate gradients with exact
Gauss-Newton-vector products (``torch.func`` jvp and vjp of the scores).

The score of ``z`` for query ``q`` is ``∇ℓ(q)ᵀ (H + λI)⁻¹ ∇ℓ(z)``: positive when removing ``z``
would raise the query's loss (a proponent), the same sign convention as TracIn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch.func import jvp, vjp

from influrec.data_influence.gradients import Direction, LastLayer

HVP_CHUNK = 2048  # sample rows per Hessian-vector product chunk


@dataclass
class SolveInfo:
    """How well the conjugate-gradient solve of (H + λI) x = b converged."""

    iterations: int
    relative_residual: float  # ‖(H + λI) x - b‖ / ‖b‖
    negative_curvature: bool  # stopped because pᵀ(H + λI)p <= 0 (raise the damping)


def _scores(
    params: tuple[torch.Tensor, torch.Tensor, torch.Tensor], normed: torch.Tensor
) -> torch.Tensor:
    items, gain, bias = params
    return (normed * gain + bias) @ items.T


def hessian_vector_product(
    params: Direction, sample: LastLayer
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``v -> G v``, G the Gauss-Newton Hessian of the mean loss over ``sample`` (v flat, in
    :meth:`Direction.flat` order). ``G = Jᵀ (diag(p) - p pᵀ) J / n`` with J the Jacobian of the
    scores: the positive semi-definite part of the Hessian (the rest comes from the curvature
    of the LayerNorm parameters and is what makes the exact Hessian indefinite)."""
    theta = (params.items, params.gain, params.bias)
    shapes = [t.shape for t in theta]
    sizes = [t.numel() for t in theta]

    def unflatten(v: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(
            part.view(shape) for part, shape in zip(torch.split(v, sizes), shapes, strict=True)
        )

    def hvp(v: torch.Tensor) -> torch.Tensor:
        tangent = unflatten(v)
        total = torch.zeros_like(v)
        n = len(sample)
        for begin in range(0, n, HVP_CHUNK):
            part = sample.rows(begin, begin + HVP_CHUNK)

            def scores(*p: torch.Tensor, part: LastLayer = part) -> torch.Tensor:
                out = _scores((p[0], p[1], p[2]), part.normed)
                return out[:, 1:]  # padding (index 0) is never a prediction

            forward = vjp(scores, *theta)
            out, pullback = forward[0], forward[1]
            jv = jvp(scores, theta, tangent)[1]
            probs = torch.softmax(out, dim=-1)
            curved = probs * jv - probs * (probs * jv).sum(-1, keepdim=True)
            total += torch.cat([g.ravel() for g in pullback(curved)]) / n
        return total

    return hvp


def conjugate_gradient(
    apply: Callable[[torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    *,
    iterations: int = 50,
    tolerance: float = 1e-4,
) -> tuple[torch.Tensor, SolveInfo]:
    """Solve ``apply(x) = b`` for a symmetric positive-definite ``apply``."""
    b = b.double()
    x = torch.zeros_like(b)
    r = b.clone()
    p = r.clone()
    rs = float(r @ r)
    norm_b = max(float(b.norm()), 1e-30)
    negative, done = False, 0
    for step in range(1, iterations + 1):
        done = step
        ap = apply(p.float()).double()
        curvature = float(p @ ap)
        if curvature <= 0:
            negative = True
            break
        alpha = rs / curvature
        x += alpha * p
        r -= alpha * ap
        rs_new = float(r @ r)
        if rs_new**0.5 <= tolerance * norm_b:
            rs = rs_new
            break
        p = r + (rs_new / rs) * p
        rs = rs_new
    residual = float((apply(x.float()).double() - b).norm()) / norm_b
    return x.float(), SolveInfo(done, residual, negative)


def inverse_hvp(
    params: Direction,
    sample: LastLayer,
    vector: Direction,
    *,
    damping: float,
    iterations: int = 50,
    tolerance: float = 1e-4,
) -> tuple[Direction, SolveInfo]:
    """(H + λI)⁻¹ v on the last layer, H the Hessian of the mean loss over ``sample``."""
    hvp = hessian_vector_product(params, sample)
    solution, info = conjugate_gradient(
        lambda v: hvp(v) + damping * v, vector.flat(), iterations=iterations, tolerance=tolerance
    )
    items_size = params.items.numel()
    d = params.gain.numel()
    return (
        Direction(
            solution[:items_size].view_as(params.items),
            solution[items_size : items_size + d],
            solution[items_size + d :],
        ),
        info,
    )


def sample_rows(n: int, size: int, seed: int) -> np.ndarray:
    """A sorted random sample of ``size`` row indices out of ``n`` (all when size >= n)."""
    if size >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size, replace=False))
