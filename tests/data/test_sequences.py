from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from influrec.data.sequences import (
    history_windows,
    prefix_windows,
    seen_items_mask,
    training_windows,
)
from influrec.data.splits import leave_one_out_split
from tests_helpers import make_data


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(1, 12), min_size=1, max_size=8), st.integers(1, 5))
def test_training_windows_cover_each_target_once(lengths: list[int], max_len: int) -> None:
    data = make_data(lengths)
    split = leave_one_out_split(data.user)
    starts, ends = training_windows(data, split.train, max_len=max_len)
    covered = np.concatenate(
        [np.arange(s, e) + 1 for s, e in zip(starts, ends, strict=True)] or [[]]
    )
    first_events = set(data.user_start[1:].tolist())
    expected = sorted(t for t in split.train.tolist() if t not in first_events)
    assert sorted(covered.astype(int).tolist()) == expected  # each once, none missing
    assert np.all(ends - starts <= max_len) and np.all(ends > starts)
    assert np.all(data.user[starts] == data.user[ends])  # inputs and last target: same user


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 12), min_size=1, max_size=8), st.integers(1, 5))
def test_prefix_windows_give_each_target_its_own_latest_history(
    lengths: list[int], max_len: int
) -> None:
    data = make_data(lengths)
    split = leave_one_out_split(data.user)
    starts, ends = prefix_windows(data, split.train, max_len=max_len)
    first_events = set(data.user_start[1:].tolist())
    expected = sorted(t for t in split.train.tolist() if t not in first_events)
    assert ends.tolist() == expected  # one sample per target, the window ends just before it
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        own = data.user_start[data.user[end]]  # the target user's first event
        assert start == max(own, end - max_len)


def test_history_windows_and_seen_mask() -> None:
    data = make_data([6, 3])
    targets = np.array([5, 8, 6])
    starts, ends = history_windows(data, targets, max_len=3)
    assert starts.tolist() == [2, 6, 6] and ends.tolist() == [5, 8, 6]
    mask = seen_items_mask(data, targets)
    for row, t in enumerate(targets):
        history = set(data.item[data.user_start[data.user[t]] : t].tolist())
        assert set(np.flatnonzero(mask[row].numpy()).tolist()) == history
