from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from influrec.config import ConfigError, ModelConfig
from influrec.models.protocol import SequenceModel
from influrec.models.registry import build_model


def model(**overrides: object) -> SequenceModel:
    config = ModelConfig(
        max_len=8, d_model=16, layers=2, heads=2, time_buckets=6, use_value=True, **overrides
    )  # type: ignore[arg-type]
    torch.manual_seed(0)
    return build_model(config, n_items=20, n_behaviors=3).eval()


def inputs(batch: int = 3, length: int = 8) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(1)
    items = torch.randint(1, 21, (batch, length), generator=g)
    behaviors = torch.randint(1, 4, (batch, length), generator=g)
    gaps = torch.randint(1, 6, (batch, length), generator=g)
    values = torch.rand(batch, length, generator=g)
    return items, behaviors, gaps, values


def test_changing_a_later_event_never_changes_an_earlier_output() -> None:
    m = model()
    items, behaviors, gaps, values = inputs()
    before = m(items, behaviors, gaps, values)
    items2, behaviors2 = items.clone(), behaviors.clone()
    items2[:, 5] = (items2[:, 5] % 20) + 1
    behaviors2[:, 5] = (behaviors2[:, 5] % 3) + 1
    after = m(items2, behaviors2, gaps, values)
    torch.testing.assert_close(after[:, :5], before[:, :5])
    assert not torch.allclose(after[:, 5:], before[:, 5:])


def test_left_padding_does_not_change_the_prediction() -> None:
    m = model()
    items, behaviors, gaps, values = inputs(length=5)
    short = m(items, behaviors, gaps, values)[:, -1]
    pad = lambda t: torch.cat([torch.zeros(t.shape[0], 3, dtype=t.dtype), t], dim=1)  # noqa: E731
    padded = m(pad(items), pad(behaviors), pad(gaps), pad(values))[:, -1]
    torch.testing.assert_close(padded, short, rtol=1e-5, atol=1e-5)


def test_scores_and_heads() -> None:
    m = model()
    hidden = m(*inputs())
    scores = m.item_scores(hidden[:, -1])
    assert scores.shape == (3, 21) and torch.isinf(scores[:, 0]).all()
    torch.testing.assert_close(scores[:, 1:], hidden[:, -1] @ m.item_embedding.weight[1:].T)
    logits = m.behavior_logits(hidden)
    assert logits.shape == (3, 8, 4) and torch.isinf(logits[..., 0]).all()
    assert m.num_parameters() == sum(p.numel() for p in m.parameters()) > 0


def test_too_long_and_unknown_architecture() -> None:
    m = model()
    with pytest.raises(ValueError, match="longer than max_len"):
        m(*inputs(length=9))
    with pytest.raises(
        ConfigError,
        match=r"model\.architecture must name a registered model \(transformer, gru, cnn, mlp\)",
    ):
        build_model(ModelConfig(architecture="rnn"), n_items=3, n_behaviors=1)


def test_last_only_equals_the_last_column_of_the_full_pass() -> None:
    m = model()
    items, behaviors, gaps, values = inputs()
    items[0, :3] = 0  # some padding
    full = m(items, behaviors, gaps, values)[:, -1:]
    last = m(items, behaviors, gaps, values, last_only=True)
    assert last.shape == (3, 1, 16)
    torch.testing.assert_close(last, full, rtol=1e-5, atol=1e-6)


def test_cosine_scores_divide_by_the_temperature() -> None:
    m = model(score_temperature=0.1)
    hidden = m(*inputs())[:, -1]
    scores = m.item_scores(hidden)
    table = m.item_embedding.weight
    cosine = F.cosine_similarity(hidden[:, None], table[None, 1:], dim=-1)
    torch.testing.assert_close(scores[:, 1:], cosine / 0.1)
    assert torch.isinf(scores[:, 0]).all()


def test_item_features_add_the_mean_of_their_vectors_to_the_item_table() -> None:
    config = ModelConfig(max_len=8, d_model=16, layers=1, heads=2, item_features=("genres",))
    torch.manual_seed(0)
    m = build_model(config, n_items=20, n_behaviors=3, feature_values=4, feature_width=2).eval()
    table = torch.zeros(21, 2, dtype=torch.long)
    table[1] = torch.tensor([1, 3])
    table[2] = torch.tensor([4, 0])
    m.set_item_features(table)
    own, values = m.item_embedding.weight, m.feature_embedding.weight  # type: ignore[union-attr]
    items = m.item_table()
    torch.testing.assert_close(items[1], own[1] + (values[1] + values[3]) / 2)
    torch.testing.assert_close(items[2], own[2] + values[4])
    torch.testing.assert_close(items[5], own[5])  # no features
    assert not items[0].any()  # padding
    hidden = m(*inputs()[:2])[:, -1]
    torch.testing.assert_close(m.item_scores(hidden)[:, 1:], hidden @ items[1:].T)
    with pytest.raises(ValueError, match="outside"):
        m.set_item_features(table + 5)
    with pytest.raises(ValueError, match="without item features"):
        model().set_item_features(table)


def test_the_item_table_is_kept_without_gradients_until_a_weight_changes() -> None:
    config = ModelConfig(max_len=8, d_model=16, layers=1, heads=2, item_features=("genres",))
    m = build_model(config, n_items=20, n_behaviors=3, feature_values=4, feature_width=2).eval()
    m.set_item_features(torch.randint(0, 5, (21, 2)))
    with torch.no_grad():
        first = m.item_table()
        assert m.item_table() is first  # kept
        m.feature_embedding.weight[1] += 1.0  # type: ignore[union-attr]
        changed = m.item_table()
        assert changed is not first
        torch.testing.assert_close(changed, m._content_table())
        state = {k: v.clone() for k, v in m.state_dict().items()}
        state["item_embedding.weight"] *= 2.0
        m.load_state_dict(state)  # copied in place: the same storage, a new version
        torch.testing.assert_close(m.item_table(), m._content_table())
        assert not torch.allclose(m.item_table(), changed)
        m.set_item_features(torch.zeros(21, 2, dtype=torch.long))
        torch.testing.assert_close(m.item_table(), m.item_embedding.weight)
    assert m.item_table().requires_grad  # with gradients: rebuilt, part of the graph
