from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from influrec.data.parsing import EncodedColumns
from influrec.data.preprocess import (
    PrepareConfig,
    clean,
    duplicate_mask,
    first_appearance_codes,
    kcore_mask,
)
from influrec.errors import InputError


def columns(user, item, timestamp, value=None, behavior=None) -> EncodedColumns:
    n = len(user)
    return EncodedColumns(
        user=np.array(user, np.int32),
        item=np.array(item, np.int32),
        behavior=np.array(behavior or [0] * n, np.int16),
        timestamp=np.array(timestamp, np.int64),
        value=np.array(value if value is not None else [np.nan] * n, np.float64),
        row=np.arange(1, n + 1, dtype=np.int64),
        users=[f"u{i}" for i in range(max(user, default=-1) + 1)],
        items=[f"i{i}" for i in range(max(item, default=-1) + 1)],
        behaviors=["b0", "b1"],
        item_attrs={},
        time_kind="timestamp",
    )


def test_ties_keep_file_order_not_item_order() -> None:
    # user 0 has three events at the same time; file order is items 5, 1, 3
    cols = columns(user=[0, 0, 0, 0], item=[5, 1, 3, 2], timestamp=[10, 10, 10, 5])
    out = clean(cols, PrepareConfig())
    assert cols.item[out.order].tolist() == [2, 5, 1, 3]


def test_users_grouped_in_order_of_first_appearance() -> None:
    cols = columns(user=[3, 1, 3, 1], item=[0, 1, 2, 3], timestamp=[4, 3, 2, 1])
    out = clean(cols, PrepareConfig())
    assert cols.user[out.order].tolist() == [3, 3, 1, 1]
    assert cols.timestamp[out.order].tolist() == [2, 4, 1, 3]


def test_exact_duplicates_removed_keeping_first_and_null_equals_null() -> None:
    cols = columns(
        user=[0, 0, 0, 0, 0],
        item=[1, 1, 1, 1, 2],
        timestamp=[5, 5, 5, 5, 5],
        value=[np.nan, np.nan, 4.0, 4.0, np.nan],
    )
    assert duplicate_mask(cols, cols.value).tolist() == [False, True, False, True, False]
    out = clean(cols, PrepareConfig())
    assert out.dropped == {"duplicate": 2}
    assert cols.row[out.order].tolist() == [1, 3, 5]


def test_implicit_threshold_keeps_rows_without_value() -> None:
    cols = columns(user=[0, 0, 0], item=[1, 2, 3], timestamp=[1, 2, 3], value=[2.0, 4.0, np.nan])
    out = clean(cols, PrepareConfig(implicit_threshold=4))
    assert out.dropped == {"below_threshold": 1}
    assert cols.item[out.order].tolist() == [2, 3]


def test_fill_and_clip_rules_per_behaviour() -> None:
    cols = columns(
        user=[0] * 5,
        item=[1, 2, 3, 4, 5],
        timestamp=[1, 2, 3, 4, 5],
        value=[1.0, 3.0, np.nan, 100.0, np.nan],
        behavior=[0, 0, 0, 1, 1],
    )
    assert np.allclose(clean(cols, PrepareConfig(fill_value="median")).value[:3], [1, 3, 2])
    out = clean(cols, PrepareConfig(fill_value="7"))
    assert out.value[[2, 4]].tolist() == [7.0, 7.0] and out.value_stats["filled"] == 2
    cols.value[:] = [np.inf, 1.0, 2.0, 3.0, 4.0]
    out = clean(cols, PrepareConfig(clip_quantile=0.25))
    assert out.value_stats["nonfinite_to_null"] == 1
    assert out.value_stats["clipped"] == 4  # per behaviour: [1, 2] -> [1.25, 1.75], [3, 4] -> ...
    assert np.isnan(out.value[0])
    assert np.allclose(out.value[1:], [1.25, 1.75, 3.25, 3.75])


