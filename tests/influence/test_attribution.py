from __future__ import annotations

import numpy as np
import pytest
import torch

from influrec.errors import InputError
from influrec.inference import History, Recommender
from influrec.influence.attribution import (
    attention_rollout,
    gradient_x_input,
    integrated_gradients,
    leave_one_out,
    shapley_sampling,
)
from influrec.influence.engine import Scorer
from influrec.influence.measurement import InTopK, ItemScore, LogProbability, Rank, RankMargin


def user_history(rec: Recommender, n: int | None = None) -> History:
    lengths = rec.data.user_end - rec.data.user_start
    longest = int(np.argmax(lengths))  # user_idx of the longest history
    h = rec.user_history(rec.dataset.users.column("user_id")[longest - 1].as_py())
    if n is None:
        return h
    return History(h.items[:n], h.behaviors[:n], h.timestamps[:n], h.values[:n])


def brute_force(rec: Recommender, history: History, position: int) -> torch.Tensor:
    keep = np.arange(len(history)) != position
    edited = History(
        history.items[keep], history.behaviors[keep], history.timestamps[keep], history.values[keep]
    )
    return rec.scores([edited])[0]


@pytest.mark.parametrize("kind", ["score", "margin", "logp", "rank"])
def test_leave_one_out_equals_one_at_a_time_rescoring(recommender: Recommender, kind: str) -> None:
    history = user_history(recommender)  # longer than max_len: older events slide into the window
    assert len(history) > recommender.model.config.max_len
    item = int(torch.topk(recommender.scores([history])[0], 3).indices[-1])
    measurement = {
        "score": ItemScore(item),
        "margin": RankMargin(item, 10),
        "logp": LogProbability(item),
        "rank": Rank(item),
    }[kind]
    explanation = leave_one_out(Scorer(recommender.model), history, measurement)
    full = float(measurement(recommender.scores([history]))[0])
    assert np.isclose(explanation.value, full, rtol=1e-5, atol=1e-6)
    for position, effect in zip(explanation.positions, explanation.effects, strict=True):
        expected = full - float(
            measurement(brute_force(recommender, history, int(position))[None])[0]
        )
        assert np.isclose(effect, expected, rtol=1e-4, atol=1e-5), position


def test_rank_orders_by_places_then_probability() -> None:
    scores = torch.tensor(
        [[float("-inf"), 1.0, 3.0, 2.0], [float("-inf"), 1.0, 3.0, 2.5], [float("-inf"), 4, 3, 2]]
    )
    values = Rank(3)(scores)
    p = torch.softmax(scores, -1)[:, 3]
    # item 3 is second, second (more probable) and third
    np.testing.assert_allclose(values, [p[0] / 2 - 2, p[1] / 2 - 2, p[2] / 2 - 3], rtol=1e-6)
    assert values[1] > values[0] > values[2]
    assert not Rank(3).differentiable


def test_integrated_gradients_completeness_and_captum(recommender: Recommender) -> None:
    captum_attr = pytest.importorskip("captum.attr")
    history = user_history(recommender, 10)
    item = int(torch.topk(recommender.scores([history])[0], 1).indices[0])
    scorer = Scorer(recommender.model)
    ours = integrated_gradients(scorer, history, ItemScore(item), steps=64)
    gap = ours.details["completeness_gap"]
    assert gap < 0.02 * (abs(ours.value - ours.details["baseline_value"]) + 1e-3)
    # Captum's LayerIntegratedGradients on the same embedding layer output and baseline
    model = recommender.model
    from influrec.influence.engine import rows_to_batch

    batch = rows_to_batch(history, [np.arange(len(history))], max_len=16, time_buckets=8)

    class Wrapped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = torch.nn.Identity()

        def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
            x = self.embedding(embeddings)
            hidden = model.encode_embeddings(x, batch.items.expand(x.shape[0], -1))[:, -1]
            return model.item_scores(hidden)[:, item]

    x = model.embed(batch.items, batch.behaviors, batch.gaps, batch.values).detach()
    zeros = torch.zeros_like(batch.items)
    baseline = model.embed(zeros, zeros, zeros, torch.zeros_like(batch.values)).detach()
    wrapped = Wrapped()
    lig = captum_attr.LayerIntegratedGradients(wrapped, wrapped.embedding)
    theirs = lig.attribute(x, baselines=baseline, n_steps=64, method="riemann_middle").sum(-1)[0]
    np.testing.assert_allclose(ours.effects, theirs.detach().double().numpy(), rtol=1e-3, atol=1e-4)


