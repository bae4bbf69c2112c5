"""Robust ranking: each item's worst log-probability over single deletions of low-intent events,
checked against re-scoring each deletion as a history of its own."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from influrec.data.history import History
from influrec.errors import InputError
from influrec.inference import Recommender
from influrec.influence.engine import Scorer
from influrec.influence.robust import (
    deletable,
    low_intent_codes,
    robust_log_probabilities,
    robust_recommend,
)
from tests_helpers import drop_events, rescore_without, user_history


def brute_force(rec: Recommender, history: History, positions: np.ndarray) -> torch.Tensor:
    rows = [rec.scores([history])[0]] + [rescore_without(rec, history, [int(p)]) for p in positions]
    return torch.log_softmax(torch.stack(rows), dim=-1).amin(dim=0)


def test_worst_case_over_deletions_equals_rescoring_each(recommender: Recommender) -> None:
    history = user_history(recommender, 12)
    positions = deletable(history, None, recent=5)
    assert positions.tolist() == [7, 8, 9, 10, 11]
    got = robust_log_probabilities(Scorer(recommender.model), history, recent=5)
    torch.testing.assert_close(got, brute_force(recommender, history, positions))
    plain = torch.log_softmax(recommender.scores([history])[0], dim=-1)
    assert bool((got[1:] <= plain[1:] + 1e-6).all())
    # some item loses more than rounding: one of these events carried it
    assert float((plain[1:] - got[1:]).max()) > 1e-3


def test_only_the_named_behaviours_are_deleted(recommender: Recommender) -> None:
    history = user_history(recommender, 16)
    view = low_intent_codes(recommender, ["view"])
    assert view is not None
    positions = deletable(history, view, recent=None)
    assert len(positions) and all(history.behaviors[p] == view[0] for p in positions)
    assert len(positions) < len(history)  # the user has other behaviours too
    got = robust_log_probabilities(Scorer(recommender.model), history, low_intent=view, recent=None)
    torch.testing.assert_close(got, brute_force(recommender, history, positions))


def test_items_carried_by_one_event_sink_further_than_the_others(recommender: Recommender) -> None:
    """Over users, a top-5 item that leaves the top 5 when one of the last 3 events goes
    (found by re-scoring) drops further under robust ranking than the top-5 items that no
    such deletion moves out."""
    shifts: dict[bool, list[int]] = {True: [], False: []}
    n = recommender.n_items
    for user in list(recommender.user_index)[:40]:
        history = recommender.user_history(user)
        plain = [r.item_idx for r in recommender.recommend(history, k=n, exclude_seen=False)]
        robust = [
            r.item_idx
            for r in robust_recommend(recommender, history, k=n, exclude_seen=False, recent=3)
        ]
        fragile: set[int] = set()
        for p in deletable(history, None, recent=3):
            after = rescore_without(recommender, history, [int(p)])
            fragile |= set(plain[:5]) - set(torch.topk(after[1:], 5).indices.add(1).tolist())
        for item in plain[:5]:
            shifts[item in fragile].append(robust.index(item) - plain.index(item))
    assert len(shifts[True]) >= 10 and len(shifts[False]) >= 10
    assert np.mean(shifts[True]) > np.mean(shifts[False]) + 0.5


def test_bad_options_and_short_histories(recommender: Recommender) -> None:
    history = user_history(recommender, 6)
    with pytest.raises(InputError, match=r"unknown low-intent behaviour 'click'.*view"):
        robust_recommend(recommender, history, low_intent=["click"])
    with pytest.raises(InputError, match="recent must be at least 1"):
        robust_recommend(recommender, history, recent=0)
    empty = drop_events(history, range(6))
    assert robust_recommend(recommender, empty, k=3) == recommender.popular(k=3)
    one = drop_events(history, range(5))  # the only event is never deleted
    assert deletable(one, None, recent=None).size == 0
    assert [r.item_idx for r in robust_recommend(recommender, one, k=4)] == [
        r.item_idx for r in recommender.recommend(one, k=4)
    ]