@pytest.mark.parametrize(
    ("options", "setting", "says"),
    [
        ({"fill_value": "average"}, "fill_value", "fill_value must be one of none, zero"),
        ({"clip_quantile": 0.7}, "clip_quantile", "clip_quantile must be in (0, 0.5), got 0.7"),
        ({"min_user_events": -1}, "min_user_events", "min_user_events must be >= 0, got -1"),
        ({"min_item_events": -2}, "min_item_events", "min_item_events must be >= 0, got -2"),
    ],
)
def test_bad_config_values(options: dict[str, Any], setting: str, says: str) -> None:
    with pytest.raises(InputError) as error:
        PrepareConfig(**options)
    assert error.value.setting == setting and says in str(error.value)


def reference_kcore(user: list[int], item: list[int], min_user: int, min_item: int) -> set[int]:
    alive = set(range(len(user)))
    while True:
        uc: dict[int, int] = {}
        ic: dict[int, int] = {}
        for r in alive:
            uc[user[r]] = uc.get(user[r], 0) + 1
            ic[item[r]] = ic.get(item[r], 0) + 1
        keep = {r for r in alive if uc[user[r]] >= min_user and ic[item[r]] >= min_item}
        if keep == alive:
            return alive
        alive = keep


events_strategy = st.lists(st.tuples(st.integers(0, 8), st.integers(0, 8)), max_size=80)


@settings(max_examples=150, deadline=None)
@given(events_strategy, st.integers(0, 5), st.integers(0, 5))
def test_kcore_reaches_the_fixpoint(
    pairs: list[tuple[int, int]], min_user: int, min_item: int
) -> None:
    user = np.array([p[0] for p in pairs], np.int64)
    item = np.array([p[1] for p in pairs], np.int64)
    keep, _, _ = kcore_mask(
        user, item, np.ones(len(pairs), bool), min_user=min_user, min_item=min_item
    )
    assert set(np.flatnonzero(keep).tolist()) == reference_kcore(
        user.tolist(), item.tolist(), min_user, min_item
    )
    # every user and item left has enough events (nothing to check when nothing is left)
    assert np.all(np.bincount(user[keep])[np.unique(user[keep])] >= min_user)
    assert np.all(np.bincount(item[keep])[np.unique(item[keep])] >= min_item)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 3)), max_size=60))
def test_ordering_is_a_stable_sort_by_user_appearance_then_time(
    pairs: list[tuple[int, int]],
) -> None:
    cols = columns(
        user=[p[0] for p in pairs], item=list(range(len(pairs))), timestamp=[p[1] for p in pairs]
    )
    out = clean(cols, PrepareConfig(dedupe=False))
    first_seen = {u: i for i, u in reversed(list(enumerate(cols.user.tolist())))}
    expected = sorted(
        range(len(pairs)), key=lambda r: (first_seen[pairs[r][0]], pairs[r][1])
    )  # stable
    assert out.order.tolist() == expected


def test_first_appearance_codes() -> None:
    codes, old = first_appearance_codes(np.array([7, 3, 7, 9]), np.array([4, 1, 2, 3]))
    assert codes.tolist() == [2, 1, 2, 3] and old.tolist() == [3, 7, 9]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 2),
            st.integers(0, 2),
            st.integers(0, 1),
            st.integers(0, 2),
            st.sampled_from([1.0, 2.0, np.nan]),
        ),
        max_size=40,
    )
)
def test_duplicates_match_a_set_based_reference(
    rows: list[tuple[int, int, int, int, float]],
) -> None:
    cols = columns(
        user=[r[0] for r in rows],
        item=[r[1] for r in rows],
        behavior=[r[2] for r in rows],
        timestamp=[r[3] for r in rows],
        value=[r[4] for r in rows],
    )
    seen: set[tuple[object, ...]] = set()
    expected = []
    for r in rows:
        key = (*r[:4], "null" if np.isnan(r[4]) else r[4])
        expected.append(key in seen)
        seen.add(key)
    assert duplicate_mask(cols, cols.value).tolist() == expected
