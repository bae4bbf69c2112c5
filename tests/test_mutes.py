"""Mutes leave out exactly the events they name (checked against an obvious loop)."""

from __future__ import annotations

import numpy as np
import pytest

from influrec.data.history import History
from influrec.errors import InputError
from influrec.mutes import Mute, apply_mutes

ITEMS = {"a": 1, "b": 2, "c": 3}
BEHAVIORS = {"view": 1, "buy": 2}


def covers(mute: Mute, item: str, behavior: str, t: int) -> bool:
    if mute.kind == "event":
        return (item, behavior, t) == (mute.item_id, mute.behavior, mute.start)
    if mute.kind == "behavior":
        return behavior == mute.behavior
    return mute.start <= t <= mute.end  # type: ignore[operator]


def test_apply_mutes_matches_a_loop_over_the_events() -> None:
    rng = np.random.default_rng(0)
    names = [(str(rng.choice(list(ITEMS))), str(rng.choice(list(BEHAVIORS)))) for _ in range(60)]
    times = np.sort(rng.integers(0, 100, 60))
    history = History(
        np.array([ITEMS[i] for i, _ in names]),
        np.array([BEHAVIORS[b] for _, b in names]),
        times,
        np.arange(60, dtype=np.float32),
    )
    mutes = [
        Mute.event(names[7][0], names[7][1], int(times[7])),
        Mute.of_behavior("buy"),
        Mute.window(30, 40),
        Mute.event("unknown-item", "view", int(times[3])),  # covers nothing
        Mute.of_behavior("unknown-behaviour"),
    ]
    kept, muted = apply_mutes(history, mutes, item_index=ITEMS, behavior_index=BEHAVIORS)
    expected = [
        n
        for n, ((item, behavior), t) in enumerate(zip(names, times, strict=True))
        if not any(covers(m, item, behavior, int(t)) for m in mutes)
    ]
    assert 0 < len(expected) < 60 - 5
    assert kept.values.tolist() == [float(n) for n in expected]  # values index the events
    assert muted == 60 - len(expected)
    same, none = apply_mutes(history, [], item_index=ITEMS, behavior_index=BEHAVIORS)
    assert same is history and none == 0


def test_a_window_ending_before_it_starts_is_refused() -> None:
    with pytest.raises(InputError, match="start 5 is after end 4"):
        Mute.window(5, 4)
