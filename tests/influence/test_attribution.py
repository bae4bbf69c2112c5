from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from influrec.data.batching import batch_histories
from influrec.data.history import History
from influrec.errors import InputError
from influrec.inference import Recommender
from influrec.influence.attribution import (
    attention_rollout,
    gradient_x_input,
    integrated_gradients,
    leave_one_out,
    shapley_sampling,
)
from influrec.influence.engine import Scorer
from influrec.influence.measurement import (
    InTopK,
    ItemScore,
    LogProbability,
    Measurement,
    Rank,
    RankMargin,
)
from influrec.models.transformer import BehaviorTransformer
from tests_helpers import rescore_without, user_history


class Float64Reference:
    """The model in float64 and the event embeddings of a history, built here from the serving
    inputs (``batch_histories``): ``x`` (1, T, D) the embeddings of the last max_len events,
    ``content`` (1, T, D) what each event adds to its position's embedding (x minus the same
    positions with no item, behaviour, gap or value), and ``f``: the measurement after any
    embeddings (S, T, D) -> (S,)."""

    def __init__(self, model: BehaviorTransformer, history: History) -> None:
        self.model = copy.deepcopy(model).double().eval()
        config = model.config
        items, behaviors, gaps, values = batch_histories(
            [history], max_len=config.max_len, time_buckets=config.time_buckets
        ).inputs
        self.items = items
        nothing = torch.zeros_like(items)
        with torch.no_grad():
            self.x = self.model.embed(items, behaviors, gaps, values.double())
            empty = self.model.embed(
                nothing,
                nothing,
                nothing,
                torch.zeros_like(values, dtype=torch.float64),
                positions=self.model.position_ids(items),
            )
        self.content = self.x - empty

    def f(self, measurement: Measurement, embeddings: torch.Tensor) -> torch.Tensor:
        items = self.items.expand(embeddings.shape[0], -1)
        hidden = self.model.encode_embeddings(embeddings, items)[:, -1]
        return measurement(self.model.item_scores(hidden))


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
            measurement(rescore_without(recommender, history, [int(position)])[None])[0]
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
    from influrec.data.batching import batch_rows

    batch = batch_rows(history, [np.arange(len(history))], max_len=16, time_buckets=8)

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


@pytest.mark.parametrize("kind", ["score", "margin"])
def test_gradient_x_input_is_the_derivative_along_each_events_content(
    recommender: Recommender, kind: str
) -> None:
    """Gradient x input of event i is the first-order Taylor term d/dt f(x + t c_i) at t = 0,
    c_i being what event i adds to its position's embedding: checked for every event the model
    sees against a central finite difference of the float64 forward pass, eps = 1e-4 (its error
    is O(eps²), far below the tolerance, which is float32's). Leaving out the baseline
    (x * grad) fails it."""
    history = user_history(recommender, 20)  # longer than max_len: only the window is explained
    window = len(history) - recommender.model.config.max_len
    item = int(torch.topk(recommender.scores([history])[0], 3).indices[-1])
    measurement = ItemScore(item) if kind == "score" else RankMargin(item, 10)
    explanation = gradient_x_input(Scorer(recommender.model), history, measurement)
    assert explanation.positions.tolist() == list(range(window, len(history)))
    ref = Float64Reference(recommender.model, history)
    length, eps = ref.x.shape[1], 1e-4
    steps = torch.zeros(2, length, length, 1, dtype=torch.float64)  # (±, event i, T, 1)
    steps[0, range(length), range(length)] = eps
    steps[1, range(length), range(length)] = -eps
    with torch.no_grad():
        assert np.isclose(explanation.value, float(ref.f(measurement, ref.x)[0]), rtol=1e-5)
        moved = ref.f(measurement, (ref.x + steps * ref.content).view(2 * length, length, -1))
    plus, minus = moved.view(2, length)
    derivative = ((plus - minus) / (2 * eps)).numpy()
    scale = np.abs(derivative).max()
    assert scale > 1e-3  # the events do move the measurement
    np.testing.assert_allclose(explanation.effects, derivative, rtol=1e-4, atol=1e-4 * scale)
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
    from influrec.data.batching import batch_rows
    from influrec.models.transformer import attention_mask

    batch = batch_rows(history, [np.arange(8)], max_len=16, time_buckets=8)
    x = model.embed(batch.items, batch.behaviors, batch.gaps, batch.values)
    block = model.blocks[0]
    weights = model.attention_weights(batch.items, batch.behaviors, batch.gaps, batch.values)[0]
    h = block.ln1(x)
    v = block.attn.qkv(h).split(x.shape[-1], dim=2)[2].view(1, 8, 2, -1).transpose(1, 2)
    manual = block.attn.out((weights @ v).transpose(1, 2).reshape(1, 8, -1))
    torch.testing.assert_close(
        manual, block.attn(h, attention_mask(batch.items)), rtol=1e-5, atol=1e-6
    )


