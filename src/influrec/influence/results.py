"""The answers of the influence questions (:mod:`influrec.influence.api`), as typed results.

Items, behaviours and users are the dataset's ids (strings); positions index the history given
(0 = oldest event). Effects and values are in the unit of the measurement explained (a score
difference for ``margin`` and ``score``, nats for ``logp``, places for ``rank``).

The same models are the bodies of the HTTP answers (:mod:`influrec.serving.schemas` extends
them) and, through :meth:`Result.to_dict`, the JSON the CLI writes.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Result(BaseModel):
    """Base of the results: frozen, no unknown fields; ``to_dict`` is the one way they become
    plain JSON values."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values (lists, dicts, floats...) with the field names: the JSON output."""
        return self.model_dump(by_alias=True)


TITLE = "the item's title or name, when the dataset's item table has one"
SEEN = (
    "true: the items of the history are neither recommended nor ranked by the measurements "
    "(the default); false: they are ranked like any other item"
)


def missing(value: object) -> bool:
    """Optional details only some methods give are left out of the output when absent."""
    return value is None


class EventEffect(Result):
    position: int = Field(description="index of the event in the history (0 = oldest)")
    item: str
    title: str | None = Field(None, exclude_if=missing, description=TITLE)
    behavior: str
    timestamp: int = Field(description="epoch seconds")
    effect: float = Field(description="positive: the event pushes the measurement up")
    standard_error: float | None = Field(
        None,
        exclude_if=missing,
        description="shapley: standard error of the effect over the permutation pairs (absent "
        "with a single pair)",
    )


class ItemExplanation(Result):
    """One recommended item and the effect of every event the model sees on its measurement."""

    rank: int
    item: str
    title: str | None = Field(None, exclude_if=missing, description=TITLE)
    score: float
    measurement: str = Field(description="what is explained, e.g. rank margin(i7, top 10)")
    value: float = Field(description="the measurement on the whole history")
    events: list[EventEffect] = Field(description="the events the model sees, oldest first")
    steps: int | None = Field(None, exclude_if=missing, description="ig: interpolation steps")
    baseline_value: float | None = Field(
        None, exclude_if=missing, description="ig: the measurement at the baseline"
    )
    completeness_gap: float | None = Field(
        None, exclude_if=missing, description="ig: |sum of effects - (value - baseline_value)|"
    )
    permutations: int | None = Field(
        None, exclude_if=missing, description="shapley: permutations sampled"
    )
    note: str | None = Field(
        None, exclude_if=missing, description="attention: a diagnostic, not a causal effect"
    )
    sentence: str | None = Field(
        None,
        exclude_if=missing,
        description="the explanation in plain words: the events that push the item up most, "
        "then those that pull it down (influence.sentences.because)",
    )


class ExplainResult(Result):
    """:func:`~influrec.influence.api.explain`: each top item with every event's effect."""

    method: str
    measure: str
    k: int = Field(description="the k used: at most the number of items in the catalogue")
    recommendations: list[ItemExplanation] = Field(
        description="each top item with rank, score, measurement, value and every event's effect"
    )
    note: str | None = None
    unit: str | None = Field(
        None, exclude_if=missing, description="what one point of an effect is, in words"
    )
    history_events: int | None = Field(
        None,
        exclude_if=missing,
        description="events in the history given; the model sees the most recent of them "
        "(those listed under each item)",
    )
    exclude_seen: bool = Field(True, description=SEEN)


class GroupEffect(Result):
    group: str = Field(description="a behaviour type or a time window")
    events: int = Field(description="events in the group")
    leave_group_out: float = Field(description="measurement drop when the group is removed")
    shapley: float = Field(description="exact Shapley value of the group")


class ItemGroupExplanation(Result):
    rank: int
    item: str
    title: str | None = Field(None, exclude_if=missing, description=TITLE)
    value: float = Field(description="the measurement on the whole history")
    empty_value: float = Field(description="the measurement with no events")
    groups: list[GroupEffect]


class GroupExplainResult(Result):
    """:func:`~influrec.influence.api.explain_groups`: effects of whole groups of events."""

    by: str = Field(description="behavior or time")
    measure: str
    k: int
    recommendations: list[ItemGroupExplanation]
    exclude_seen: bool = Field(True, description=SEEN)


class RemovedEvent(Result):
    position: int
    item: str
    title: str | None = Field(None, exclude_if=missing, description=TITLE)


class CounterfactualResult(Result):
    """:func:`~influrec.influence.api.counterfactual`: events whose removal drops the item."""

    item: str
    title: str | None = Field(None, exclude_if=missing, description=TITLE)
    k: int
    removed: list[int] = Field(description="positions of the removed events")
    removed_events: list[RemovedEvent]
    size: int
    valid: bool = Field(description="verified by re-scoring: the item left the top k")
    original_rank: int
    new_rank: int | None
    evaluated: int = Field(description="edited histories scored")
    seconds: float
    reason: str


class RankChange(Result):
    before: int
    after: int


class WhatIfResult(Result):
    """:func:`~influrec.influence.api.whatif`: the top k before and after the edits."""

    before: list[str]
    after: list[str]
    rank_changes: dict[str, RankChange] = Field(
        description="rank of each listed item before and after the edits"
    )
    jaccard: float
    rbo: float = Field(description="rank-biased overlap (p = 0.9)")
    titles: dict[str, str] | None = Field(
        None, exclude_if=missing, description="title or name of each listed item that has one"
    )


class Action(Result):
    item: str
    title: str | None = Field(None, exclude_if=missing, description=TITLE)
    behavior: str
    churn: float = Field(description="1 - Jaccard of the top k now and after the action")
    rank_movement: float
    new_top: list[str]


class InfluentialActionsResult(Result):
    """:func:`~influrec.influence.api.influential_actions`: the most influential next actions."""

    candidates: int = Field(description="actions tried (items x behaviours)")
    actions: list[Action]


class PlantedCause(Result):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    precision_at_1: float = Field(
        alias="precision@1", description="share of cases whose top event is the cause"
    )
    cases: int = Field(description="caused events whose cause lies in the model's window")


class FaithfulnessReport(Result):
    """:func:`~influrec.influence.api.faithfulness_report`."""

    users: int
    seed: int
    explained: str
    metrics: dict[str, dict[str, float]] = Field(description="method -> metric -> mean value")
    planted_cause: dict[str, PlantedCause] | None = Field(
        None,
        exclude_if=missing,
        description="synthetic data only: method -> recovery of the planted cause",
    )


class FaithfulnessCurves(Result):
    """:func:`~influrec.influence.api.faithfulness_curves`: p(j) of the explained item j as
    each method's most supportive events are deleted (or, alone, inserted), share by share."""

    users: int = Field(description="users averaged over (those with at least 2 events)")
    seed: int
    explained: str
    shares: list[float] = Field(description="share of the model's window deleted or inserted")
    deletion: dict[str, list[float]] = Field(
        description="method -> mean p(j) after deleting each share of the window (lower: "
        "more faithful); the mean over shares is DEL-AUC"
    )
    insertion: dict[str, list[float]] = Field(
        description="method -> mean p(j) with only each share of the window kept (higher: "
        "more faithful); the mean over shares is INS-AUC"
    )
