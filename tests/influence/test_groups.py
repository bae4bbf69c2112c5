from __future__ import annotations

import numpy as np
import pytest
import torch

from influrec.data.history import History
from influrec.inference import Recommender
from influrec.influence.engine import Scorer
from influrec.influence.groups import behavior_groups, group_effects, time_groups
from influrec.influence.measurement import ItemScore
from tests_helpers import drop_events, user_history


def test_group_shapley_is_exact_and_efficient(recommender: Recommender) -> None:
    history = user_history(recommender, 14)
    scorer = Scorer(recommender.model)
    item = int(torch.argmax(recommender.scores([history])[0]))
    groups = behavior_groups(history, recommender.dataset.behaviors)
    assert sorted(np.concatenate(list(groups.values())).tolist()) == list(range(14))
    effects = group_effects(scorer, history, ItemScore(item), groups)
    assert np.isclose(sum(effects.shapley), effects.value - effects.empty_value, atol=1e-5)
    # leave-group-out by direct re-scoring
    full = float(ItemScore(item)(scorer.scores(history, [np.arange(14)]))[0])
    for name, lgo in zip(effects.groups, effects.leave_group_out, strict=True):
        rest = np.setdiff1d(np.arange(14), groups[name])
        expected = full - float(ItemScore(item)(scorer.scores(history, [rest]))[0])
        assert np.isclose(lgo, expected, atol=1e-5)
    two = {
        "a": groups[effects.groups[0]],
        "b": np.setdiff1d(np.arange(14), groups[effects.groups[0]]),
    }
    pair = group_effects(scorer, history, ItemScore(item), two)
    f = lambda rows: float(ItemScore(item)(scorer.scores(history, [rows]))[0])  # noqa: E731
    empty, a, b = f(np.zeros(0, np.int64)), f(two["a"]), f(two["b"])
    assert np.isclose(pair.shapley[0], 0.5 * (a - empty) + 0.5 * (full - b), atol=1e-5)


def test_time_groups_partition_by_age(recommender: Recommender) -> None:
    history = user_history(recommender, 14)
    groups = time_groups(history)
    assert sorted(np.concatenate(list(groups.values())).tolist()) == list(range(14))
    hour, day = 3600, 86400
    ages = [40 * day, 30 * day, 10 * day, 2 * day, 5 * hour, hour, 600, 0]  # seconds before last
    now = 1_700_000_000
    n = len(ages)
    timed = History(
        np.ones(n, np.int64), np.ones(n, np.int64), now - np.array(ages), np.zeros(n, np.float32)
    )
    expected = {  # each upper limit inclusive; a window without events is left out
        "last hour": [5, 6, 7],
        "last day": [4],
        "last week": [3],
        "last 30 days": [1, 2],
        "older": [0],
    }
    assert {k: v.tolist() for k, v in time_groups(timed).items()} == expected
    recent = drop_events(timed, range(4))
    assert {k: v.tolist() for k, v in time_groups(recent).items()} == {
        "last hour": [1, 2, 3],
        "last day": [0],
    }
    with pytest.raises(ValueError, match="groups"):
        group_effects(Scorer(recommender.model), history, ItemScore(1), {})


def test_category_groups_keep_the_five_most_frequent_and_pool_the_rest() -> None:
    from influrec.influence.groups import GroupContext, category_groups

    items = np.array([1, 2, 3, 4, 5, 6, 7, 1, 2, 8])
    history = History(items, np.ones(10, np.int64), np.arange(10), np.zeros(10, np.float32))
    categories = {i: f"c{i}" for i in range(1, 8)}  # item 8 has none
    groups = category_groups(history, GroupContext(["[PAD]", "buy"], categories))
    assert {k: v.tolist() for k, v in groups.items()} == {
        "c1": [0, 7],
        "c2": [1, 8],
        "c3": [2],
        "c4": [3],
        "c5": [4],
        "other categories": [5, 6, 9],
    }


def test_explain_groups_by_category_adds_up_exactly(recommender: Recommender) -> None:
    from influrec.influence.api import explain_groups, item_categories

    history = user_history(recommender, 14)
    result = explain_groups(recommender, history, by="category", k=2)
    categories = item_categories(recommender)
    labels = {categories.get(int(i), "no category") for i in history.items}
    for item in result.recommendations:
        names = {g.group for g in item.groups}
        assert names <= labels | {"other categories"} and all(
            n.startswith("category ") for n in names - {"other categories"}
        )
        assert sum(g.events for g in item.groups) == 14
        total = sum(g.shapley for g in item.groups)
        assert np.isclose(total, item.value - item.empty_value, atol=1e-5)
