"""The influence questions a user asks, by name, over a loaded :class:`Recommender`.

Each returns a typed result of :mod:`influrec.influence.results` (the service serves the same
types; ``result.to_dict()`` is the JSON the CLI prints).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from influrec.data.history import History
from influrec.errors import InputError
from influrec.inference import EXCLUDE_SEEN, Recommendation, Recommender, clamp_k
from influrec.influence.attribution import Explanation
from influrec.influence.counterfactual import (
    Edit,
    counterfactual_set,
    what_if,
)
from influrec.influence.counterfactual import (
    influential_actions as _actions,
)
from influrec.influence.engine import Scorer
from influrec.influence.measurement import MEASURES, Measurement, measurement_for
from influrec.influence.methods import METHODS, run_method_many
from influrec.influence.results import (
    Action,
    CounterfactualResult,
    EventEffect,
    ExplainResult,
    FaithfulnessCurves,
    FaithfulnessReport,
    GroupEffect,
    GroupExplainResult,
    InfluentialActionsResult,
    ItemExplanation,
    ItemGroupExplanation,
    RankChange,
    RemovedEvent,
    WhatIfResult,
)
from influrec.influence.sentences import Effect, because


def _events(rec: Recommender, history: History, explanation: Explanation) -> list[EventEffect]:
    # plain Python values, converted once per column (this runs for every explained item)
    positions = explanation.positions
    errors = explanation.details.get("stderr") or [None] * len(positions)  # shapley only
    items = [rec.item_ids[i - 1] for i in history.items[positions].tolist()]
    behaviors = [rec.dataset.behaviors[b] for b in history.behaviors[positions].tolist()]
    columns = zip(
        positions.tolist(),
        items,
        behaviors,
        history.timestamps[positions].tolist(),
        explanation.effects.tolist(),
        errors,
        strict=True,
    )
    return [
        EventEffect(
            position=p,
            item=i,
            title=rec.item_title(i),
            behavior=b,
            timestamp=t,
            effect=e,
            standard_error=se if se == se else None,  # NaN: one pair, no spread to measure
        )
        for p, i, b, t, e, se in columns
    ]


def sentence(rec: Recommender, item: str, events: Sequence[EventEffect]) -> str:
    """:func:`~influrec.influence.sentences.because` with items named by their titles."""
    named = [Effect(rec.item_label(e.item), e.behavior, e.effect) for e in events]
    return because(rec.item_label(item), named)


def top_to_explain(
    rec: Recommender, history: History, *, k: int, measure: str, exclude_seen: bool
) -> tuple[int, list[Recommendation], list[Measurement]]:
    """The k used, the top ``k`` items after ``history`` and the measurement of each.

    With ``exclude_seen`` the items of the history are neither recommended nor ranked by the
    measurements (:class:`~influrec.influence.measurement.WithoutItems`): a margin is to the
    first unseen item outside the top k, so an explanation never names the recommended item
    among its own supporters. Raises InputError for an empty history, or when the history
    holds every item and seen items are excluded.
    """
    if len(history) == 0:
        raise InputError("the history is empty: there is nothing to explain")
    excluded = tuple(np.unique(history.items).tolist()) if exclude_seen else ()
    left = rec.n_items - len(excluded)
    if left < 1:
        raise InputError(
            "every item of the catalogue is in the history, and seen items are excluded: "
            "no item is left to recommend; include seen items",
            setting="exclude_seen",
        )
    k = clamp_k(k, left)
    recommendations = rec.recommend(history, k=k, exclude_seen=exclude_seen)
    # a margin is to the first item outside the top k: among the unseen, one must be left over
    measured_k = max(1, min(k, left - 1)) if excluded else k
    measurements = [
        measurement_for(measure, r.item_idx, measured_k, excluded=excluded) for r in recommendations
    ]
    return k, recommendations, measurements


def explain(
    rec: Recommender,
    history: History,
    *,
    k: int = 10,
    method: str = "loo",
    measure: str = "margin",
    exclude_seen: bool = EXCLUDE_SEEN,
    progress: bool | None = None,
) -> ExplainResult:
    """For each of the top ``k`` items: its score, rank and every past event's effect on it.

    The top ``k`` leave out the items of the history unless ``exclude_seen`` is False (the
    one default of :data:`~influrec.inference.EXCLUDE_SEEN`, as ``Recommender.recommend``).
    ``progress``: a bar over the items for methods that explain one at a time (``None``: only
    where stderr is a terminal).
    """
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    k, recommendations, measurements = top_to_explain(
        rec, history, k=k, measure=measure, exclude_seen=exclude_seen
    )
    explanations = run_method_many(
        method, Scorer(rec.model), history, measurements, progress=progress
    )
    out = []
    for r, explanation in zip(recommendations, explanations, strict=True):
        events = _events(rec, history, explanation)
        out.append(
            ItemExplanation(
                rank=r.rank,
                item=r.item_id,
                title=rec.item_title(r.item_id),
                score=r.score,
                measurement=explanation.measurement.replace(f"item {r.item_idx}", r.item_id),
                value=explanation.value,
                events=events,
                # a diagnostic's weights are no effects: no sentence claims they cause anything
                sentence=sentence(rec, r.item_id, events) if METHODS[method].causal else None,
                **{k_: v for k_, v in explanation.details.items() if k_ != "stderr"},
            )
        )
    return ExplainResult(
        method=method,
        measure=measure,
        k=k,
        recommendations=out,
        note=METHODS[method].note,
        unit=MEASURES[measure].unit if measure in MEASURES else None,
        history_events=len(history),
        exclude_seen=exclude_seen,
    )


def item_categories(rec: Recommender) -> dict[int, str]:
    """item_idx -> category, from the first column of CATEGORY_COLUMNS the item table has
    (the same list names items in labels: influrec.data.item_names; the first value of a
    multi-valued cell, e.g. the first genre, is the item's category). InputError without one."""
    from influrec.data.item_names import CATEGORY_COLUMNS

    items = rec.dataset.items
    column = next((c for c in CATEGORY_COLUMNS if c in items.column_names), None)
    if column is None:
        present = [c for c in items.column_names if c not in ("item_idx", "item_id")]
        raise InputError(
            f"grouping by category needs an item-table column named one of "
            f"{', '.join(CATEGORY_COLUMNS)}; this dataset's item columns are "
            f"{', '.join(present) or 'none'}",
            setting="groups",
        )
    index = items.column("item_idx").to_pylist()
    cells = items.column(column).cast("string").to_pylist()
    firsts = ((i, (c or "").split("|")[0].strip()) for i, c in zip(index, cells, strict=True))
    return {
        int(i): f"{column} {value}" if column.startswith("categor") else value
        for i, value in firsts
        if value
    }


def item_index(rec: Recommender, item_id: str) -> int:
    index = rec.item_index.get(str(item_id))
    if index is None:
        raise InputError(f"unknown item {item_id!r}")
    return index


def counterfactual(
    rec: Recommender, history: History, item_id: str, *, k: int = 10
) -> CounterfactualResult:
    """The smallest set found of past events whose removal drops ``item_id`` out of the top k."""
    k = clamp_k(k, rec.n_items)
    result = counterfactual_set(Scorer(rec.model), history, item_index(rec, item_id), k=k)
    return CounterfactualResult(
        item=item_id,
        title=rec.item_title(item_id),
        k=k,
        removed=result.removed,
        removed_events=[
            RemovedEvent(
                position=p,
                item=rec.item_ids[int(history.items[p]) - 1],
                title=rec.item_title(int(history.items[p])),
            )
            for p in result.removed
        ],
        size=result.size,
        valid=result.valid,
        original_rank=result.original_rank,
        new_rank=result.new_rank,
        evaluated=result.evaluated,
        seconds=result.seconds,
        reason=result.reason,
    )


class ColdStartScorer(Scorer):
    """A :class:`Scorer` that scores an edited history with no events by the cold-start policy
    (:meth:`Recommender.cold_start_scores`, the popular items), as ``recommend`` does, instead
    of by the model's output for an empty sequence. Other histories are scored by the model."""

    def __init__(self, rec: Recommender) -> None:
        super().__init__(rec.model)
        self.cold = rec.cold_start_scores()

    def scores(self, history: History, rows: Sequence[np.ndarray]) -> torch.Tensor:
        empty = [i for i, row in enumerate(rows) if len(row) == 0]
        if not empty:
            return super().scores(history, rows)
        out = self.cold.expand(len(rows), -1).clone()
        kept = [i for i, row in enumerate(rows) if len(row)]
        if kept:
            out[kept] = super().scores(history, [rows[i] for i in kept])
        return out


def whatif(
    rec: Recommender,
    history: History,
    edits: Sequence[Edit],
    *,
    k: int = 10,
    exclude_seen: bool = EXCLUDE_SEEN,
) -> WhatIfResult:
    """New top-k after hypothetical edits, with rank changes and list churn; each list leaves
    out the items already in its history unless ``exclude_seen`` is False (the one default,
    as ``recommend``). An empty history (before or after the edits) is a cold start: the
    popular items, as ``recommend`` gives."""
    k = clamp_k(k, rec.n_items)
    result = what_if(ColdStartScorer(rec), history, edits, k=k, exclude_seen=exclude_seen)
    name = lambda i: rec.item_ids[i - 1]  # noqa: E731
    titles = {
        name(i): title
        for i in (*result.before, *result.after)
        if (title := rec.item_title(i)) is not None
    }
    return WhatIfResult(
        before=[name(i) for i in result.before],
        after=[name(i) for i in result.after],
        rank_changes={
            name(i): RankChange(before=a, after=b) for i, (a, b) in result.rank_changes.items()
        },
        jaccard=result.jaccard,
        rbo=result.rbo,
        titles=titles or None,
    )


def influential_actions(
    rec: Recommender, history: History, *, candidates: int = 100, k: int = 10, top: int = 10
) -> InfluentialActionsResult:
    """The next actions (item x behaviour) that would change this user's top k the most. From
    an empty history, today's top k and the candidates are the popular items (cold start)."""
    k = clamp_k(k, rec.n_items)
    candidates = clamp_k(candidates, rec.n_items, name="candidates")
    top = clamp_k(top, candidates * len(rec.behavior_index), name="top")
    behaviors = list(rec.behavior_index.values())
    found = _actions(
        ColdStartScorer(rec), history, behaviors=behaviors, candidates=candidates, k=k, top=top
    )
    names = rec.dataset.behaviors
    return InfluentialActionsResult(
        candidates=candidates * len(behaviors),
        actions=[
            Action(
                item=rec.item_ids[a["item"] - 1],
                title=rec.item_title(a["item"]),
                behavior=names[a["behavior"]],
                churn=a["churn"],
                rank_movement=a["rank_movement"],
                new_top=[rec.item_ids[i - 1] for i in a["new_top"]],
            )
            for a in found
        ],
    )


def effects_matrix(result: ExplainResult) -> tuple[np.ndarray, list[str], list[str]]:
    """(recommendations x events) effects of an :func:`explain` result, with labels: items by
    their titles where the item table names them, else by their ids."""
    recs = result.recommendations
    events = recs[0].events if recs else []
    matrix = np.array([[e.effect for e in r.events] for r in recs])
    return (
        matrix,
        [f"{r.rank}. {r.title or r.item}" for r in recs],
        [f"{e.title or e.item} ({e.behavior})" for e in events],
    )


def sampled_histories(rec: Recommender, users: int, rng: np.random.Generator) -> list[History]:
    """The stored histories of ``users`` users drawn by ``rng`` (each at most once)."""
    users = clamp_k(users, rec.n_users, name="users")
    user_ids = rec.dataset.users.column("user_id").to_pylist()
    sample = rng.choice(len(user_ids), size=min(users, len(user_ids)), replace=False)
    return [rec.user_history(user_ids[i]) for i in sample]


def faithfulness_curves(
    rec: Recommender, methods: Sequence[str], *, users: int = 50, seed: int = 0
) -> FaithfulnessCurves:
    """Mean deletion and insertion curves of each method over the seeded sample of users that
    :func:`faithfulness_report` draws with the same ``users`` and ``seed``."""
    from influrec.influence.faithfulness import CURVE
    from influrec.influence.faithfulness import faithfulness_curves as curves

    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise InputError(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
    histories = sampled_histories(rec, users, np.random.default_rng(seed))
    found = curves(Scorer(rec.model), histories, methods, seed=seed)
    return FaithfulnessCurves(
        users=sum(len(h) >= 2 for h in histories),
        seed=seed,
        explained="the top-1 recommendation after each user's whole history",
        shares=CURVE.tolist(),
        deletion={m: d.tolist() for m, (d, _) in found.items()},
        insertion={m: i.tolist() for m, (_, i) in found.items()},
    )


def faithfulness_report(
    rec: Recommender,
    methods: Sequence[str],
    *,
    users: int = 500,
    seed: int = 0,
    progress: bool | None = None,
) -> FaithfulnessReport:
    """Faithfulness of each method over a seeded sample of users (plus planted-cause recovery
    on synthetic data, whose ground truth travels with the run's dataset). ``progress``: bars
    over the users and the planted causes (``None``: only where stderr is a terminal)."""
    from influrec.influence.faithfulness import faithfulness, planted_cause_recovery

    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise InputError(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
    rng = np.random.default_rng(seed)
    histories = sampled_histories(rec, users, rng)
    scorer = Scorer(rec.model)
    metrics = faithfulness(scorer, histories, methods, seed=seed, progress=progress)
    planted = None
    truth = rec.dataset.ground_truth
    if truth is not None:
        row_to_event = {int(r): i for i, r in enumerate(rec.dataset.column("row").tolist())}
        caused = np.array([row_to_event[int(r)] for r in truth.column("row").to_pylist()])
        causes = np.array([row_to_event[int(r)] for r in truth.column("cause_row").to_pylist()])
        pick = rng.choice(len(caused), size=min(users, len(caused)), replace=False)
        planted = planted_cause_recovery(
            scorer, rec.data, caused[pick], causes[pick], methods, seed=seed, progress=progress
        )
    return FaithfulnessReport.model_validate(
        {
            "users": len(histories),
            "seed": seed,
            "explained": "the top-1 recommendation after each user's whole history",
            "metrics": metrics,
            "planted_cause": planted,
        }
    )


def explain_groups(
    rec: Recommender,
    history: History,
    *,
    by: str = "behavior",
    k: int = 10,
    measure: str = "margin",
    exclude_seen: bool = EXCLUDE_SEEN,
) -> GroupExplainResult:
    """For each of the top ``k`` items: effects of whole behaviour types, time windows or item
    categories (the item table's category or genres column); the top ``k`` and the
    measurements are without the history's items unless ``exclude_seen`` is False, as
    :func:`explain`."""
    from influrec.influence.groups import GROUPINGS, GroupContext, group_effects_many

    if by not in GROUPINGS:
        raise InputError(f"groups must be one of {', '.join(GROUPINGS)}, got {by!r}")
    k, recommendations, measurements = top_to_explain(
        rec, history, k=k, measure=measure, exclude_seen=exclude_seen
    )
    context = GroupContext(rec.dataset.behaviors, item_categories(rec) if by == "category" else {})
    groups = GROUPINGS[by](history, context)
    scorer = Scorer(rec.model)
    out = []
    effects_of = group_effects_many(scorer, history, measurements, groups)
    for r, effects in zip(recommendations, effects_of, strict=True):
        out.append(
            ItemGroupExplanation(
                rank=r.rank,
                item=r.item_id,
                title=rec.item_title(r.item_id),
                value=effects.value,
                empty_value=effects.empty_value,
                groups=[
                    GroupEffect(group=g, events=n, leave_group_out=lgo, shapley=sv)
                    for g, n, lgo, sv in zip(
                        effects.groups,
                        effects.sizes,
                        effects.leave_group_out,
                        effects.shapley,
                        strict=True,
                    )
                ],
            )
        )
    return GroupExplainResult(
        by=by, measure=measure, k=k, recommendations=out, exclude_seen=exclude_seen
    )
