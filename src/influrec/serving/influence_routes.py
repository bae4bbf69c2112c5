"""Thin HTTP adapters for the influence questions: explanations, what-if, next actions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, Query

from influrec.inference import EXCLUDE_SEEN
from influrec.influence.measurement import MEASURES
from influrec.influence.methods import explaining_methods
from influrec.serving.deps import ExplainedK, K, Read, ServiceDep
from influrec.serving.openapi import limited
from influrec.serving.routes import ERRORS, ExcludeSeen, UserId
from influrec.serving.schemas import (
    Explanations,
    InfluentialActions,
    WhatIf,
    WhatIfRequest,
    WhyNot,
)

router = APIRouter(prefix="/v1", responses=ERRORS, tags=["influence"])

# The OpenAPI enums are the registries' names: a new method or measure appears here by itself.
if TYPE_CHECKING:
    Method = str
    Measure = str
else:
    Method = Literal[tuple(explaining_methods())]
    Measure = Literal[tuple(MEASURES)]


@router.get("/users/{user_id:path}/explanations", response_model=Explanations)
def get_explanations(
    _: Read,
    service: ServiceDep,
    user_id: UserId,
    k: ExplainedK,
    method: Annotated[Method, Query(description="loo = exact leave-one-out")] = "loo",
    measure: Annotated[Measure, Query(description="what is explained")] = "margin",
    exclude_seen: ExcludeSeen = EXCLUDE_SEEN,
) -> Explanations:
    """The effect of each of the user's recent events on each of their top k items.

    The top k are those `/recommendations` serves with the same `exclude_seen`: by default
    without the items of the history, which the measurements then do not rank either.

    Cold start: a user with no usable history gets the popular items, which no event explains,
    so the answer has `cold_start: true` and no recommendations.
    """
    return service.explain(user_id, k=k, method=method, measure=measure, exclude_seen=exclude_seen)


@router.post("/whatif", response_model=WhatIf)
def post_whatif(_: Read, service: ServiceDep, request: WhatIfRequest) -> WhatIf:
    """The top k after hypothetical edits of the user's history (nothing is stored).

    Cold start: a history with no usable event, before or after the edits, is ranked by the
    cold-start policy of `/recommendations` (the items most frequent in the training data), so
    `before` for a new user is the list `/recommendations` serves them.
    """
    return service.whatif(request)


@router.get("/users/{user_id:path}/influential-actions", response_model=InfluentialActions)
def get_influential_actions(
    _: Read,
    service: ServiceDep,
    user_id: UserId,
    k: K,
    candidates: Annotated[
        int,
        Query(
            ge=1,
            description="top items tried (x every behaviour); clamped to the catalogue",
            json_schema_extra=limited("max_candidates"),
        ),
    ] = 100,
    top: Annotated[int, Query(ge=1, le=100, description="actions returned")] = 10,
) -> InfluentialActions:
    """The next actions (item x behaviour) that would change the user's top k the most.

    Cold start: for a user with no usable history, today's top k and the candidate items are
    the popular items that `/recommendations` serves them.
    """
    service.check("candidates", candidates, service.limits.max_candidates)
    return service.influential_actions(user_id, candidates=candidates, k=k, top=top)


@router.get("/users/{user_id:path}/why-not", response_model=WhyNot)
def get_why_not(
    _: Read,
    service: ServiceDep,
    user_id: UserId,
    item: Annotated[str, Query(min_length=1, max_length=200, description="the item asked about")],
    k: K,
    candidates: Annotated[
        int,
        Query(
            ge=1,
            description="next actions tried among the best-scored items (x every behaviour)",
            json_schema_extra=limited("max_candidates"),
        ),
    ] = 100,
) -> WhyNot:
    """Why `item` is not (or is) among the user's top k: its rank among all items, the events
    that hold it back and those that lift it (exact leave-one-out effects on its rank margin),
    and the next action after which it would rank best. A user without usable history gets
    422: the popular items are recommended and no event holds anything back."""
    return service.why_not(user_id, item=item, k=k, candidates=candidates)
