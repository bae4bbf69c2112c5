"""Item text in every model family: a projected text vector joins each item's embedding, and
an item without training events is embedded by its content alone."""

from __future__ import annotations

import pytest
import torch

from influrec.config import ModelConfig
from influrec.models.registry import MODELS, build_model

N_ITEMS, TEXT_DIM = 12, 8


def text_model(architecture: str) -> torch.nn.Module:
    config = ModelConfig(
        architecture=architecture, d_model=16, layers=1, heads=2, max_len=10,
        item_features=("text",),
    )  # fmt: skip
    torch.manual_seed(0)
    model = build_model(config, n_items=N_ITEMS, n_behaviors=2, text_dim=TEXT_DIM)
    vectors = torch.randn(N_ITEMS + 1, TEXT_DIM)
    vectors[0] = 0
    cold = torch.zeros(N_ITEMS + 1, dtype=torch.bool)
    cold[[4, 7]] = True
    model.set_item_text(vectors, cold)
    return model


@pytest.mark.parametrize("architecture", sorted(MODELS))
def test_cold_items_are_their_text_and_warm_items_add_it(architecture: str) -> None:
    model = text_model(architecture)
    with torch.no_grad():
        table = model.item_table()
        projected = model.text_projection(model.item_text)
    own = model.item_embedding.weight.detach()
    torch.testing.assert_close(table[4], projected[4])  # cold: content alone
    torch.testing.assert_close(table[7], projected[7])
    torch.testing.assert_close(table[5], own[5] + projected[5])  # warm: own + content
    assert not table[0].any()


def test_a_cold_items_own_vector_gets_no_gradient_and_the_cache_follows_the_text() -> None:
    model = text_model("transformer")
    model.item_table()[[4, 5]].sum().backward()
    grad = model.item_embedding.weight.grad
    assert grad is not None and not grad[4].any() and grad[5].any()
    assert model.text_projection.weight.grad is not None
    with torch.no_grad():
        before = model.item_table().clone()
        model.item_text[5] += 1.0  # new content: the kept table must be rebuilt
        after = model.item_table()
    assert not torch.equal(before[5], after[5]) and torch.equal(before[6], after[6])


def test_text_needs_its_size_and_matching_shapes() -> None:
    config = ModelConfig(d_model=16, heads=2, max_len=10, item_features=("text",))
    with pytest.raises(ValueError, match="text_dim"):
        build_model(config, n_items=N_ITEMS, n_behaviors=2)
    model = text_model("gru")
    with pytest.raises(ValueError, match="item text"):
        model.set_item_text(torch.zeros(3, TEXT_DIM), torch.zeros(3, dtype=torch.bool))
    plain = build_model(ModelConfig(d_model=16, heads=2), n_items=N_ITEMS, n_behaviors=2)
    with pytest.raises(ValueError, match="built without item text"):
        plain.set_item_text(torch.zeros(N_ITEMS + 1, 4), torch.zeros(N_ITEMS + 1, dtype=torch.bool))


def test_trained_items_are_those_training_windows_read() -> None:
    """With leave-one-out, an item seen only as a validation or test target stays cold."""
    import dataclasses

    import numpy as np

    from influrec.config import DataConfig
    from influrec.data.sequences import training_windows
    from influrec.data.splits import make_split
    from influrec.training.content import trained_items
    from tests_helpers import make_data

    data = dataclasses.replace(make_data([6, 6]), n_items=9)
    data.item[:] = [1, 2, 3, 1, 8, 9, 2, 3, 1, 2, 6, 7]  # 8, 9 and 6, 7: each user's last two
    split = make_split(data, DataConfig())
    windows = training_windows(data, split.train, max_len=4)
    trained = trained_items(data, windows)
    assert np.flatnonzero(trained).tolist() == [1, 2, 3]


def test_content_only_items_need_text() -> None:
    from influrec.config import ConfigError

    with pytest.raises(ConfigError, match=r"model\.id_embeddings false needs text"):
        ModelConfig(id_embeddings=False, item_features=("genres",))
    assert not ModelConfig(id_embeddings=False, item_features=("text",)).id_embeddings


def test_id_dropout_drops_own_vectors_once_per_step_and_only_in_training() -> None:
    model = text_model("transformer")
    model.config = model.config.replace(id_dropout=0.5)
    model.train()
    torch.manual_seed(1)
    first = model._without_own_vector().clone()
    assert torch.equal(model._without_own_vector(), first)  # same step: the same items
    assert first[[4, 7]].all() and 2 < int(first.sum()) < N_ITEMS  # the cold ones, and more
    with torch.no_grad():
        model.item_embedding.weight.add_(0.0)  # an optimiser step bumps the version
    assert not torch.equal(model._without_own_vector(), first)
    model.eval()
    assert torch.equal(model._without_own_vector(), model.cold_items)


def test_untrained_items_are_left_out_of_the_training_softmax() -> None:
    from influrec.training.losses import full_softmax_loss, with_unavailable

    pairs = with_unavailable(None, torch.tensor([3, 5]), rows=2)
    assert pairs is not None and pairs[0].tolist() == [0, 0, 1, 1]
    assert pairs[1].tolist() == [3, 5, 3, 5]
    hidden, items = torch.randn(2, 4), torch.randn(7, 4)
    targets = torch.tensor([1, 2])
    without = full_softmax_loss(hidden, targets, items, exclude=pairs)
    logits = hidden @ items.T
    logits[:, [0, 3, 5]] = float("-inf")
    torch.testing.assert_close(without, torch.nn.functional.cross_entropy(logits, targets))
    seen = (torch.tensor([0]), torch.tensor([4]))
    merged = with_unavailable(seen, torch.tensor([3]), rows=2)
    assert merged is not None and merged[1].tolist() == [4, 3, 3]
