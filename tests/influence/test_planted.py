"""Planted-cause checks: the pairs come from the ground truth, one case per user, and the
one-user answer agrees with the many-user count and with direct re-scoring."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from influrec.errors import InputError
from influrec.inference import Recommender
from influrec.influence.engine import Scorer, without
from influrec.influence.faithfulness import planted_cause_recovery
from influrec.influence.planted import (
    first_user_with_planted_cause,
    planted_cause_of_user,
    planted_cause_rate,
    planted_pairs,
    visible_cases,
)
from tests_helpers import one_torch_thread


def test_pairs_are_the_ground_truth_in_event_order(recommender: Recommender) -> None:
    truth = recommender.dataset.ground_truth
    assert truth is not None
    caused, causes = planted_pairs(recommender.dataset)
    assert len(caused) == truth.num_rows > 50 and (np.diff(caused) > 0).all()
    rows = recommender.dataset.column("row")
    expected = dict(
        zip(truth.column("row").to_pylist(), truth.column("cause_row").to_pylist(), strict=True)
    )
    assert {int(rows[e]): int(rows[c]) for e, c in zip(caused, causes, strict=True)} == expected
    data = recommender.data
    assert (data.user[caused] == data.user[causes]).all() and (causes < caused).all()
    items = [recommender.item_ids[i - 1] for i in data.item[caused]]
    by_row = dict(
        zip(truth.column("row").to_pylist(), truth.column("item_id").to_pylist(), strict=True)
    )
    assert items == [by_row[int(rows[e])] for e in caused]


def test_no_ground_truth_is_an_input_error(recommender: Recommender) -> None:
    real = dataclasses.replace(recommender.dataset, ground_truth=None)
    with pytest.raises(InputError, match="only synthetic data"):
        planted_pairs(real)


def test_one_case_per_user_the_last_whose_cause_is_seen(recommender: Recommender) -> None:
    data = recommender.data
    caused, causes = planted_pairs(recommender.dataset)
    for max_len in (1, 3, 16):
        cases = visible_cases(data, caused, causes, max_len=max_len)
        expected: dict[int, int] = {}
        for index, (event, cause) in enumerate(zip(caused, causes, strict=True)):
            if event - cause <= max_len:
                expected[int(data.user[event])] = index  # later ones overwrite earlier ones
        assert cases.tolist() == [expected[u] for u in sorted(expected)]
    dataset = recommender.dataset
    first = first_user_with_planted_cause(dataset, max_len=16)
    user_idx = int(data.user[caused[visible_cases(data, caused, causes, max_len=16)[0]]])
    assert first == dataset.users.column("user_id")[user_idx - 1].as_py()
    assert first_user_with_planted_cause(dataset, max_len=0) is None


def test_one_user_check_matches_the_truth_and_rescoring(recommender: Recommender) -> None:
    data, truth = recommender.data, recommender.dataset.ground_truth
    assert truth is not None
    user = first_user_with_planted_cause(recommender.dataset, max_len=16)
    assert user is not None
    with one_torch_thread():
        case = planted_cause_of_user(recommender, user)
        assert case is not None
        start = int(data.user_start[recommender.user_index[user]])
        event, cause = start + case.caused.position, start + case.cause.position
        row = {r: i for i, r in enumerate(truth.column("row").to_pylist())}[
            int(recommender.dataset.column("row")[event])
        ]
        assert truth.column("cause_row")[row].as_py() == recommender.dataset.column("row")[cause]
        assert case.cause.item == truth.column("cause_item_id")[row].as_py()
        assert case.cause.behavior == truth.column("cause_behavior")[row].as_py()
        assert case.events_seen == min(case.caused.position, 16)
        scorer = Scorer(recommender.model)
        found = planted_cause_recovery(scorer, data, np.array([event]), np.array([cause]), ["loo"])
        assert found["loo"]["precision@1"] == float(case.recovered)
        history = recommender.user_history(user)
        before = type(history)(*(a[: case.caused.position] for a in dataclasses.astuple(history)))
        n = len(before)
        scores = scorer.scores(before, [np.arange(n), without(n, [case.found.position])])
        logp = torch.log_softmax(scores.float(), -1)[:, data.item[event]]
        assert case.effect == pytest.approx(float(logp[0] - logp[1]), abs=1e-4)


def test_users_without_a_case_get_none(recommender: Recommender) -> None:
    assert planted_cause_of_user(recommender, "no-such-user") is None
    caused, causes = planted_pairs(recommender.dataset)
    cases = visible_cases(recommender.data, caused, causes, max_len=16)
    with_case = set(recommender.data.user[caused[cases]].tolist())
    without_case = [u for u, i in recommender.user_index.items() if i not in with_case]
    assert without_case, "the fixture should have a user with no visible planted cause"
    assert planted_cause_of_user(recommender, without_case[0]) is None


def test_the_rate_over_all_users_is_the_recovery_of_their_cases(recommender: Recommender) -> None:
    data = recommender.data
    caused, causes = planted_pairs(recommender.dataset)
    cases = visible_cases(data, caused, causes, max_len=16)
    with one_torch_thread():
        rate = planted_cause_rate(recommender, users=10_000)
        found = planted_cause_recovery(
            Scorer(recommender.model), data, caused[cases], causes[cases], ["loo"]
        )["loo"]
        assert planted_cause_rate(recommender, users=5).users == 5
    assert rate.users == found["cases"] == len(cases)
    assert rate.recovered == found["precision@1"]
    seen = [min(int(e - data.user_start[data.user[e]]), 16) for e in caused[cases]]
    assert rate.chance == pytest.approx(np.mean([1 / s for s in seen]))
