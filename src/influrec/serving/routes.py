"""Thin HTTP adapters for events, recommendations, erasure, health and metrics."""

from __future__ import annotations

from pathlib import Path as PathLib
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import PlainTextResponse

from influrec.inference import EXCLUDE_SEEN
from influrec.serving.deps import Admin, K, LiveDep, Read, ServiceDep, Write
from influrec.serving.schemas import (
    MAX_ID,
    Erasure,
    ErrorResponse,
    EventBatch,
    Health,
    IngestResult,
    Recommendations,
    Reload,
    ReloadRequest,
    UserList,
)

# `{user_id:path}` in the routes: an id may hold any character an event's `user` may, `/`
# included; the client percent-encodes it (`a%2Fb`) and the server decodes it before matching.
UserId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_ID,
        description="the `user` of the events, percent-encoded: `a/b` is `a%2Fb`, and an id "
        "`.` or `..` is `%2E` or `%2E%2E` (clients drop plain dot segments)",
    ),
]

# One default for the library, the CLI and the service (inference.EXCLUDE_SEEN).
ExcludeSeen = Annotated[
    bool,
    Query(
        description="leave out the items already in the user's history (the default); false "
        "ranks them like any other item"
    ),
]

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in {
        401: "missing or unknown API key",
        403: "the API key lacks the scope",
        413: "request body or batch too large",
        422: "invalid input; `details` names each field (and event index)",
    }.items()
}

router = APIRouter(prefix="/v1", responses=ERRORS)
ops = APIRouter()


@router.post("/events", response_model=IngestResult, tags=["events"])
def post_events(_: Write, service: ServiceDep, batch: EventBatch) -> IngestResult:
    """Store a batch of events (all or nothing); acknowledged only once durable.

    Events with an `event_id` that is already stored are not stored again and are listed as
    duplicates, so retrying a request is safe. Events with items the model does not know are
    stored and listed in `unknown_items`; they do not affect recommendations.
    """
    return service.ingest(batch.events)


@router.get("/users", response_model=UserList, tags=["users"])
def get_users(
    _: Read,
    service: ServiceDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="users per page")] = 100,
    after: Annotated[
        str | None,
        Query(max_length=MAX_ID, description="the `next_after` of the previous page"),
    ] = None,
    prefix: Annotated[
        str, Query(max_length=MAX_ID, description="only ids that start with this")
    ] = "",
) -> UserList:
    """The users who have a history, in id order, a page at a time: the run's users (unless
    erased) and every user with ingested events, with how many events of each kind they have."""
    return service.users(limit=limit, after=after, prefix=prefix)


@router.get(
    "/users/{user_id:path}/recommendations",
    response_model=Recommendations,
    tags=["recommendations"],
)
def get_recommendations(
    _: Read,
    service: ServiceDep,
    user_id: UserId,
    k: K,
    exclude_seen: ExcludeSeen = EXCLUDE_SEEN,
    robust: Annotated[
        bool,
        Query(
            description="robust ranking: no single low-intent event among the last three can "
            "carry an item (each item scored by its worst log-probability over their single "
            "deletions)"
        ),
    ] = False,
    low_intent: Annotated[
        list[str] | None,
        Query(
            description="with robust: the behaviours whose single events may not carry an "
            "item (repeat the parameter; default: every behaviour)"
        ),
    ] = None,
) -> Recommendations:
    """Top k items after the user's whole history, ingested events included (no retraining).

    Cold start (one policy for every route and the CLI): a user with no usable history gets
    the items most frequent in the training data, with `cold_start: true`.
    """
    return service.recommend(
        user_id, k=k, exclude_seen=exclude_seen, robust=robust, low_intent=low_intent
    )


@router.delete("/users/{user_id:path}", response_model=Erasure, tags=["users"])
def delete_user(_: Admin, service: ServiceDep, user_id: UserId) -> Erasure:
    """Erase the user's stored events and stop using their training history (permanent)."""
    return service.erase(user_id)


@router.post(
    "/admin/reload",
    response_model=Reload,
    tags=["operations"],
    responses={
        409: {"model": ErrorResponse, "description": "another reload is running"},
        422: {"model": ErrorResponse, "description": "`reload_refused`: the current model stays"},
    },
)
def post_reload(_: Admin, live: LiveDep, request: ReloadRequest | None = None) -> Reload:
    """Load a run, validate it and swap it in without dropping a request: requests already
    running finish on the old model, every later one gets the new one.

    Validation: the folder is a run that loads; the new model ranks a probe user with finite
    scores; it knows every item and behaviour of the stored events that the current model reads
    (else refused, unless `force`). A refused reload keeps the current model and says why.
    """
    body = request or ReloadRequest(run=None, force=False)
    return live.reload(None if body.run is None else PathLib(body.run), force=body.force)


@ops.get("/healthz", response_model=Health, tags=["operations"])
def healthz(service: ServiceDep) -> Health:
    """Liveness and readiness: the run is loaded and the store answers."""
    return service.health()


@ops.get("/metrics", response_class=PlainTextResponse, tags=["operations"])
def metrics(service: ServiceDep) -> PlainTextResponse:
    """Prometheus text: requests by route and status, latency histograms, events stored."""
    text = service.metrics.render(events_in_store=service.store.count())
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")
