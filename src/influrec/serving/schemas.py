"""Request and response bodies of the HTTP API (validated by pydantic, documented in OpenAPI).

The influence answers are the library's results (:mod:`influrec.influence.results`) with the
user they are about in front: the HTTP layer adds fields, it does not copy the shapes.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from influrec.data.times import TIME_RANGE
from influrec.inference import MAX_TIME, MAX_VALUE
from influrec.influence.results import (
    TITLE,
    ExplainResult,
    InfluentialActionsResult,
    WhatIfResult,
    missing,
)
from influrec.influence.whynot import WhyNotResult
from influrec.serving.openapi import limited, limited_items

MAX_ID = 256  # characters of a user, item or event id
MODEL = (
    "the version of the model that produced this answer: RUN@DIGEST, the run folder's name and "
    "the first 12 hex digits of the SHA-256 of its model file (also in the X-Model-Version header)"
)
MAX_TIMESTAMP = MAX_TIME  # the library's bounds: what the readers and the model take
MAX_ABS_VALUE = MAX_VALUE

EventValue = Annotated[
    float,
    Field(
        ge=-MAX_ABS_VALUE,
        le=MAX_ABS_VALUE,
        allow_inf_nan=False,
        description=f"rating, price, dwell time...; |value| <= {MAX_ABS_VALUE:.0e}",
    ),
]
EventTimestamp = Annotated[
    int,
    Field(ge=0, le=MAX_TIMESTAMP, description=f"epoch seconds, {TIME_RANGE}"),
]


class Strict(BaseModel):
    """No unknown fields, no silent coercion ("12" is not an integer)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class EventIn(Strict):
    user: str = Field(min_length=1, max_length=MAX_ID)
    item: str = Field(min_length=1, max_length=MAX_ID)
    behavior: str = Field(min_length=1, max_length=64, examples=["view", "buy"])
    timestamp: EventTimestamp | None = Field(None, description="default: when received")
    value: EventValue | None = None
    event_id: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_ID,
        description="the client's id: a retry with the same id is never stored twice",
    )


class EventBatch(Strict):
    events: list[EventIn] = Field(
        min_length=1,
        description="one batch, stored all or nothing",
        json_schema_extra=limited_items("max_batch"),
    )


class IngestResult(BaseModel):
    stored: int = Field(description="events newly stored (durable when this answer is sent)")
    duplicates: int = Field(description="events whose event_id was already stored")
    duplicate_indices: list[int]
    duplicate_event_ids: list[str]
    unknown_items: list[str] = Field(description="items the model does not know (stored anyway)")
    unknown_behaviors: list[str]
    model: str = Field(description=MODEL)


class HistoryInfo(BaseModel):
    """Which events the answer is based on."""

    events_used: int = Field(description="events of the history given to the model")
    trained_events: int = Field(description="of them, from the training data")
    stored_events: int = Field(description="of them, ingested through POST /v1/events")
    stored_events_skipped: int = Field(
        description="ingested events left out: unknown item or behaviour, a stored value or"
        " time out of the bounds of `POST /v1/events`, or already in the run's training history"
        " (same item, behaviour and time: a run updated with the stored events)"
    )
    muted_events: int = Field(
        description="events left out by the user's mutes (`/v1/users/{id}/mutes`)"
    )
    truncated: int = Field(description="older events left out by the history limit")
    erased: bool = Field(description="the user was erased: the training history is not used")


class RecommendedItem(BaseModel):
    rank: int
    item: str
    title: str | None = Field(None, exclude_if=missing, description=TITLE)
    score: float
    new_item: bool = Field(
        False,
        exclude_if=lambda new: not new,
        description="true for an item no one interacted with in the training data, "
        "recommended from its content (item text) alone; absent otherwise",
    )


class ForUser(BaseModel):
    """Whom an answer is about and which of their events it is based on."""

    user: str
    cold_start: bool = Field(description="no usable history: popular items instead")
    history: HistoryInfo
    model: str = Field(description=MODEL)


