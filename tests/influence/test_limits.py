"""Sizes and values at the edge of what a trained run can answer: k beyond the catalogue,
events whose value overflows float32, times that are not epoch seconds."""

from __future__ import annotations

import numpy as np
import pytest

from influrec.data.history import History
from influrec.errors import InputError
from influrec.inference import Recommender, clamp_k
from influrec.influence import api


def some_history(rec: Recommender, n: int = 8) -> History:
    return rec.history_from_records([{"item": f"i{i + 1}"} for i in range(n)])[0]


def test_clamp_k_refuses_non_positive_and_caps_at_the_catalogue() -> None:
    assert clamp_k(5, 40) == 5 and clamp_k(10**30, 40) == 40 and clamp_k(np.int64(3), 40) == 3
    for bad in (0, -1, True, 2.5, "3"):
        with pytest.raises(InputError, match="at least 1"):
            clamp_k(bad, 40)  # type: ignore[arg-type]


def test_k_beyond_the_catalogue_lists_every_real_item_once(recommender: Recommender) -> None:
    n = recommender.n_items
    history = some_history(recommender)
    recs = recommender.recommend(history, k=n + 50, exclude_seen=False)
    assert sorted(r.item_idx for r in recs) == list(range(1, n + 1))  # no padding, no repeats
    assert [r.rank for r in recs] == list(range(1, n + 1))
    assert len(recommender.popular(k=n + 1)) == n
    unseen = recommender.recommend(history, k=n + 1)  # seen items are left out by default
    assert len(unseen) == n - len(set(history.items.tolist()))


def test_influence_questions_accept_k_beyond_the_catalogue(recommender: Recommender) -> None:
    n = recommender.n_items
    history = some_history(recommender)
    whatif = api.whatif(recommender, history, [], k=n + 5, exclude_seen=False)
    assert sorted(whatif.before) == sorted(recommender.item_ids) == sorted(whatif.after)
    actions = api.influential_actions(recommender, history, candidates=10**6, k=n + 5, top=3)
    assert actions.candidates == n * len(recommender.behavior_index)
    assert len(actions.actions) == 3
    explained = api.explain(recommender, history, k=n + 5, exclude_seen=False)
    assert len(explained.recommendations) == n and explained.k == n
    last = explained.recommendations[-1]  # the margin of the last item is still finite
    assert np.isfinite(last.value) and all(np.isfinite(e.effect) for e in last.events)
    unseen = n - len(set(history.items.tolist()))  # by default, the items not in the history
    explained = api.explain(recommender, history, k=n + 5)
    assert len(explained.recommendations) == unseen and explained.k == unseen
    last = explained.recommendations[-1]  # a margin to an unseen item, finite too
    assert np.isfinite(last.value) and all(np.isfinite(e.effect) for e in last.events)


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"item": "i1", "timestamp": "yesterday"}, "timestamp"),
        ({"item": "i1", "timestamp": float("nan")}, "timestamp"),
        ({"item": "i1", "timestamp": 10**30}, "timestamp"),
        ({"item": "i1", "timestamp": 1.5}, "timestamp"),
        ({"item": "i1", "value": "high"}, "value"),
        ({"item": "i1", "value": 1e39}, "value"),
        ({"item": "i1", "value": 3e38}, "value"),
        ({"item": "i1", "timestamp": -1}, "timestamp"),
        ({"item": "i1", "value": float("-inf")}, "value"),
    ],
)
def test_bad_event_fields_name_the_event_and_field(
    recommender: Recommender, record: dict, field: str
) -> None:
    records = [{"item": "i2"}, record]
    with pytest.raises(InputError, match=rf"history event 1: {field}"):
        recommender.history_from_records(records)


def test_good_event_fields_are_kept(recommender: Recommender) -> None:
    history, unknown = recommender.history_from_records(
        [
            {"item": "i1", "timestamp": 1_700_000_000, "value": 3.5},
            {"item": "i2", "timestamp": 1_700_000_060.0, "value": None, "behavior": None},
            {"item": "i3", "timestamp": None},  # the previous event's time, not 1970
        ]
    )
    assert unknown == []
    assert history.timestamps.tolist() == [1_700_000_000, 1_700_000_060, 1_700_000_060]
    assert history.values.tolist() == [3.5, 0.0, 0.0]
    default = next(iter(recommender.behavior_index.values()))  # a null behaviour: the default
    assert history.behaviors.tolist()[1] == default
    untimed, _ = recommender.history_from_records([{"item": "i1"}, {"item": "i2"}])
    assert untimed.timestamps.tolist() == [0, 1]  # no times at all: positions, as before


def test_a_huge_time_is_shown_short(recommender: Recommender) -> None:
    with pytest.raises(InputError, match=r"got 1e\+300$"):
        recommender.history_from_records([{"item": "i1", "timestamp": 1e300}])


def test_scoring_refuses_values_beyond_the_bound(recommender: Recommender) -> None:
    history = some_history(recommender, 4)
    history.values[2] = 1e20  # finite in float32, but the layer norms would square it to inf
    with pytest.raises(InputError, match="event 2: value"):
        recommender.scores([history])
