"""Start-anchored positions, and leave-one-out that reuses the events before each deletion.

Every fast result is checked against one-at-a-time re-scoring written here: delete the event,
re-pack the history the way serving does (``batch_histories``) and run the full forward pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from influrec.config import ConfigError, ExperimentConfig, ModelConfig, load_config
from influrec.data.batching import batch_histories
from influrec.data.history import History
from influrec.data.synthesize import synthesize_dataset
from influrec.data.synthetic import SynthConfig
from influrec.inference import Recommender
from influrec.influence import deletions, prefix_cache
from influrec.influence.attribution import _embedding_function, leave_one_out
from influrec.influence.engine import Scorer
from influrec.influence.measurement import LogProbability, RankMargin
from influrec.influence.prefix_cache import encode_prefix, encode_suffix
from influrec.models.registry import build_model
from influrec.models.transformer import BehaviorTransformer
from influrec.training.loop import train

MAX_LEN, N_ITEMS = 12, 30


def model(positions: str, *, features: bool = True, layers: int = 2) -> BehaviorTransformer:
    """A small random model in eval mode; ``features`` turns time gaps and values on."""
    config = ModelConfig(
        max_len=MAX_LEN,
        d_model=16,
        layers=layers,
        heads=2,
        time_buckets=8 if features else 0,
        use_value=features,
        positions=positions,
    )
    torch.manual_seed(0)
    built = build_model(config, n_items=N_ITEMS, n_behaviors=3).eval()
    assert isinstance(built, BehaviorTransformer)
    return built


def random_history(n: int, seed: int = 0) -> History:
    rng = np.random.default_rng(seed)
    return History(
        rng.integers(1, N_ITEMS + 1, n),
        rng.integers(1, 4, n),
        np.cumsum(rng.integers(0, 100_000, n)),  # gaps over many log-scale buckets
        rng.random(n).astype(np.float32),
    )


@torch.no_grad()
def rescored(m: BehaviorTransformer, history: History, deleted: int | None) -> torch.Tensor:
    """(I + 1,) scores after deleting one event (None: none), by a full forward pass."""
    keep = np.arange(len(history)) != (-1 if deleted is None else deleted)
    edited = History(
        history.items[keep], history.behaviors[keep], history.timestamps[keep], history.values[keep]
    )
    tensors = batch_histories(
        [edited], max_len=m.config.max_len, time_buckets=m.config.time_buckets
    ).inputs
    return m.item_scores(m(*tensors)[:, -1])[0]


def brute_force(m: BehaviorTransformer, history: History) -> torch.Tensor:
    """(1 + W, I + 1): the whole history, then each event of the model's window deleted."""
    window = range(max(0, len(history) - m.config.max_len), len(history))
    return torch.stack([rescored(m, history, None)] + [rescored(m, history, p) for p in window])


