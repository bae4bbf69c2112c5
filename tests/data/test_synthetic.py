"""Tests for the synthetic generator: schema, order, determinism, ground truth, planted effect."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from influrec.data.schema import RAW_SCHEMA
from influrec.data.synthetic import (
    BEHAVIORS,
    GROUND_TRUTH_SCHEMA,
    SynthConfig,
    SyntheticLog,
    generate,
    successor_graph,
)
from influrec.errors import InputError

SMALL = SynthConfig(n_users=300, n_items=200, mean_events=30.0, seed=7)


@pytest.fixture(scope="module")
def small_log() -> SyntheticLog:
    return generate(SMALL)


@pytest.fixture(scope="module")
def default_log() -> SyntheticLog:
    return generate(SynthConfig())


def _codes(column: pa.ChunkedArray, prefix: str) -> np.ndarray:
    """'u12' -> 11: string ids back to 0-based integer codes."""
    return np.array([int(s[len(prefix) :]) - 1 for s in column.to_pylist()], dtype=np.int64)


def _successor_matrix(config: SynthConfig) -> np.ndarray:
    graph = successor_graph(config)
    sources = _codes(graph["item_id"], "i")
    targets = _codes(graph["successor_item_id"], "i")
    order = np.argsort(sources, kind="stable")
    return targets[order].reshape(config.n_items, config.n_successors)


def test_events_follow_raw_schema_with_rows_one_to_n(small_log: SyntheticLog) -> None:
    events = small_log.events
    assert events.schema.equals(RAW_SCHEMA)
    assert small_log.ground_truth.schema.equals(GROUND_TRUTH_SCHEMA)
    assert events["row"].to_pylist() == list(range(1, events.num_rows + 1))
    assert set(events["behavior"].to_pylist()) == set(BEHAVIORS)


def test_events_ordered_by_user_then_strictly_increasing_time(small_log: SyntheticLog) -> None:
    users = _codes(small_log.events["user_id"], "u")
    times = small_log.events["timestamp"].to_numpy()
    assert np.all(np.diff(users) >= 0)
    same_user = users[1:] == users[:-1]
    assert np.all(np.diff(times)[same_user] > 0)
    counts = np.bincount(users, minlength=SMALL.n_users)
    assert counts.min() >= SMALL.min_events
    assert len(counts) == SMALL.n_users
    assert times.min() > SMALL.start_timestamp
    first = times[np.r_[True, ~same_user]]
    assert first.max() < SMALL.start_timestamp + SMALL.start_spread_s + 30 * 86_400


def test_value_is_fixed_item_price_for_cart_and_buy_only(small_log: SyntheticLog) -> None:
    events = small_log.events
    priced = pc.is_in(events["behavior"], pa.array(["cart", "buy"]))
    assert pc.all(pc.equal(pc.is_valid(events["value"]), priced)).as_py()
    with_value = events.filter(priced)
    per_item = with_value.group_by("item_id").aggregate([("value", "count_distinct")])
    assert per_item["value_count_distinct"].to_pylist() == [1] * per_item.num_rows
    assert pc.min(with_value["value"]).as_py() > 0


def test_same_seed_gives_identical_tables_and_other_seed_differs() -> None:
    first, second = generate(SMALL), generate(SMALL)
    assert first.events.equals(second.events)
    assert first.ground_truth.equals(second.ground_truth)
    other = generate(SynthConfig(n_users=300, n_items=200, mean_events=30.0, seed=8))
    assert not first.events.equals(other.events)
    assert not successor_graph(SMALL).equals(successor_graph(other.config))


def test_successor_graph_has_distinct_successors_never_self() -> None:
    succ = _successor_matrix(SMALL)
    assert succ.shape == (SMALL.n_items, SMALL.n_successors)
    assert np.all(succ != np.arange(SMALL.n_items)[:, None])
    assert all(len(set(row)) == SMALL.n_successors for row in succ.tolist())
    assert succ.min() >= 0 and succ.max() < SMALL.n_items


def test_ground_truth_points_to_earlier_event_of_same_user_with_successor_item(
    small_log: SyntheticLog,
) -> None:
    events, truth = small_log.events, small_log.ground_truth
    assert 0 < truth.num_rows < events.num_rows
    index = truth["row"].to_numpy() - 1
    cause = truth["cause_row"].to_numpy() - 1
    assert np.all(cause >= 0) and np.all(cause < index)
    assert np.all(index - cause <= SMALL.cause_window)
    for column in ("user_id", "item_id"):
        assert events[column].take(index).equals(truth[column])
    assert events["user_id"].take(cause).equals(truth["user_id"])
    assert events["item_id"].take(cause).equals(truth["cause_item_id"])
    assert events["behavior"].take(cause).equals(truth["cause_behavior"])
    succ = _successor_matrix(SMALL)
    caused_items = _codes(truth["item_id"], "i")
    cause_items = _codes(truth["cause_item_id"], "i")
    assert np.all((succ[cause_items] == caused_items[:, None]).any(axis=1))
    assert len(np.unique(index)) == len(index)
    assert small_log.successors.equals(successor_graph(SMALL))


def test_no_triggers_means_no_caused_events_and_certain_triggers_cause_all() -> None:
    base = SynthConfig(n_users=50, n_items=100, mean_events=10.0, seed=3)
    never = generate(replace(base, trigger_view=0, trigger_cart=0, trigger_fav=0, trigger_buy=0))
    assert never.ground_truth.num_rows == 0
    always = generate(replace(base, trigger_view=1, trigger_cart=1, trigger_fav=1, trigger_buy=1))
    assert always.ground_truth.num_rows == always.events.num_rows - 50  # all but first events


def test_caused_events_follow_sooner_than_background_events(small_log: SyntheticLog) -> None:
    times = small_log.events["timestamp"].to_numpy()
    index = small_log.ground_truth["row"].to_numpy() - 1
    caused = np.zeros(len(times), dtype=bool)
    caused[index] = True
    users = _codes(small_log.events["user_id"], "u")
    same_user = np.r_[False, users[1:] == users[:-1]]
    gaps = np.r_[0, np.diff(times)]
    assert np.median(gaps[caused]) * 10 < np.median(gaps[same_user & ~caused])


def _successor_hit_rates(log: SyntheticLog) -> tuple[dict[str, float], float]:
    """P(a successor of the event's item appears among the user's next W events), by behaviour,
    and the same rate for the successors of an unrelated (randomly re-mapped) item."""
    config, events = log.config, log.events
    users, items = _codes(events["user_id"], "u"), _codes(events["item_id"], "i")
    behaviors = np.array(events["behavior"].to_pylist())
    window = config.cause_window
    following = np.full((len(items), window), -1)
    for d in range(1, window + 1):
        same_user = users[d:] == users[:-d]
        following[:-d, d - 1] = np.where(same_user, items[d:], -1)
    succ = _successor_matrix(config)

    def hits(targets: np.ndarray) -> np.ndarray:  # (N, K) -> (N, K) bool
        found: np.ndarray = (following[:, None, :] == targets[:, :, None]).any(axis=2)
        return found

    planted = hits(succ[items])
    unrelated = np.random.default_rng(0).permutation(config.n_items)
    rates = {b: float(planted[behaviors == b].mean()) for b in BEHAVIORS}
    return rates, float(hits(succ[unrelated[items]]).mean())


def test_planted_effect_is_visible_and_ordered_by_behaviour(default_log: SyntheticLog) -> None:
    rates, background = _successor_hit_rates(default_log)
    assert rates["buy"] > 1.5 * rates["cart"]
    assert rates["cart"] > 1.2 * rates["fav"]
    assert rates["fav"] > 1.5 * rates["view"]
    assert rates["buy"] > 3 * rates["view"]
    assert rates["view"] > 2 * background


def test_default_config_makes_about_100k_events(default_log: SyntheticLog) -> None:
    assert 90_000 <= default_log.events.num_rows <= 110_000
    caused_share = default_log.ground_truth.num_rows / default_log.events.num_rows
    assert 0.05 < caused_share < 0.5


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"n_users": 0}, "n_users"),
        ({"n_items": 1}, "n_items"),
        ({"min_events": 0}, "min_events"),
        ({"mean_events": 3.0}, "mean_events"),
        ({"seed": -1}, "seed"),
        ({"n_successors": 1000}, "n_successors"),
        ({"cause_window": 0}, "cause_window"),
        ({"n_clusters": 0}, "n_clusters"),
        ({"trigger_buy": 1.5}, "trigger_buy"),
        ({"trigger_view": -0.1}, "trigger_view"),
        ({"taste_weight": 2.0}, "taste_weight"),
        ({"p_cart": 0.5, "p_fav": 0.5, "p_buy": 0.5}, "p_cart"),
        ({"zipf_exponent": -1.0}, "zipf_exponent"),
        ({"caused_gap_mean_s": 0.0}, "caused_gap_mean_s"),
    ],
)
def test_invalid_config_raises_value_error_naming_field(
    overrides: dict[str, float], field: str
) -> None:
    with pytest.raises(InputError, match=field):
        SynthConfig(**overrides)  # type: ignore[arg-type]


def test_item_categories_are_the_taste_clusters(small_log: SyntheticLog) -> None:
    items = small_log.items
    assert items["item_id"].to_pylist() == [f"i{i}" for i in range(1, SMALL.n_items + 1)]
    categories = items["category"].to_pylist()
    sizes = np.unique(categories, return_counts=True)[1]
    assert len(sizes) == SMALL.n_clusters and sizes.min() == sizes.max()  # balanced
    # users draw most items from their own cluster: a user's most frequent category holds far
    # more of their events than the 1 / n_clusters a taste-blind log would give
    category = dict(zip(items["item_id"].to_pylist(), categories, strict=True))
    users = small_log.events["user_id"].to_numpy(zero_copy_only=False)
    shares = []
    for user in np.unique(users)[:50]:
        seen = [category[i] for i in small_log.events["item_id"].filter(users == user).to_pylist()]
        shares.append(np.unique(seen, return_counts=True)[1].max() / len(seen))
    assert np.mean(shares) > 0.5 > 5 / SMALL.n_clusters
