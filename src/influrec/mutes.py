"""Mutes: a user's own "don't use this behaviour", applied to every answer about them.

A mute leaves events out of a user's history before the model reads it; nothing is deleted
and unmuting brings the events back. Three kinds:

- ``event``: one past event, named by its item, behaviour and timestamp (the fields every
  answer lists; equal events at the same second are muted together);
- ``behavior``: every event of one behaviour type (e.g. all ``view`` events);
- ``window``: every event from ``start`` to ``end`` (epoch seconds, both included).

The service stores mutes in its event store (:mod:`influrec.serving.store`); the CLI takes them
as options for one offline answer. Both apply them with :func:`apply_mutes`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from influrec.data.history import History
from influrec.errors import InputError

MUTE_KINDS = ("event", "behavior", "window")


@dataclass(frozen=True)
class Mute:
    """What one mute leaves out. ``start``/``end`` are epoch seconds, both included (an event
    mute's are its timestamp). ``mute_id`` and ``created_at`` are set by the store."""

    kind: str
    item_id: str | None = None
    behavior: str | None = None
    start: int | None = None
    end: int | None = None
    mute_id: int | None = None
    created_at: int | None = None  # epoch seconds

    @classmethod
    def event(cls, item_id: str, behavior: str, timestamp: int) -> Mute:
        return cls("event", item_id=item_id, behavior=behavior, start=timestamp, end=timestamp)

    @classmethod
    def of_behavior(cls, behavior: str) -> Mute:
        return cls("behavior", behavior=behavior)

    @classmethod
    def window(cls, start: int, end: int) -> Mute:
        """Events from ``start`` to ``end`` seconds, both included; InputError if start > end."""
        if start > end:
            raise InputError(f"mute window: start {start} is after end {end}; give start <= end")
        return cls("window", start=start, end=end)

    @property
    def spec(self) -> Mute:
        """The mute without the store's id and time: equal specs mute the same events."""
        return replace(self, mute_id=None, created_at=None)

    def describe(self) -> str:
        if self.kind == "event":
            return f"the {self.behavior} of {self.item_id} at {self.start}"
        if self.kind == "behavior":
            return f"every {self.behavior} event"
        return f"every event from {self.start} to {self.end}"


def muted_mask(
    history: History,
    mutes: Sequence[Mute],
    *,
    item_index: Mapping[str, int],
    behavior_index: Mapping[str, int],
) -> np.ndarray:
    """(L,) bool: True for each event of ``history`` (vocabulary indices) a mute covers.
    A mute naming an item or behaviour the model does not know covers nothing."""
    muted = np.zeros(len(history), bool)
    for mute in mutes:
        covered = np.ones(len(history), bool)
        if mute.item_id is not None:
            covered &= history.items == item_index.get(mute.item_id, -1)
        if mute.behavior is not None:
            covered &= history.behaviors == behavior_index.get(mute.behavior, -1)
        if mute.start is not None:
            covered &= history.timestamps >= mute.start
        if mute.end is not None:
            covered &= history.timestamps <= mute.end
        muted |= covered
    return muted


def apply_mutes(
    history: History,
    mutes: Sequence[Mute],
    *,
    item_index: Mapping[str, int],
    behavior_index: Mapping[str, int],
) -> tuple[History, int]:
    """``history`` without the events the mutes cover, and how many were left out."""
    muted = muted_mask(history, mutes, item_index=item_index, behavior_index=behavior_index)
    if not muted.any():
        return history, 0
    keep = ~muted
    kept = History(
        history.items[keep], history.behaviors[keep], history.timestamps[keep], history.values[keep]
    )
    return kept, int(muted.sum())