def assert_scores_equal(fast: torch.Tensor, slow: torch.Tensor) -> None:
    finite = torch.isfinite(slow)
    assert torch.equal(finite, torch.isfinite(fast))
    torch.testing.assert_close(fast[finite], slow[finite], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("positions", ["start", "end"])
@pytest.mark.parametrize("features", [True, False])
@pytest.mark.parametrize("n", [2, 3, 7, MAX_LEN, MAX_LEN + 1, 20])
def test_prefix_reuse_equals_one_at_a_time_rescoring(
    positions: str, features: bool, n: int
) -> None:
    m = model(positions, features=features)
    history = random_history(n, seed=n)
    slow = brute_force(m, history)
    for rows in (1, 3, 5, 64):  # one deletion per batch, even and uneven batches, one batch
        fast = Scorer(m, prefix_chunk_rows=rows).deletion_scores_reusing_prefix(history)
        assert_scores_equal(fast, slow)


@pytest.mark.parametrize("positions", ["start", "end"])
@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("values", [True, False])
@pytest.mark.parametrize("n", [2, 3, 7, MAX_LEN, MAX_LEN + 1, 20])
def test_shared_first_layer_equals_one_at_a_time_rescoring(
    positions: str, layers: int, values: bool, n: int
) -> None:
    config = ModelConfig(
        max_len=MAX_LEN, d_model=16, layers=layers, heads=2, use_value=values, positions=positions
    )
    torch.manual_seed(layers)
    m = build_model(config, n_items=N_ITEMS, n_behaviors=3).eval()
    history = random_history(n, seed=n)
    fast = Scorer(m).deletion_scores_sharing_first_layer(history)
    assert_scores_equal(fast, brute_force(m, history))


def test_shared_first_layer_needs_a_model_without_time_gaps() -> None:
    m = model("end", features=True)
    with pytest.raises(ValueError, match="without time gaps"):
        Scorer(m).deletion_scores_sharing_first_layer(random_history(5))


@pytest.mark.parametrize("positions", ["start", "end"])
@pytest.mark.parametrize("n", [1, 7, MAX_LEN, 20])
def test_leave_one_out_equals_rescoring(positions: str, n: int) -> None:
    m = model(positions)
    history = random_history(n, seed=100 + n)
    scorer = Scorer(m, prefix_chunk_rows=3)
    slow = brute_force(m, history)
    item = int(torch.topk(slow[0], 3).indices[-1])
    for measurement in (LogProbability(item), RankMargin(item, 5)):
        explanation = leave_one_out(scorer, history, measurement)
        values = measurement(slow).double().numpy()
        assert np.isclose(explanation.value, values[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(
            explanation.effects, values[0] - values[1:], rtol=1e-4, atol=1e-5
        )


@pytest.mark.parametrize("positions", ["start", "end"])
def test_leave_one_out_reuses_the_prefix_of_long_windows(
    positions: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def spy(*args: Any, **kwargs: Any) -> torch.Tensor:
        calls.append(kwargs["start"])
        return encode_suffix(*args, **kwargs)

    monkeypatch.setattr(prefix_cache, "encode_suffix", spy)
    shared: list[int] = []
    encode_deletions = deletions.encode_deletions

    def spy_shared(*args: Any) -> torch.Tensor:
        shared.append(len(args[-1]))
        return encode_deletions(*args)

    monkeypatch.setattr(deletions, "encode_deletions", spy_shared)
    history = random_history(MAX_LEN)
    leave_one_out(Scorer(model(positions), prefix_chunk_rows=MAX_LEN), history, LogProbability(1))
    assert calls == [] and shared == []  # too few deletions to gain from more than one batch
    leave_one_out(Scorer(model(positions), prefix_chunk_rows=3), history, LogProbability(1))
    assert calls == [0, 3, 6, 9]  # time gaps: each batch recomputes from its earliest deletion
    assert shared == []
    no_gaps = model(positions, features=False)
    leave_one_out(Scorer(no_gaps, prefix_chunk_rows=3), history, LogProbability(1))
    assert calls == [0, 3, 6, 9] and shared == [MAX_LEN]  # one pass shares the first layer


def test_start_positions_count_from_each_rows_first_event() -> None:
    m = model("start")
    items = torch.tensor([[0, 0, 5, 6, 7], [1, 2, 3, 4, 5], [0, 0, 0, 0, 9]])
    expected = torch.tensor([[0, 0, 0, 1, 2], [0, 1, 2, 3, 4], [0, 0, 0, 0, 0]])
    assert torch.equal(m.position_ids(items), expected)
    end = model("end").position_ids(items)
    assert torch.equal(end, torch.arange(MAX_LEN - 5, MAX_LEN)[None])  # unchanged behaviour


def test_start_positions_left_padding_does_not_change_the_prediction() -> None:
    m = model("start")
    history = random_history(5)
    short = batch_histories([history], max_len=MAX_LEN, time_buckets=8).inputs
    padded = batch_histories(
        [history, random_history(9, seed=1)], max_len=MAX_LEN, time_buckets=8
    ).inputs
    assert padded[0].shape[1] == 9 and bool((padded[0][0] == 0).any())
    with torch.no_grad():
        torch.testing.assert_close(m(*padded)[:1, -1], m(*short)[:, -1], rtol=1e-5, atol=1e-6)


def test_with_start_positions_an_events_output_ignores_how_many_follow() -> None:
    """What makes the prefix reusable: with "start" the hidden state of event t is the same
    whether it is the last event or more follow; with "end" it is not."""
    history = random_history(8)
    tensors = batch_histories([history], max_len=MAX_LEN, time_buckets=8).inputs
    first_five = tuple(t[:, :5] for t in tensors)
    with torch.no_grad():
        for positions, same in (("start", True), ("end", False)):
            m = model(positions)
            whole, prefix = m(*tensors)[:, 4], m(*first_five)[:, 4]
            assert torch.allclose(whole, prefix, rtol=1e-5, atol=1e-6) is same, positions


def test_encode_suffix_refuses_a_cache_at_other_positions() -> None:
    history = random_history(6)
    items, behaviors, gaps, values = batch_histories(
        [history], max_len=MAX_LEN, time_buckets=8
    ).inputs
    for positions in ("start", "end"):
        m = model(positions)
        cache = encode_prefix(m, items[:, :4], behaviors[:, :4], gaps[:, :4], values[:, :4])
        suffix = (items[:, 3:], behaviors[:, 3:], gaps[:, 3:], values[:, 3:])
        if positions == "start":  # 3 cached events + 3 new ones: the whole 6-event sequence
            with torch.no_grad():
                expected = m(items, behaviors, gaps, values)[:, -1]
                torch.testing.assert_close(encode_suffix(m, cache, *suffix, start=3), expected)
        else:  # a 6-event sequence puts its first events elsewhere than the 4-event cache
            with pytest.raises(ValueError, match="does not hold the first 3 events"):
                encode_suffix(m, cache, *suffix, start=3)
    with pytest.raises(ValueError, match="unpadded"):
        encode_prefix(m, torch.tensor([[0, 1]]), torch.tensor([[0, 1]]))


def test_integrated_gradients_baseline_keeps_start_positions() -> None:
    m = model("start")
    history = random_history(5)
    _, baseline, _ = _embedding_function(Scorer(m), history)
    expected = m.position_embedding.weight[:5]  # no content, positions 0..4 of the real events
    torch.testing.assert_close(baseline[0], expected.detach())


def test_positions_config() -> None:
    assert ModelConfig().positions == "end"  # existing runs keep their behaviour
    assert ExperimentConfig.from_dict({"model": {"max_len": 8}}).model.positions == "end"
    assert ModelConfig(positions="start").positions == "start"
    with pytest.raises(ConfigError, match=r"model.positions must be one of end, start"):
        ModelConfig(positions="begin")


def test_a_trained_start_run_reloads_and_explains_exactly(tmp_path: Path) -> None:
    """Training feeds left-padded windows; the saved run keeps "start"; LOO matches re-scoring."""
    dataset = synthesize_dataset(SynthConfig(n_users=60, n_items=30, mean_events=20, seed=1))
    overrides = [f"model.max_len={MAX_LEN}", "model.d_model=16", "model.positions=start"]
    overrides += ["model.time_buckets=8", "train.epochs=1", "train.batch_size=32", "eval.ks=[1,10]"]
    train(dataset, load_config(None, overrides), tmp_path / "run", progress=False)
    rec = Recommender.load(tmp_path / "run")
    assert rec.model.config.positions == "start"
    lengths = rec.data.user_end - rec.data.user_start
    assert lengths.max() > MAX_LEN > lengths[1:].min()
    for user in (int(np.argmax(lengths)), int(np.argmin(lengths[1:])) + 1):  # > and < max_len
        history = rec.user_history(rec.dataset.users.column("user_id")[user - 1].as_py())
        item = int(torch.argmax(rec.scores([history])[0]))
        explanation = leave_one_out(Scorer(rec.model), history, LogProbability(item))
        values = LogProbability(item)(brute_force(rec.model, history)).double().numpy()
        np.testing.assert_allclose(
            explanation.effects, values[0] - values[1:], rtol=1e-4, atol=1e-5
        )
