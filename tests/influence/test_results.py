"""Typed results: what the influence questions return, what --json prints, what HTTP serves."""

from __future__ import annotations

import json
import math

import pytest

from influrec.data.history import History
from influrec.errors import InputError
from influrec.inference import Recommender
from influrec.influence import api
from influrec.influence.attribution import Explanation, leave_one_out, leave_one_out_many
from influrec.influence.engine import Scorer
from influrec.influence.measurement import MEASURES, Measurement, RankMargin, measurement_for
from influrec.influence.methods import METHODS, Method, run_method
from influrec.influence.results import (
    ExplainResult,
    FaithfulnessReport,
    InfluentialActionsResult,
    ItemExplanation,
    WhatIfResult,
)
from influrec.influence.sentences import Effect, because
from influrec.serving import schemas


def some_history(rec: Recommender, n: int = 8) -> History:
    return rec.history_from_records([{"item": f"i{i + 1}"} for i in range(n)])[0]


def test_explain_is_typed_and_its_dict_keeps_the_json_field_names(
    recommender: Recommender,
) -> None:
    history = some_history(recommender)
    result = api.explain(recommender, history, k=2, method="loo")
    assert isinstance(result, ExplainResult) and result.k == 2
    items = recommender.dataset.items
    ids, categories = items["item_id"].to_pylist(), items["category"].to_pylist()
    category = dict(zip(ids, categories, strict=True))[result.recommendations[0].item]
    first = result.recommendations[0]
    assert [e.position for e in first.events] == list(range(len(history)))
    out = result.to_dict()
    fields = ["method", "measure", "k", "recommendations", "note", "unit", "history_events"]
    assert list(out) == [*fields, "exclude_seen"] and out["history_events"] == len(history)
    assert out["exclude_seen"] is True  # the one default: seen items are not recommended
    assert out["unit"] == MEASURES["margin"].unit
    # loo has no method details: none of the optional fields appear, as before; items of
    # synthetic data have no titles, so no title field either; the sentence comes last
    assert list(out["recommendations"][0]) == [
        "rank",
        "item",
        "score",
        "measurement",
        "value",
        "events",
        "sentence",
    ]
    named = [Effect(recommender.item_label(e.item), e.behavior, e.effect) for e in first.events]
    assert first.sentence == because(recommender.item_label(first.item), named)
    assert recommender.item_label(first.item) == f"item {first.item} (category {category})"
    assert list(out["recommendations"][0]["events"][0]) == [
        "position",
        "item",
        "behavior",
        "timestamp",
        "effect",
    ]
    assert out["recommendations"][0]["events"][0]["effect"] == first.events[0].effect
    json.dumps(out)  # plain values only


def test_method_details_appear_only_for_the_methods_that_give_them(
    recommender: Recommender,
) -> None:
    history = some_history(recommender)
    ig = api.explain(recommender, history, k=1, method="ig").to_dict()["recommendations"][0]
    assert {"steps", "baseline_value", "completeness_gap"} <= set(ig) and "note" not in ig
    shap = api.explain(recommender, history, k=1, method="shapley").recommendations[0]
    assert shap.permutations is not None and shap.permutations > 0
    assert "stderr" not in shap.to_dict()  # one standard error per event instead
    errors = [e.standard_error for e in shap.events]
    assert all(se is not None and 0 <= se < float("inf") for se in errors)
    assert len(set(errors)) > 1  # each estimate has its own
    assert "standard_error" not in ig["events"][0]  # only Shapley's effects are estimates
    attention = api.explain(recommender, history, k=1, method="attention")
    assert attention.note and attention.recommendations[0].note


def test_results_refuse_unknown_fields() -> None:
    with pytest.raises(ValueError, match="extra"):
        ItemExplanation(
            rank=1, item="i1", score=0.0, measurement="m", value=0.0, events=[], stderr=[0.1]
        )


def test_planted_cause_is_left_out_when_there_is_no_ground_truth() -> None:
    base = {"users": 2, "seed": 0, "explained": "top-1", "metrics": {"loo": {"DEL@1": 0.5}}}
    assert "planted_cause" not in FaithfulnessReport.model_validate(base).to_dict()
    found = {"loo": {"precision@1": 0.75, "cases": 4}}
    report = FaithfulnessReport.model_validate({**base, "planted_cause": found})
    assert report.planted_cause is not None and report.planted_cause["loo"].precision_at_1 == 0.75
    assert report.to_dict()["planted_cause"] == found


def test_the_http_answers_are_the_library_results_with_the_user_in_front() -> None:
    for served, result in [
        (schemas.Explanations, ExplainResult),
        (schemas.WhatIf, WhatIfResult),
        (schemas.InfluentialActions, InfluentialActionsResult),
    ]:
        assert issubclass(served, result)
        fields = list(served.model_fields)
        assert fields[:3] == ["user", "cold_start", "history"]
        assert fields[-len(result.model_fields) :] == list(result.model_fields)


def test_the_measure_registry_builds_each_measurement() -> None:
    assert measurement_for("margin", 3, 5) == RankMargin(3, 5)
    assert {m: measurement_for(m, 3, 5).name for m in MEASURES} == {
        "margin": "rank margin(item 3, top 5)",
        "score": "score(item 3)",
        "logp": "log p(item 3)",
        "rank": "rank(item 3)",
    }
    with pytest.raises(InputError, match="unknown measure 'nope'; choose one of margin, score"):
        measurement_for("nope", 3, 5)


def test_run_method_calls_the_registered_function(recommender: Recommender) -> None:
    history = some_history(recommender)
    scorer = Scorer(recommender.model)
    measurement = RankMargin(1, 3)
    direct = leave_one_out(scorer, history, measurement)
    registered = run_method("loo", scorer, history, measurement)
    assert registered.effects.tolist() == direct.effects.tolist()
    seeded = [run_method("random", scorer, history, measurement, seed=s) for s in (1, 1, 2)]
    assert seeded[0].effects.tolist() == seeded[1].effects.tolist() != seeded[2].effects.tolist()
    assert math.isnan(seeded[0].value)
    assert [m for m in METHODS if not METHODS[m].uses_measurement] == ["attention", "random"]


def test_explain_takes_the_batched_form_and_the_note_from_the_registry(
    recommender: Recommender, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def many(scorer: Scorer, history: History, measurements: list[Measurement]) -> list:
        calls.append(len(measurements))
        return leave_one_out_many(scorer, history, measurements)

    def one_at_a_time(*args: object) -> Explanation:
        raise AssertionError("explain must use the batched form when a method has one")

    entry = Method("batched", one_at_a_time, "test entry", many=many, note="a test note")
    monkeypatch.setitem(METHODS, "batched", entry)
    history = some_history(recommender)
    result = api.explain(recommender, history, k=3, method="batched")
    assert calls == [3] and result.note == "a test note"
    loo = api.explain(recommender, history, k=3, method="loo")
    assert [r.events for r in result.recommendations] == [r.events for r in loo.recommendations]
    assert loo.note is None
    assert api.explain(recommender, history, k=1, method="attention").note == (
        "attention is a diagnostic, not a causal effect"
    )


def test_library_messages_name_no_command_line_flag(recommender: Recommender) -> None:
    history = some_history(recommender)
    message = r"^groups must be one of behavior, time, category, got 'day'$"
    with pytest.raises(InputError, match=message):
        api.explain_groups(recommender, history, by="day")
    with pytest.raises(InputError, match=r"^unknown user 'nobody': not in the run's dataset$"):
        recommender.user_history("nobody")
