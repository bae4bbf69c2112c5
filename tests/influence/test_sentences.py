"""The plain-words explanation: supporters first, opposers apart, units said once elsewhere."""

from __future__ import annotations

from influrec.influence.measurement import MEASURES
from influrec.influence.sentences import Effect, because, event_words


def test_supporters_are_listed_strongest_first_and_opposers_apart() -> None:
    events = [
        Effect("i7", "view", 0.12),
        Effect("i634", "view", -0.10),
        Effect("i232", "buy", 0.41),
        Effect("i9", "view", 0.05),
        Effect("i2", "cart", -0.30),
    ]
    assert because("i13", events) == (
        "i13 is recommended mainly because of your buy of i232 (+0.41) and your view of i7 "
        "(+0.12); your add-to-cart of i2 (-0.30) pulls it down."
    )
    both = because("i13", events, supporters=1, opposers=2)
    assert both == (
        "i13 is recommended mainly because of your buy of i232 (+0.41); your add-to-cart of i2 "
        "(-0.30) and your view of i634 (-0.10) pull it down."
    )


def test_effects_too_small_to_matter_are_left_out() -> None:
    events = [Effect("i1", "buy", 0.001), Effect("i2", "view", -0.004), Effect("i3", "fav", 0.2)]
    assert (
        because("i5", events) == "i5 is recommended mainly because of your favourite of i3 (+0.20)."
    )
    assert because("i5", events, noticeable=0.3) == (
        "i5 is recommended, though no single past event of yours pushes it up."
    )
    only_down = [Effect("i1", "rate", -0.5)]
    assert because("i5", only_down) == (
        "i5 is recommended, though no single past event of yours pushes it up; "
        "your rating of i1 (-0.50) pulls it down."
    )


def test_the_same_item_twice_is_two_events_and_unknown_behaviours_keep_their_name() -> None:
    events = [Effect("i1", "view", 0.2), Effect("i1", "view", 0.1), Effect("i1", "share", 0.3)]
    assert because("i4", events, supporters=3) == (
        "i4 is recommended mainly because of your share of i1 (+0.30), your view of i1 (+0.20) "
        "and your view of i1 (+0.10)."
    )
    assert event_words(Effect("i8", "pv", 0.0)) == "your view of i8"


def test_the_units_are_said_by_the_measures_themselves() -> None:
    assert MEASURES["margin"].unit.startswith("rank-margin points")
    assert MEASURES["logp"].unit.startswith("log-probability points")
