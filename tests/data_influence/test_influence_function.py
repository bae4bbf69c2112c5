"""The influence-function estimator: Gauss-Newton products and the conjugate-gradient solve."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from influrec.data_influence.gradients import Direction, LastLayer
from influrec.data_influence.influence_function import (
    conjugate_gradient,
    hessian_vector_product,
    inverse_hvp,
)


def _problem(n: int = 300, items: int = 12, d: int = 5) -> tuple[Direction, LastLayer]:
    g = torch.Generator().manual_seed(0)
    params = Direction(
        torch.randn(items + 1, d, generator=g) * 0.5,
        1 + 0.1 * torch.randn(d, generator=g),
        0.1 * torch.randn(d, generator=g),
    )
    normed = torch.randn(n, d, generator=g)
    targets = torch.randint(1, items + 1, (n,), generator=g)
    return params, LastLayer(normed * params.gain + params.bias, normed, targets)


def _dense(apply: object, size: int) -> torch.Tensor:
    assert callable(apply)
    return torch.stack([apply(e) for e in torch.eye(size)], dim=1)


def test_gauss_newton_equals_the_hessian_for_the_item_embeddings() -> None:
    """Scores are linear in E, so on the E block the Gauss-Newton matrix is the exact Hessian."""
    params, sample = _problem()
    hvp = hessian_vector_product(params, sample)
    size = params.flat().numel()
    gn = _dense(hvp, size)
    torch.testing.assert_close(gn, gn.T, rtol=1e-4, atol=1e-6)  # symmetric
    assert torch.linalg.eigvalsh(gn.double()).min() > -1e-6  # positive semi-definite

    def loss(items: torch.Tensor) -> torch.Tensor:
        h = sample.normed * params.gain + params.bias
        scores = (h @ items.T).masked_fill(torch.arange(items.shape[0]) == 0, float("-inf"))
        return F.cross_entropy(scores, sample.targets)

    exact = torch.autograd.functional.hessian(loss, params.items).reshape(
        params.items.numel(), params.items.numel()
    )
    block = params.items.numel()
    torch.testing.assert_close(gn[:block, :block], exact, rtol=1e-4, atol=1e-6)


def test_inverse_hvp_solves_the_damped_system() -> None:
    params, sample = _problem()
    size = params.flat().numel()
    damping = 0.05
    matrix = _dense(hessian_vector_product(params, sample), size).double() + damping * torch.eye(
        size, dtype=torch.float64
    )
    g = torch.Generator().manual_seed(1)
    b = torch.randn(size, generator=g)
    items = params.items.numel()
    d = params.gain.numel()
    vector = Direction(b[:items].view_as(params.items), b[items : items + d], b[items + d :])
    solution, info = inverse_hvp(params, sample, vector, damping=damping, iterations=500)
    expected = torch.linalg.solve(matrix, b.double()).float()
    assert not info.negative_curvature
    assert info.relative_residual < 1e-3
    torch.testing.assert_close(solution.flat(), expected, rtol=1e-2, atol=1e-3)


def test_conjugate_gradient_reports_negative_curvature() -> None:
    matrix = torch.diag(torch.tensor([1.0, -1.0]))
    _, info = conjugate_gradient(lambda v: matrix @ v, torch.tensor([1.0, 1.0]))
    assert info.negative_curvature
