"""Every model family under the same contract: causal, blind to left padding, exact
leave-one-out through the generic path, gradients and Shapley through the shared embeddings."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import tests_helpers
from influrec.config import ModelConfig
from influrec.data.batching import batch_histories
from influrec.data.history import History
from influrec.errors import InputError
from influrec.influence.attribution import (
    attention_rollout,
    gradient_x_input,
    integrated_gradients,
    leave_one_out,
    shapley_sampling,
)
from influrec.influence.engine import Scorer
from influrec.influence.measurement import ItemScore, LogProbability
from influrec.models.protocol import Capabilities, SequenceModel
from influrec.models.registry import MODELS, build_model

FAMILIES = ["gru", "cnn", "mlp"]
MAX_LEN, N_ITEMS = 10, 25


def family(architecture: str, **overrides: object) -> SequenceModel:
    config = ModelConfig(
        architecture=architecture,
        max_len=MAX_LEN,
        d_model=16,
        layers=2,
        time_buckets=6,
        use_value=True,
        dilations=(1, 2),
        **overrides,  # type: ignore[arg-type]
    )
    torch.manual_seed(0)
    model = build_model(config, n_items=N_ITEMS, n_behaviors=3).eval()
    with torch.no_grad():  # as after training: no LayerNorm at its identity, no zero bias
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return model


def inputs(batch: int = 3, length: int = MAX_LEN) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(1)
    items = torch.randint(1, N_ITEMS + 1, (batch, length), generator=g)
    behaviors = torch.randint(1, 4, (batch, length), generator=g)
    gaps = torch.randint(1, 6, (batch, length), generator=g)
    values = torch.rand(batch, length, generator=g)
    return items, behaviors, gaps, values


def random_history(n: int, seed: int = 0) -> History:
    return tests_helpers.random_history(n, n_items=N_ITEMS, seed=seed)


def test_each_family_is_registered_and_declares_no_fast_path() -> None:
    assert list(MODELS) == ["transformer", "gru", "cnn", "mlp"]
    for name in FAMILIES:
        assert MODELS[name].capabilities == Capabilities()  # type: ignore[attr-defined]
        model = family(name)
        assert model.config.architecture == name and model.num_parameters() > 0


@pytest.mark.parametrize("architecture", FAMILIES)
@pytest.mark.parametrize("changed", [0, 4, MAX_LEN - 1])
def test_changing_a_later_event_never_changes_an_earlier_output(
    architecture: str, changed: int
) -> None:
    model = family(architecture)
    items, behaviors, gaps, values = inputs()
    with torch.no_grad():
        before = model.encode(items, behaviors, gaps, values)
        items2 = items.clone()
        items2[:, changed] = items2[:, changed] % N_ITEMS + 1
        after = model.encode(items2, behaviors, gaps, values)
    assert torch.equal(after[:, :changed], before[:, :changed])
    assert not torch.allclose(after[:, changed:], before[:, changed:])


@pytest.mark.parametrize("architecture", FAMILIES)
@pytest.mark.parametrize("positions", ["end", "start"])
def test_left_padding_changes_no_hidden_state_of_an_event(
    architecture: str, positions: str
) -> None:
    model = family(architecture, positions=positions)
    items, behaviors, gaps, values = inputs(batch=2)
    for pad in (1, 4, MAX_LEN - 1):
        padded = [t.clone() for t in (items, behaviors, gaps, values)]
        for t in padded:
            t[0, :pad] = 0  # the first row keeps its last MAX_LEN - pad events
        alone = [t[:1, pad:] for t in padded]  # the same events, unpadded
        with torch.no_grad():
            full = model.encode(*padded)
            last = model.encode(*padded, last_only=True)
            unpadded = model.encode(*alone)
        torch.testing.assert_close(full[:1, pad:], unpadded, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(last, full[:, -1:], rtol=1e-5, atol=1e-6)
        assert torch.isfinite(full).all()


def test_gru_all_padding_rows_and_heads_have_the_shapes_of_the_protocol() -> None:
    model = family("gru")
    items, behaviors, gaps, values = inputs(batch=2)
    items[1] = 0  # a row with no event at all
    with torch.no_grad():
        hidden = model.encode(items, behaviors, gaps, values)
        scores, logits = model.item_scores(hidden), model.behavior_logits(hidden)
    assert hidden.shape == (2, MAX_LEN, 16) and torch.isfinite(hidden).all()
    assert scores.shape == (2, MAX_LEN, N_ITEMS + 1) and logits.shape == (2, MAX_LEN, 4)
    assert bool(torch.isinf(scores[..., 0]).all()) and bool(torch.isinf(logits[..., 0]).all())


@torch.no_grad()
def one_at_a_time(model: SequenceModel, history: History) -> torch.Tensor:
    """(1 + W, I + 1): the whole history, then each event the model sees really deleted and
    the edited history packed alone and run whole through ``model.encode``."""
    config = model.config
    out = []
    for deleted in [None, *range(max(0, len(history) - config.max_len), len(history))]:
        keep = np.arange(len(history)) != (-1 if deleted is None else deleted)
        arrays = (history.items, history.behaviors, history.timestamps, history.values)
        edited = History(*(a[keep] for a in arrays))
        batch = batch_histories([edited], max_len=config.max_len, time_buckets=config.time_buckets)
        out.append(model.item_scores(model.encode(*batch.inputs)[:, -1])[0])
    return torch.stack(out)


@pytest.mark.parametrize("architecture", FAMILIES)
@pytest.mark.parametrize("n", [1, 5, MAX_LEN + 4])
def test_generic_leave_one_out_equals_one_at_a_time_rescoring(architecture: str, n: int) -> None:
    model = family(architecture)
    history = random_history(n, seed=n)
    slow = one_at_a_time(model, history)
    scorer = Scorer(model)
    fast = scorer.leave_one_out_scores(history)
    finite = torch.isfinite(slow)
    assert torch.equal(finite, torch.isfinite(fast))
    torch.testing.assert_close(fast[finite], slow[finite], rtol=1e-4, atol=1e-4)
    item = int(torch.argmax(slow[0]))
    explanation = leave_one_out(scorer, history, LogProbability(item))
    values = LogProbability(item)(slow).double().numpy()
    np.testing.assert_allclose(explanation.effects, values[0] - values[1:], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("architecture", FAMILIES)
def test_gradients_and_shapley_explain_every_family(architecture: str) -> None:
    model = family(architecture)
    history = random_history(7, seed=3)
    scorer = Scorer(model)
    measurement = ItemScore(int(torch.argmax(one_at_a_time(model, history)[0])))
    ig = integrated_gradients(scorer, history, measurement, steps=64)
    total = ig.value - ig.details["baseline_value"]
    assert abs(ig.details["completeness_gap"]) < 0.05 * abs(total) + 1e-3  # IG's completeness
    gxi = gradient_x_input(scorer, history, measurement)
    assert gxi.effects.shape == (7,) and np.isfinite(gxi.effects).all()
    shapley = shapley_sampling(scorer, history, measurement, permutations=4)
    empty = float(measurement(scorer.scores(history, [np.zeros(0, np.int64)]))[0])
    # Shapley's efficiency: contributions sum to the value minus the empty history's value
    assert shapley.effects.sum() == pytest.approx(shapley.value - empty, abs=1e-4)
    with pytest.raises(InputError, match="attention rollout needs attention weights"):
        attention_rollout(scorer, history, measurement)


def test_activation_is_used_by_the_feed_forward_parts() -> None:
    for architecture in ("transformer", "cnn", "mlp"):
        outputs = []
        gated = ("swiglu",) if architecture != "cnn" else ()  # cnn has no feed-forward part
        for name in ("gelu", "relu", "tanh", "sigmoid", *gated):
            model = family(architecture, activation=name)
            with torch.no_grad():
                outputs.append(model.encode(*inputs()))
        for a, b in itertools.pairwise(outputs):
            assert not torch.allclose(a, b)
