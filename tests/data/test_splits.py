from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from influrec.data.splits import (
    global_temporal_split,
    leave_one_out_split,
    make_split,
    temporal_cuts,
)
from tests_helpers import make_data

lengths = st.lists(st.integers(1, 8), min_size=1, max_size=20)


@settings(max_examples=150, deadline=None)
@given(lengths)
def test_leave_one_out_takes_each_users_last_two_events(per_user: list[int]) -> None:
    user = np.repeat(np.arange(1, len(per_user) + 1), per_user)
    split = leave_one_out_split(user)
    ends = np.cumsum(per_user) - 1
    eligible = np.array(per_user) >= 3
    assert split.test.tolist() == ends[eligible].tolist()
    assert split.valid.tolist() == (ends[eligible] - 1).tolist()
    parts = np.concatenate([split.train, split.valid, split.test])
    assert sorted(parts.tolist()) == list(range(len(user)))  # a partition of all events


def test_leave_one_out_rejects_unsorted_users() -> None:
    with pytest.raises(ValueError, match="sorted by user"):
        leave_one_out_split(np.array([2, 1]))


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(0, 100), min_size=1, max_size=60), st.integers(0, 100), st.integers(0, 100)
)
def test_global_temporal_split_never_trains_after_the_cut(times: list[int], a: int, b: int) -> None:
    timestamp = np.array(times)
    valid_cut, test_cut = min(a, b), max(a, b)
    split = global_temporal_split(timestamp, test_cut=test_cut, valid_cut=valid_cut)
    assert np.all(timestamp[split.train] < valid_cut)
    assert np.all((timestamp[split.valid] >= valid_cut) & (timestamp[split.valid] < test_cut))
    assert np.all(timestamp[split.test] >= test_cut)
    assert len(split.train) + len(split.valid) + len(split.test) == len(times)


def test_temporal_cuts_leave_the_asked_fractions() -> None:
    timestamp = np.arange(1000)
    valid_cut, test_cut = temporal_cuts(timestamp, test_fraction=0.1, valid_fraction=0.2)
    split = global_temporal_split(timestamp, test_cut=test_cut, valid_cut=valid_cut)
    assert split.sizes() == {"train": 700, "valid": 200, "test": 100}
    with pytest.raises(ValueError, match="must not be after"):
        global_temporal_split(timestamp, test_cut=1, valid_cut=2)


@dataclass(frozen=True)
class Settings:  # any object with the three settings will do; the data layer needs no config
    split: str
    valid_fraction: float = 0.2
    test_fraction: float = 0.2


def test_make_split_follows_the_settings_and_keeps_targets_with_history() -> None:
    data = make_data([5, 1, 4, 6])
    loo = make_split(data, Settings("leave_one_out"))
    assert np.array_equal(loo.test, leave_one_out_split(data.user).test)
    temporal = make_split(data, Settings("temporal"))
    assert temporal.kind == global_temporal_split(data.timestamp, test_cut=0).kind
    targets = np.concatenate([temporal.train, temporal.valid, temporal.test])
    first_events = data.user_start[data.user[targets]]
    assert len(targets) and np.all(targets > first_events)  # never a user's first event
    cut_test = make_split(data, Settings("temporal", test_fraction=0.5))
    assert len(cut_test.test) > len(temporal.test)
