"""model.activation = "swiglu": a gated feed-forward of about the plain one's size, in the
families that have a feed-forward part (transformer, mlp), causal, exact under the fast
leave-one-out kernels, and trainable."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import tests_helpers
from influrec.config import ConfigError, ModelConfig
from influrec.influence.engine import Scorer
from influrec.models.protocol import SequenceModel
from influrec.models.registry import build_model
from influrec.models.tokens import SwiGLU, feed_forward, swiglu_width

N_ITEMS = 30


def model(architecture: str, activation: str = "swiglu", **overrides: object) -> SequenceModel:
    config = ModelConfig(
        architecture=architecture, activation=activation, max_len=10, d_model=16, **overrides
    )  # type: ignore[arg-type]
    torch.manual_seed(0)
    return build_model(config, n_items=N_ITEMS, n_behaviors=3).eval()


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_swiglu_gates_the_up_projection_by_silu_of_the_gate() -> None:
    torch.manual_seed(0)
    layer = SwiGLU(8, 12)
    x = torch.randn(2, 5, 8)
    up = x @ layer.up.weight.T + layer.up.bias
    gate = x @ layer.gate.weight.T + layer.gate.bias
    hidden = up * gate * torch.sigmoid(gate)  # silu(g) = g * sigmoid(g)
    expected = hidden @ layer.down.weight.T + layer.down.bias
    out = layer(x)
    assert out.shape == (2, 5, 8)
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize(("d", "mult"), [(16, 4), (64, 4), (64, 2), (96, 3), (128, 4)])
def test_the_width_rule_gives_the_parameter_count_nearest_the_plain_feed_forward(
    d: int, mult: int
) -> None:
    hidden = swiglu_width(d, mult)
    plain = feed_forward(ModelConfig(d_model=d, ff_mult=mult, heads=1))
    gated = feed_forward(ModelConfig(d_model=d, ff_mult=mult, heads=1, activation="swiglu"))
    assert count(gated) == 3 * d * hidden + 2 * hidden + d  # three matrices and their biases
    assert count(plain) == 2 * d * mult * d + mult * d + d
    # one unit of width is 3d + 2 parameters: no other width comes nearer
    assert abs(count(gated) - count(plain)) <= (3 * d + 2) / 2
    assert abs(count(gated) / count(plain) - 1) < 0.01
    x = torch.randn(3, 4, d)
    assert gated(x).shape == x.shape


def test_swiglu_models_have_about_the_parameters_of_the_gelu_ones() -> None:
    assert swiglu_width(64, 4) == 170
    for architecture in ("transformer", "mlp"):
        gelu, swiglu = model(architecture, "gelu"), model(architecture)
        assert gelu.num_parameters() != swiglu.num_parameters()
        assert abs(swiglu.num_parameters() / gelu.num_parameters() - 1) < 0.01


@pytest.mark.parametrize("architecture", ["transformer", "mlp"])
def test_changing_a_later_event_never_changes_an_earlier_output(architecture: str) -> None:
    m = model(architecture)
    g = torch.Generator().manual_seed(1)
    items = torch.randint(1, N_ITEMS + 1, (3, 10), generator=g)
    behaviors = torch.randint(1, 4, (3, 10), generator=g)
    with torch.no_grad():
        before = m.encode(items, behaviors)
        changed = items.clone()
        changed[:, 6] = changed[:, 6] % N_ITEMS + 1
        after = m.encode(changed, behaviors)
    assert torch.equal(after[:, :6], before[:, :6])
    assert not torch.allclose(after[:, 6:], before[:, 6:])


@pytest.mark.parametrize("activation", ["swiglu", "relu", "gelu"])
def test_every_fast_leave_one_out_path_equals_rescoring_each_deletion(activation: str) -> None:
    m = model("transformer", activation, layers=2)
    with torch.no_grad():  # as after training: no zero bias, no LayerNorm at its identity
        for parameter in m.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    history = tests_helpers.random_history(9, n_items=N_ITEMS, seed=2)
    scorer = Scorer(m, prefix_chunk_rows=2)  # 9 deletions: the fast paths apply
    slow = scorer.deletion_scores_rescoring(history)
    for fast in (
        scorer.deletion_scores_sharing_first_layer(history),
        scorer.deletion_scores_reusing_prefix(history),
    ):
        torch.testing.assert_close(fast[:, 1:], slow[:, 1:], rtol=1e-4, atol=1e-4)


def test_training_steps_lower_the_loss() -> None:
    m = model("transformer", dropout=0.0, attn_dropout=0.0).train()
    g = torch.Generator().manual_seed(3)
    items = torch.randint(1, N_ITEMS + 1, (8, 10), generator=g)
    behaviors = torch.ones_like(items)
    optimizer = torch.optim.Adam(m.parameters(), lr=1e-2)
    losses = []
    for _ in range(20):
        scores = m.item_scores(m.encode(items[:, :-1], behaviors[:, :-1]))  # (B, T - 1, I + 1)
        loss = F.cross_entropy(scores.reshape(-1, N_ITEMS + 1), items[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]
    gate = m.blocks[0].mlp[0].gate.weight  # type: ignore[attr-defined,index]
    assert gate.grad is not None and bool(gate.grad.abs().sum() > 0)


def test_a_family_without_a_feed_forward_part_refuses_swiglu() -> None:
    with pytest.raises(ConfigError, match=r"model.activation 'swiglu'.*cnn family has no feed"):
        model("cnn", dilations=(1, 2))