def test_batched_integrated_gradients_equal_a_loop_over_the_path(recommender: Recommender) -> None:
    """Several measurements share one batched path; each must equal integrated gradients
    written out here: (x - baseline) times the mean gradient at the midpoints
    baseline + (s + 0.5) / S (x - baseline), one point and one measurement at a time (float64)."""
    from influrec.influence.attribution import integrated_gradients_many

    history = user_history(recommender, 9)
    steps = 20
    items = torch.topk(recommender.scores([history])[0], 3).indices.tolist()
    measurements = [ItemScore(items[0]), RankMargin(items[1], 10), LogProbability(items[2])]
    scorer = Scorer(recommender.model)
    together = integrated_gradients_many(scorer, history, measurements, steps=steps)
    ref = Float64Reference(recommender.model, history)
    baseline = ref.x - ref.content
    for m, batched in zip(measurements, together, strict=True):
        total = torch.zeros_like(ref.x)
        for s in range(steps):
            point = (baseline + (s + 0.5) / steps * ref.content).requires_grad_(True)
            total += torch.autograd.grad(ref.f(m, point).sum(), point)[0]
        expected = (ref.content * total / steps).sum(-1)[0].detach().numpy()
        scale = np.abs(expected).max()
        assert scale > 1e-3, m.name
        np.testing.assert_allclose(batched.effects, expected, rtol=1e-4, atol=1e-4 * scale)
        with torch.no_grad():
            assert np.isclose(batched.value, float(ref.f(m, ref.x)[0]), rtol=1e-5, atol=1e-6)


def test_leave_one_out_for_many_items_equals_one_at_a_time_rescoring(
    recommender: Recommender,
) -> None:
    """``leave_one_out_many`` (one set of deletions read by every measurement) and
    ``leave_one_out`` against deleting each event and re-scoring the history, per item."""
    from influrec.influence.attribution import leave_one_out_many

    history = user_history(recommender)  # longer than max_len: older events slide in
    scorer = Scorer(recommender.model)
    full = recommender.scores([history])
    ranked = torch.argsort(full[0], descending=True).tolist()
    items = [*ranked[:3], ranked[20]]  # three in the top 10, one outside (negative margin)
    measurements = [RankMargin(i, 10) for i in items] + [LogProbability(items[0])]
    explanations = leave_one_out_many(scorer, history, measurements)
    assert len(explanations) == len(measurements)
    window = np.arange(len(history) - recommender.model.config.max_len, len(history))
    deleted = torch.stack([rescore_without(recommender, history, [int(p)]) for p in window])
    for m, together in zip(measurements, explanations, strict=True):
        value = float(m(full)[0])
        expected = value - m(deleted).double().numpy()
        alone = leave_one_out(scorer, history, m)
        for explanation in (together, alone):
            assert np.array_equal(explanation.positions, window)
            assert np.isclose(explanation.value, value, rtol=1e-5, atol=1e-6), m.name
            np.testing.assert_allclose(explanation.effects, expected, rtol=1e-4, atol=1e-5)
