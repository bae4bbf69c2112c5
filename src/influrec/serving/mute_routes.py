"""Thin HTTP adapters for a user's mutes: events they ask the service not to use."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path

from influrec.serving.deps import Read, ServiceDep, Write
from influrec.serving.mute_schemas import MuteIn, MuteList, MuteOut
from influrec.serving.routes import ERRORS, UserId
from influrec.serving.schemas import ErrorResponse

# Registered before the erasure route (`DELETE /v1/users/{user_id:path}`), which would
# otherwise match `/v1/users/u1/mutes/3` as the user `u1/mutes/3`.
router = APIRouter(prefix="/v1", responses=ERRORS, tags=["mutes"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "the user has no mute of this id"}
}


@router.get("/users/{user_id:path}/mutes", response_model=MuteList)
def get_mutes(_: Read, service: ServiceDep, user_id: UserId) -> MuteList:
    """The user's mutes, oldest first."""
    return service.mutes(user_id)


@router.post("/users/{user_id:path}/mutes", response_model=MuteOut)
def post_mute(
    _: Write, service: ServiceDep, user_id: UserId, mute: Annotated[MuteIn, Body()]
) -> MuteOut:
    """Stop using some of the user's events in every answer about them: one past event
    (`{"kind": "event", "item", "behavior", "timestamp"}`, as the answers list it), every
    event of a behaviour (`{"kind": "behavior", "behavior"}`) or every event in a time window
    (`{"kind": "window", "start", "end"}`, epoch seconds, both included). Stored, and
    reversible: nothing is deleted. Adding a mute equal to a stored one returns the stored one.
    """
    return service.mute(user_id, mute)


@router.delete(
    "/users/{user_id:path}/mutes/{mute_id}", response_model=MuteList, responses=NOT_FOUND
)
def delete_mute(
    _: Write,
    service: ServiceDep,
    user_id: UserId,
    mute_id: Annotated[int, Path(ge=1, description="the `id` of the mute")],
) -> MuteList:
    """Unmute: the events come back into every answer. Answers the mutes left."""
    return service.unmute(user_id, mute_id)
