"""Explanations in plain words: which past behaviours push a recommendation up, which pull it down.

``because(item.item, item.events)`` turns one recommended item's per-event effects (an
:class:`~influrec.influence.results.ItemExplanation` of :func:`influrec.influence.api.explain`)
into a sentence such as

    i13 is recommended mainly because of your buy of i232 (+0.41) and your view of i7 (+0.12);
    your view of i634 pulls it down (-0.10).

The effects carry no unit in the sentence: the measure's
:attr:`~influrec.influence.measurement.Measure.unit` says, once per answer, what one point is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

NOUNS = {"cart": "add-to-cart", "fav": "favourite", "pv": "view", "rate": "rating"}
"""Behaviour names that read badly as nouns ("your rate of i5") and the noun used instead."""


class NamedEvent(Protocol):
    """A past event: which behaviour on which item (ids as in the log)."""

    @property
    def item(self) -> str: ...

    @property
    def behavior(self) -> str: ...


class WeighedEvent(NamedEvent, Protocol):
    """One past event and its effect on a recommendation, such as the
    :class:`~influrec.influence.results.EventEffect` that ``explain`` reports per event."""

    @property
    def effect(self) -> float: ...


@dataclass(frozen=True)
class Effect:
    """A plain :class:`WeighedEvent`: ``behavior`` of ``item`` moved the measure by ``effect``."""

    item: str
    behavior: str
    effect: float


def event_words(event: NamedEvent) -> str:
    """``your buy of i232``: the event as the user would name it."""
    return f"your {NOUNS.get(event.behavior, event.behavior)} of {event.item}"


def _listed(events: Sequence[WeighedEvent]) -> str:
    parts = [f"{event_words(e)} ({e.effect:+.2f})" for e in events]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def because(
    item: str,
    events: Sequence[WeighedEvent],
    *,
    supporters: int = 2,
    opposers: int = 1,
    noticeable: float = 0.005,
) -> str:
    """One sentence: the ``supporters`` events that push ``item`` up most, then, apart, the
    ``opposers`` that pull it down most. Effects smaller than ``noticeable`` in magnitude are
    left out (they would be noise in words); when none is left, the sentence says so."""
    up = sorted((e for e in events if e.effect >= noticeable), key=lambda e: -e.effect)
    down = sorted((e for e in events if e.effect <= -noticeable), key=lambda e: e.effect)
    if up:
        sentence = f"{item} is recommended mainly because of {_listed(up[:supporters])}"
    else:
        sentence = f"{item} is recommended, though no single past event of yours pushes it up"
    if down[:opposers]:
        verb = "pulls" if len(down[:opposers]) == 1 else "pull"
        sentence += f"; {_listed(down[:opposers])} {verb} it down"
    return sentence + "."
