"""Explanations rank what is recommended: without the history's items by default, so the
measurements (margin, rank, log p) are those of the list among unseen items."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from influrec.data.history import History
from influrec.errors import InputError
from influrec.inference import Recommender
from influrec.influence import api
from influrec.influence.measurement import WithoutItems, measurement_for


def longest_history(rec: Recommender) -> History:
    return rec.user_history(max(rec.user_index, key=lambda u: len(rec.user_history(u))))


def test_the_margin_is_to_the_first_unseen_item_outside_the_top_k(
    recommender: Recommender,
) -> None:
    history = longest_history(recommender)
    seen = set(history.items.tolist())
    scores = recommender.scores([history])[0].double().numpy()
    unseen = sorted((i for i in range(1, recommender.n_items + 1) if i not in seen),
                    key=lambda i: -scores[i])  # fmt: skip
    k = 3
    result = api.explain(recommender, history, k=k)
    assert [r.item for r in result.recommendations] == [
        recommender.item_ids[i - 1] for i in unseen[:k]
    ]
    for r, item in zip(result.recommendations, unseen, strict=False):
        assert r.value == pytest.approx(scores[item] - scores[unseen[k]], abs=1e-5)
        assert r.item not in {e.item for e in r.events}
    included = api.explain(recommender, history, k=k, exclude_seen=False)
    everyone = np.argsort(-scores[1:], kind="stable")[: k + 1] + 1
    assert included.recommendations[0].value == pytest.approx(
        scores[everyone[0]] - scores[everyone[k]], abs=1e-5
    )
    assert included.exclude_seen is False and result.exclude_seen is True


def test_each_method_and_the_groups_take_the_same_choice(recommender: Recommender) -> None:
    history = longest_history(recommender)
    seen = {recommender.item_ids[i - 1] for i in history.items.tolist()}
    for method in ("loo", "ig", "shapley"):
        result = api.explain(recommender, history, k=2, method=method)
        assert not seen & {r.item for r in result.recommendations}
        assert all(np.isfinite(e.effect) for r in result.recommendations for e in r.events)
    ig = api.explain(recommender, history, k=1, method="ig").recommendations[0]
    assert ig.completeness_gap is not None and ig.completeness_gap < 0.05 * (
        abs(ig.value - (ig.baseline_value or 0.0)) + 1e-3
    )  # integrated gradients stay complete on the ranking without the seen items
    groups = api.explain_groups(recommender, history, k=2)
    explained = api.explain(recommender, history, k=2)
    assert [r.item for r in groups.recommendations] == [r.item for r in explained.recommendations]
    assert [r.value for r in groups.recommendations] == pytest.approx(
        [r.value for r in explained.recommendations], abs=1e-5
    )
    assert groups.exclude_seen is True


def test_excluded_items_drop_out_of_every_measure() -> None:
    scores = torch.tensor([[float("-inf"), 5.0, 4.0, 3.0, 2.0, 1.0]])
    margin = measurement_for("margin", 3, 1, excluded=(1, 2))
    assert isinstance(margin, WithoutItems) and margin.name == "rank margin(item 3, top 1)"
    assert margin(scores).item() == pytest.approx(1.0)  # 3.0 - 2.0: items 1 and 2 are out
    assert measurement_for("margin", 3, 1)(scores).item() == pytest.approx(-2.0)
    assert measurement_for("rank", 3, 1, excluded=(1, 2))(scores).item() < -0.5  # rank 1
    logp = measurement_for("logp", 3, 1, excluded=(1, 2))(scores).item()
    assert logp == pytest.approx(float(torch.log_softmax(torch.tensor([3.0, 2.0, 1.0]), 0)[0]))


def test_a_history_of_every_item_leaves_nothing_new(recommender: Recommender) -> None:
    records = [{"item": item} for item in recommender.item_ids]
    history, _ = recommender.history_from_records(records)
    with pytest.raises(InputError, match="no item is left to recommend") as caught:
        api.explain(recommender, history, k=3)
    assert caught.value.setting == "exclude_seen"
    assert len(api.explain(recommender, history, k=3, exclude_seen=False).recommendations) == 3
