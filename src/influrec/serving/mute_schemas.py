"""Bodies of the mute routes: what a user asks the service not to use (:mod:`influrec.mutes`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from influrec.mutes import Mute
from influrec.serving.schemas import MAX_ID, EventTimestamp, Strict

Behavior = Annotated[str, Field(min_length=1, max_length=64, examples=["view"])]


class EventMuteIn(Strict):
    """One past event, as answers list it: its item, behaviour and timestamp."""

    kind: Literal["event"]
    item: str = Field(min_length=1, max_length=MAX_ID)
    behavior: Behavior
    timestamp: EventTimestamp

    def to_mute(self) -> Mute:
        return Mute.event(self.item, self.behavior, self.timestamp)


class BehaviorMuteIn(Strict):
    """Every event of one behaviour type."""

    kind: Literal["behavior"]
    behavior: Behavior

    def to_mute(self) -> Mute:
        return Mute.of_behavior(self.behavior)


class WindowMuteIn(Strict):
    """Every event from `start` to `end`, both included."""

    kind: Literal["window"]
    start: EventTimestamp
    end: EventTimestamp

    @model_validator(mode="after")
    def ordered(self) -> WindowMuteIn:
        if self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}; give start <= end")
        return self

    def to_mute(self) -> Mute:
        return Mute.window(self.start, self.end)


MuteIn = Annotated[EventMuteIn | BehaviorMuteIn | WindowMuteIn, Field(discriminator="kind")]


class MuteOut(BaseModel):
    id: int = Field(description="the mute's id: DELETE /v1/users/{id}/mutes/{mute_id} removes it")
    kind: Literal["event", "behavior", "window"]
    item: str | None = Field(None, description="event mutes")
    behavior: str | None = Field(None, description="event and behaviour mutes")
    start: int | None = Field(
        None, description="epoch seconds, included (an event mute: the event's timestamp)"
    )
    end: int | None = Field(None, description="epoch seconds, included")
    created_at: int = Field(description="epoch seconds")
    description: str

    @classmethod
    def of(cls, mute: Mute) -> MuteOut:
        return cls(
            id=int(mute.mute_id or 0),
            kind=mute.kind,  # type: ignore[arg-type]
            item=mute.item_id,
            behavior=mute.behavior,
            start=mute.start,
            end=mute.end,
            created_at=int(mute.created_at or 0),
            description=mute.describe(),
        )


class MuteList(BaseModel):
    """The user's mutes, oldest first: every answer about the user leaves out the events they
    cover (each answer's `history.muted_events` counts them)."""

    user: str
    mutes: list[MuteOut]
