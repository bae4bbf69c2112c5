from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from test_attribution import user_history

from influrec.errors import InputError
from influrec.inference import History, Recommender
from influrec.influence.counterfactual import (
    Edit,
    apply_edits,
    counterfactual_set,
    influential_actions,
    rank_biased_overlap,
    rank_of,
    what_if,
)
from influrec.influence.engine import Scorer, without


def rank_without(rec: Recommender, history: History, removed: list[int], item: int) -> int:
    keep = without(len(history), removed)
    edited = History(
        history.items[keep], history.behaviors[keep], history.timestamps[keep], history.values[keep]
    )
    return rank_of(rec.scores([edited])[0], item)


def test_counterfactual_sets_are_valid_and_minimal_under_single_removals(
    recommender: Recommender,
) -> None:
    scorer = Scorer(recommender.model)
    found = 0
    for n in (8, 12, 16):
        history = user_history(recommender, n)
        top = torch.topk(recommender.scores([history])[0], 10).indices.tolist()
        for item in top[:5]:
            result = counterfactual_set(scorer, history, item, k=10)
            if not result.valid:
                assert result.removed == [] and result.reason
                continue
            found += 1
            assert result.original_rank <= 10 < result.new_rank
            assert (
                rank_without(recommender, history, result.removed, item) == result.new_rank
            )  # verified
            for drop in result.removed:  # no event of the set is superfluous
                smaller = [p for p in result.removed if p != drop]
                assert rank_without(recommender, history, smaller, item) <= 10
    assert found > 0


def test_counterfactual_for_an_item_outside_the_top_k(recommender: Recommender) -> None:
    history = user_history(recommender, 10)
    worst = int(torch.argmin(recommender.scores([history])[0][1:])) + 1
    result = counterfactual_set(Scorer(recommender.model), history, worst, k=10)
    assert result.valid and result.size == 0 and result.reason == "not in the top k"


def test_what_if_edits(recommender: Recommender) -> None:
    history = user_history(recommender, 10)
    scorer = Scorer(recommender.model)
    result = what_if(scorer, history, [Edit("remove", position=3)], k=10)
    expected = torch.topk(
        recommender.scores([apply_edits(history, [Edit("remove", position=3)])])[0], 10
    )
    assert result.after == expected.indices.tolist()
    assert 0.0 <= result.jaccard <= 1.0 and 0.0 <= result.rbo <= 1.0
    added = apply_edits(
        history, [Edit("add", item=5, behavior=1), Edit("replace", position=0, item=7, behavior=2)]
    )
    assert len(added) == 11 and added.items[-1] == 5 and added.items[0] == 7
    assert added.timestamps[-1] == history.timestamps[-1] + 1
    with pytest.raises(InputError, match="not in the history"):
        apply_edits(history, [Edit("remove", position=99)])
    unchanged = what_if(scorer, history, [], k=10)
    assert unchanged.jaccard == 1.0 and np.isclose(unchanged.rbo, 1.0)


def test_rank_biased_overlap_extremes() -> None:
    assert np.isclose(rank_biased_overlap([1, 2, 3], [1, 2, 3]), 1.0)
    assert rank_biased_overlap([1, 2, 3], [4, 5, 6]) == 0.0
    assert (
        0
        < rank_biased_overlap([1, 2, 3], [1, 5, 6])
        < rank_biased_overlap([1, 2, 3], [1, 2, 6])
        < 1
    )


def test_influential_actions_agree_with_what_if(recommender: Recommender) -> None:
    history = user_history(recommender, 10)
    scorer = Scorer(recommender.model)
    actions = influential_actions(
        scorer, history, behaviors=[1, 2, 3, 4], candidates=20, k=10, top=5
    )
    assert len(actions) == 5
    assert all(a["churn"] >= b["churn"] for a, b in itertools.pairwise(actions))
    best = actions[0]
    when = int(history.timestamps[-1]) + 60
    check = what_if(
        scorer,
        history,
        [Edit("add", item=best["item"], behavior=best["behavior"], timestamp=when)],
        k=10,
    )
    assert check.after == best["new_top"]
    assert np.isclose(1 - check.jaccard, best["churn"])