class ForUserAtK(ForUser):
    k: int = Field(
        description="the k used: the k asked for, at most the number of items in the catalogue"
    )


class Recommendations(ForUserAtK):
    recommendations: list[RecommendedItem] = Field(
        description="at most k items (fewer when seen items are left out of a small catalogue)"
    )


class ExplainedForUser(ForUser):
    events_explained: int = Field(
        description="the most recent events, those the model sees (its context window)"
    )


class Explanations(ExplainResult, ExplainedForUser):
    # results.ExplainResult for one user; the docstring is its OpenAPI text
    """Each of the user's top k items with the effect of every event the model sees on it."""


class AddedEvent(Strict):
    item: str = Field(min_length=1, max_length=MAX_ID)
    behavior: str | None = Field(None, min_length=1, max_length=64)


class WhatIfRequest(Strict):
    user: str = Field(min_length=1, max_length=MAX_ID)
    add: list[AddedEvent] = Field(
        default_factory=list,
        description="events appended after the history, one second apart",
        json_schema_extra=limited_items("max_edits"),
    )
    remove: list[int] = Field(
        default_factory=list,
        description="positions (0 = oldest event) in the user's history; with `add`, at most "
        "the service's max edits in all",
        json_schema_extra=limited_items("max_edits"),
    )
    k: int = Field(
        10,
        ge=1,
        description="items per list; more than the catalogue holds is clamped to the catalogue",
        json_schema_extra=limited("max_k"),
    )
    exclude_seen: bool = Field(
        True, description="each list leaves out the items already in its history"
    )


class WhatIf(WhatIfResult, ForUserAtK):
    # results.WhatIfResult for one user; the docstring is its OpenAPI text
    """The user's top k before and after hypothetical edits of their history."""


class InfluentialActions(InfluentialActionsResult, ForUserAtK):
    # results.InfluentialActionsResult for one user; the docstring is its OpenAPI text
    """The user's next actions that would change their top k the most."""


class WhyNot(WhyNotResult, ForUser):
    """Why an item is not (or is) in the user's top k: its rank, the events that hold it back
    and lift it (exact leave-one-out on its rank margin), and the best next action."""


class UserSummary(BaseModel):
    user: str
    trained_events: int = Field(description="events in the run's training data (0 once erased)")
    stored_events: int = Field(description="events ingested through POST /v1/events")


class UserList(BaseModel):
    """A page of the users who have a history, in id order (code-point order of the ids)."""

    users: list[UserSummary]
    next_after: str | None = Field(
        description="pass as `after` to get the next page; null on the last page"
    )


class Erasure(BaseModel):
    user: str
    events_deleted: int
    erased: bool


class Health(BaseModel):
    status: str
    run: str = Field(description="the folder name of the run served (links followed)")
    model: str = Field(description=MODEL)
    items: int
    users: int
    events_in_store: int


class ErrorDetail(BaseModel):
    message: str
    field: str | None = None
    index: int | None = None
    type: str | None = None


class ErrorInfo(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail]


class ErrorResponse(BaseModel):
    error: ErrorInfo


class ReloadRequest(Strict):
    run: str | None = Field(
        None,
        min_length=1,
        max_length=4096,
        description="a run folder on the server; default: the run the service was started with "
        "(a `current` link is followed again)",
    )
    force: bool = Field(
        False,
        description="swap even when the new model does not know items or behaviours of stored "
        "events that the current model reads (those events would then be skipped)",
    )


class Reload(BaseModel):
    """A swap that happened: every request that started after it uses `model`."""

    model: str = Field(description="the version now serving")
    previous_model: str = Field(description="the version served before")
    run: str = Field(description="the run folder loaded (links followed)")
    items: int
    users: int
    items_added: int = Field(description="items the new model knows and the previous did not")
    stored_items_unknown: int = Field(
        description="distinct items of stored events the new model does not know (skipped)"
    )
    seconds: float = Field(description="loading and validating, before the swap")
