"""Any SequenceModel gets exact leave-one-out; the fast kernels only where a model declares them.

A tiny GRU written here implements the protocol without declaring any capability: it must go
through the same Scorer, leave_one_out and registry as the Transformer, on the generic path, and
match one-at-a-time re-scoring (each deletion re-packed the way serving does and run whole).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
import torch
from torch import nn

import tests_helpers
from influrec.config import ModelConfig
from influrec.data.batching import batch_histories
from influrec.data.history import History
from influrec.errors import InputError
from influrec.influence import deletions, prefix_cache
from influrec.influence.attribution import attention_rollout, leave_one_out
from influrec.influence.engine import Scorer
from influrec.influence.measurement import ItemScore, LogProbability
from influrec.models import registry
from influrec.models.protocol import Capabilities, SequenceModel, last_hidden, score_last
from influrec.models.registry import build_model
from influrec.models.transformer import BehaviorTransformer

MAX_LEN, N_ITEMS = 10, 25


class TinyGRU(nn.Module):
    """A GRU over item + behaviour embeddings; padding (item 0) leaves the state unchanged."""

    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(
        self,
        config: ModelConfig,
        *,
        n_items: int,
        n_behaviors: int,
        feature_values: int = 0,
        feature_width: int = 1,
        text_dim: int = 0,
    ) -> None:
        super().__init__()
        self.config, self.n_items, self.n_behaviors = config, n_items, n_behaviors
        d = config.d_model
        self.item_embedding = nn.Embedding(n_items + 1, d, padding_idx=0)
        self.behavior_embedding = nn.Embedding(n_behaviors + 1, d, padding_idx=0)
        self.cell = nn.GRUCell(d, d)
        self.ln_final = nn.LayerNorm(d)
        self.behavior_head: nn.Module | None = None

    def embed(
        self,
        items: torch.Tensor,
        behaviors: torch.Tensor,
        gaps: torch.Tensor | None = None,
        values: torch.Tensor | None = None,
        *,
        positions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return self.item_embedding(items) + self.behavior_embedding(behaviors)  # (B, T, D)

    def position_ids(self, items: torch.Tensor) -> torch.Tensor:
        return torch.arange(items.shape[1])[None]

    def encode_embeddings(
        self, x: torch.Tensor, items: torch.Tensor, *, last_only: bool = False
    ) -> torch.Tensor:
        state = x.new_zeros(x.shape[0], x.shape[2])  # (B, D)
        states = []
        for t in range(x.shape[1]):
            updated = self.cell(x[:, t], state)
            state = torch.where((items[:, t] != 0)[:, None], updated, state)
            states.append(state)
        hidden = self.ln_final(torch.stack(states, dim=1))  # (B, T, D)
        return hidden[:, -1:] if last_only else hidden

    def encode(
        self,
        items: torch.Tensor,
        behaviors: torch.Tensor,
        gaps: torch.Tensor | None = None,
        values: torch.Tensor | None = None,
        *,
        last_only: bool = False,
    ) -> torch.Tensor:
        return self.encode_embeddings(self.embed(items, behaviors), items, last_only=last_only)

    def item_table(self) -> torch.Tensor:
        return self.item_embedding.weight

    def scoring_space(
        self, hidden: torch.Tensor, table: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return hidden, table

    def item_scores(self, hidden: torch.Tensor) -> torch.Tensor:
        scores = hidden @ self.item_table().T
        scores[..., 0] = float("-inf")
        return scores

    def behavior_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        raise ValueError("TinyGRU has no behaviour head")

    def set_item_features(self, table: torch.Tensor) -> None:
        raise ValueError("TinyGRU has no item features")

    def set_item_text(self, vectors: torch.Tensor, cold: torch.Tensor) -> None:
        raise ValueError("TinyGRU has no item text")

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def random_history(n: int, seed: int = 0) -> History:
    return tests_helpers.random_history(n, n_items=N_ITEMS, seed=seed)


@torch.no_grad()
def one_at_a_time(model: SequenceModel, history: History) -> torch.Tensor:
    """(1 + W, I + 1): the whole history, then each event the model sees deleted, every one
    re-packed alone and run whole through ``model.encode``."""
    config = model.config
    out = []
    for deleted in [None, *range(max(0, len(history) - config.max_len), len(history))]:
        keep = np.arange(len(history)) != (-1 if deleted is None else deleted)
        edited = History(
            *(
                a[keep]
                for a in (history.items, history.behaviors, history.timestamps, history.values)
            )
        )
        items, behaviors, gaps, values = batch_histories(
            [edited], max_len=config.max_len, time_buckets=config.time_buckets
        ).inputs
        hidden = model.encode(items, behaviors, gaps, values)[:, -1]  # the full pass
        out.append(model.item_scores(hidden)[0])
    return torch.stack(out)


def assert_scores_equal(fast: torch.Tensor, slow: torch.Tensor) -> None:
    finite = torch.isfinite(slow)
    assert torch.equal(finite, torch.isfinite(fast))
    torch.testing.assert_close(fast[finite], slow[finite], rtol=1e-4, atol=1e-6)


@pytest.fixture
def gru(monkeypatch: pytest.MonkeyPatch) -> SequenceModel:
    """A TinyGRU built through the registry, as a new model family would be."""
    monkeypatch.setitem(registry.MODELS, "tiny-gru", TinyGRU)
    torch.manual_seed(0)
    config = ModelConfig(architecture="tiny-gru", max_len=MAX_LEN, d_model=8, heads=2)
    return build_model(config, n_items=N_ITEMS, n_behaviors=3).eval()


def transformer(*, time_buckets: int) -> SequenceModel:
    config = ModelConfig(
        max_len=MAX_LEN, d_model=16, layers=2, heads=2, time_buckets=time_buckets, use_value=True
    )
    torch.manual_seed(1)
    return build_model(config, n_items=N_ITEMS, n_behaviors=3).eval()


@pytest.mark.parametrize("n", [1, 4, MAX_LEN, MAX_LEN + 5])
def test_a_model_without_capabilities_gets_exact_leave_one_out_by_rescoring(
    gru: SequenceModel, n: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a fast kernel ran for a model that does not declare it")

    for module, name in ((prefix_cache, "encode_prefix"), (deletions, "encode_deletions")):
        monkeypatch.setattr(module, name, refuse)
    assert isinstance(gru, TinyGRU)
    history = random_history(n, seed=n)
    slow = one_at_a_time(gru, history)
    scorer = Scorer(gru, prefix_chunk_rows=2)  # a window this long takes a fast path if declared
    assert_scores_equal(scorer.leave_one_out_scores(history), slow)
    item = int(torch.argmax(slow[0]))
    explanation = leave_one_out(scorer, history, LogProbability(item))
    values = LogProbability(item)(slow).double().numpy()
    np.testing.assert_allclose(explanation.effects, values[0] - values[1:], rtol=1e-4, atol=1e-5)


def test_the_fast_kernels_refuse_a_model_that_does_not_declare_them(gru: SequenceModel) -> None:
    scorer = Scorer(gru)
    with pytest.raises(ValueError, match="does not declare prefix_reuse"):
        scorer.deletion_scores_reusing_prefix(random_history(5))
    with pytest.raises(ValueError, match="does not declare shared_first_layer_deletions"):
        scorer.deletion_scores_sharing_first_layer(random_history(5))


def test_attention_rollout_needs_a_model_with_attention(gru: SequenceModel) -> None:
    with pytest.raises(InputError, match=r"attention rollout needs attention weights.*TinyGRU"):
        attention_rollout(Scorer(gru), random_history(5), ItemScore(1))


def test_a_class_that_declares_a_capability_it_lacks_is_a_bug_not_bad_input(
    gru: SequenceModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(TinyGRU, "capabilities", Capabilities(True, True, True))
    with pytest.raises(TypeError, match="declares prefix_reuse but is not a BehaviorTransformer"):
        Scorer(gru).deletion_scores_reusing_prefix(random_history(5))
    with pytest.raises(TypeError, match="declares attention weights without the method"):
        attention_rollout(Scorer(gru), random_history(5), ItemScore(1))


@pytest.mark.parametrize("time_buckets", [0, 8])
@pytest.mark.parametrize("n", [3, MAX_LEN + 3])
def test_transformer_fast_and_generic_paths_equal_one_at_a_time_rescoring(
    time_buckets: int, n: int
) -> None:
    model = transformer(time_buckets=time_buckets)
    assert model.capabilities.prefix_reuse and model.capabilities.shared_first_layer_deletions
    history = random_history(n, seed=10 + n)
    slow = one_at_a_time(model, history)
    scorer = Scorer(model, prefix_chunk_rows=2)
    paths = [scorer.deletion_scores_rescoring, scorer.deletion_scores_reusing_prefix]
    if time_buckets == 0:  # the shared first layer needs a model without time gaps
        paths.append(scorer.deletion_scores_sharing_first_layer)
    for path in [scorer.leave_one_out_scores, *paths]:
        assert_scores_equal(path(history), slow)


def test_capabilities_are_declared_off_unless_a_class_turns_them_on() -> None:
    assert Capabilities() == Capabilities(False, False, False)
    assert BehaviorTransformer.capabilities == Capabilities(True, True, True)
    assert TinyGRU.capabilities == Capabilities()


@pytest.mark.parametrize("make", ["gru", "transformer"])
def test_last_hidden_and_score_last_read_the_last_column_of_a_padded_batch(
    make: str, gru: SequenceModel
) -> None:
    model = gru if make == "gru" else transformer(time_buckets=8)
    histories = [random_history(3, seed=1), random_history(7, seed=2)]  # the first is padded
    config = model.config
    tensors = batch_histories(
        histories, max_len=config.max_len, time_buckets=config.time_buckets
    ).inputs
    assert bool((tensors[0][0] == 0).any())
    with torch.no_grad():
        full = model.encode(*tensors)  # (B, T, D)
        hidden = last_hidden(model, *tensors)
        scores = score_last(model, *tensors)
        alone = last_hidden(
            model,
            *batch_histories(
                histories[:1], max_len=config.max_len, time_buckets=config.time_buckets
            ).inputs,
        )
    assert hidden.shape == (2, config.d_model)
    torch.testing.assert_close(hidden, full[:, -1], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(hidden[:1], alone, rtol=1e-5, atol=1e-6)  # padding changes nothing
    torch.testing.assert_close(scores, model.item_scores(full[:, -1]), rtol=1e-5, atol=1e-6)
    assert bool(torch.isinf(scores[:, 0]).all())