def test_gradient_x_input_matches_a_finite_difference_direction(recommender: Recommender) -> None:
    history = user_history(recommender, 6)
    item = int(torch.topk(recommender.scores([history])[0], 1).indices[0])
    explanation = gradient_x_input(Scorer(recommender.model), history, ItemScore(item))
    assert explanation.effects.shape == (6,) and np.isfinite(explanation.effects).all()
    with pytest.raises(InputError, match="not differentiable"):
        gradient_x_input(Scorer(recommender.model), history, InTopK(item, 10))


def test_shapley_efficiency_and_agreement_with_exact_values(recommender: Recommender) -> None:
    history = user_history(recommender, 4)
    scorer = Scorer(recommender.model)
    item = int(torch.topk(recommender.scores([history])[0], 1).indices[0])
    measurement = ItemScore(item)
    estimate = shapley_sampling(scorer, history, measurement, permutations=400, seed=1)
    empty = float(measurement(scorer.scores(history, [np.zeros(0, np.int64)]))[0])
    assert np.isclose(estimate.effects.sum(), estimate.value - empty, atol=1e-4)  # efficiency
    # exact Shapley values by enumerating all 2^4 coalitions
    from itertools import combinations
    from math import factorial

    n = 4
    values = {}
    for size in range(n + 1):
        for subset in combinations(range(n), size):
            values[subset] = float(
                measurement(scorer.scores(history, [np.array(subset, np.int64)]))[0]
            )
    exact = np.zeros(n)
    for i in range(n):
        for subset, v in values.items():
            if i in subset:
                continue
            with_i = tuple(sorted((*subset, i)))
            weight = factorial(len(subset)) * factorial(n - len(subset) - 1) / factorial(n)
            exact[i] += weight * (values[with_i] - v)
    stderr = np.array(estimate.details["stderr"])
    assert np.all(np.abs(estimate.effects - exact) <= 4 * stderr + 1e-3)


def test_attention_rollout_is_a_distribution_and_weights_match_the_forward(
    recommender: Recommender,
) -> None:
    history = user_history(recommender, 8)
    model = recommender.model
    explanation = attention_rollout(Scorer(model), history, ItemScore(1))
    assert (
        np.isclose(explanation.effects.sum(), 1.0, atol=1e-5) and (explanation.effects >= 0).all()
    )
    from influrec.influence.engine import rows_to_batch
    from influrec.models.transformer import attention_mask

    batch = rows_to_batch(history, [np.arange(8)], max_len=16, time_buckets=8)
    x = model.embed(batch.items, batch.behaviors, batch.gaps, batch.values)
    block = model.blocks[0]
    weights = model.attention_weights(batch.items, batch.behaviors, batch.gaps, batch.values)[0]
    h = block.ln1(x)
    v = block.attn.qkv(h).split(x.shape[-1], dim=2)[2].view(1, 8, 2, -1).transpose(1, 2)
    manual = block.attn.out((weights @ v).transpose(1, 2).reshape(1, 8, -1))
    torch.testing.assert_close(
        manual, block.attn(h, attention_mask(batch.items)), rtol=1e-5, atol=1e-6
    )


def test_batched_integrated_gradients_equal_one_at_a_time(recommender: Recommender) -> None:
    from influrec.influence.attribution import integrated_gradients_many

    history = user_history(recommender, 9)
    scorer = Scorer(recommender.model)
    items = torch.topk(recommender.scores([history])[0], 3).indices.tolist()
    measurements = [ItemScore(items[0]), RankMargin(items[1], 10), LogProbability(items[2])]
    together = integrated_gradients_many(scorer, history, measurements, steps=20)
    for m, batched in zip(measurements, together, strict=True):
        alone = integrated_gradients(scorer, history, m, steps=20)
        np.testing.assert_allclose(batched.effects, alone.effects, rtol=1e-4, atol=1e-6)
        assert np.isclose(batched.value, alone.value)


def test_leave_one_out_for_many_items_equals_one_at_a_time(recommender: Recommender) -> None:
    from influrec.influence.attribution import leave_one_out_many

    history = user_history(recommender, 11)
    scorer = Scorer(recommender.model)
    items = torch.topk(recommender.scores([history])[0], 3).indices.tolist()
    measurements = [RankMargin(i, 10) for i in items]
    for m, together in zip(
        measurements, leave_one_out_many(scorer, history, measurements), strict=True
    ):
        np.testing.assert_allclose(
            together.effects, leave_one_out(scorer, history, m).effects, rtol=1e-6
        )
