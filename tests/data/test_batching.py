"""The one left-padding batcher against a slow reference written here, row by row, for each
way of choosing the events (dataset windows, whole histories, edited histories)."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from influrec.data.batching import SequenceBatch, batch_histories, batch_rows, batch_windows
from influrec.data.history import History
from influrec.data.sequences import SequenceData
from tests_helpers import make_data

BUCKETS = st.sampled_from([0, 2, 3, 8, 40])


def random_history(rng: np.random.Generator, n: int) -> History:
    return History(
        rng.integers(1, 50, n),
        rng.integers(1, 4, n),
        np.sort(rng.integers(0, 10**9, n)),
        rng.normal(size=n).astype(np.float32),
    )


def reference(
    events: History, rows: list[list[int]], width: int, time_buckets: int
) -> dict[str, list[list[float]]]:
    """Each row's events (indices into ``events``) after ``width - len(row)`` padding slots;
    gap bucket 1 for a row's first event, else 2 + min(floor(log2(gap + 1)), buckets - 3)."""
    out: dict[str, list[list[float]]] = {k: [] for k in ("items", "behaviors", "gaps", "values")}
    for row in rows:
        pad = [0] * (width - len(row))
        out["items"].append(pad + [int(events.items[i]) for i in row])
        out["behaviors"].append(pad + [int(events.behaviors[i]) for i in row])
        out["values"].append([0.0] * len(pad) + [float(events.values[i]) for i in row])
        gaps = []
        for k, i in enumerate(row):
            if k == 0:
                gaps.append(1)
            else:
                gap = max(0, int(events.timestamps[i]) - int(events.timestamps[row[k - 1]]))
                gaps.append(2 + min((gap + 1).bit_length() - 1, max(time_buckets - 3, 0)))
        out["gaps"].append(pad + (gaps if time_buckets else [0] * len(row)))
    return out


def check(batch: SequenceBatch, expected: dict[str, list[list[float]]]) -> None:
    for name, dtype in (
        ("items", torch.int64),
        ("behaviors", torch.int64),
        ("gaps", torch.int64),
        ("values", torch.float32),
    ):
        tensor = getattr(batch, name)
        assert tensor.dtype == dtype, name
        assert tensor.tolist() == expected[name], name


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32), st.integers(1, 6), st.integers(1, 12), BUCKETS)
def test_histories_keep_their_last_max_len_events(
    seed: int, n_histories: int, max_len: int, time_buckets: int
) -> None:
    rng = np.random.default_rng(seed)
    histories = [random_history(rng, int(rng.integers(0, 20))) for _ in range(n_histories)]
    batch = batch_histories(histories, max_len=max_len, time_buckets=time_buckets)
    width = max(1, min(max_len, max(len(h) for h in histories)))
    assert batch.items.shape == (n_histories, width)
    for b, h in enumerate(histories):
        kept = list(range(max(0, len(h) - max_len), len(h)))
        check(
            SequenceBatch(*(t[b : b + 1] for t in batch.inputs), batch.positions[b : b + 1]),
            reference(h, [kept], width, time_buckets),
        )
        assert batch.positions[b].tolist() == [-1] * (width - len(kept)) + kept


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32), st.integers(0, 20), st.integers(1, 12), BUCKETS)
def test_edited_rows_recompute_gaps_from_the_events_they_keep(
    seed: int, n: int, max_len: int, time_buckets: int
) -> None:
    rng = np.random.default_rng(seed)
    history = random_history(rng, n)
    rows = [np.flatnonzero(rng.random(n) < rng.random()) for _ in range(int(rng.integers(1, 6)))]
    batch = batch_rows(history, rows, max_len=max_len, time_buckets=time_buckets)
    kept = [row[-max_len:].tolist() for row in rows]
    width = max(1, max(len(k) for k in kept))
    check(batch, reference(history, kept, width, time_buckets))
    assert batch.positions.tolist() == [[-1] * (width - len(k)) + k for k in kept]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 12), min_size=1, max_size=6), st.integers(0, 2**32), BUCKETS)
def test_dataset_windows_and_their_targets(
    lengths: list[int], seed: int, time_buckets: int
) -> None:
    data = make_data(lengths)
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, len(data), int(rng.integers(1, 6)))
    ends = np.minimum(len(data), starts + rng.integers(1, 10, len(starts)))
    batch = batch_windows(data, starts, ends, time_buckets=time_buckets)
    events = History(data.item, data.behavior, data.timestamp, data.value)
    rows = [list(range(s, e)) for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]
    width = max(len(r) for r in rows)
    check(batch, reference(events, rows, width, time_buckets))
    assert batch.targets.tolist() == [i + 1 for row in rows for i in row]


def test_windows_left_pad_by_hand() -> None:
    data = make_data([4, 2])
    batch = batch_windows(data, np.array([0, 4]), np.array([3, 5]), time_buckets=8)
    assert batch.items.shape == (2, 3)
    assert batch.items[0].tolist() == data.item[0:3].tolist()
    assert batch.items[1].tolist() == [0, 0, int(data.item[4])]
    assert batch.positions.tolist() == [[0, 1, 2], [-1, -1, 4]]
    assert batch.targets.tolist() == [1, 2, 3, 5]
    assert batch.values[1].tolist() == [0.0, 0.0, 4.0]
    # gaps: first event of a window is bucket 1; 10 s later is 2 + floor(log2(11)) = 5
    assert batch.gaps.tolist() == [[1, 5, 5], [0, 0, 1]]


def test_an_empty_history_is_one_padding_slot() -> None:
    batch = batch_histories([History.empty()], max_len=8, time_buckets=8)
    assert batch.items.tolist() == [[0]] and batch.gaps.tolist() == [[0]]
    assert batch.positions.tolist() == [[-1]] and batch.targets.tolist() == []
    assert batch.values.dtype == torch.float32


def test_dataset_flat_arrays_fit_the_history_columns() -> None:
    data: SequenceData = make_data([3])
    batch = batch_windows(data, np.array([0]), np.array([3]))
    assert batch.gaps.tolist() == [[0, 0, 0]]  # time buckets off by default
