"""Turn batches of string fields into typed, integer-coded event columns.

Every reader yields :class:`FieldBatch` objects (strings as read, plus each row's line number);
:class:`EventBuilder` validates them (bad rows go to :class:`~influrec.data.badrows.BadRows`),
parses time and value, and codes ids against growing vocabularies without ever turning a whole
column into Python objects: only the distinct ids of a batch are looked up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from influrec.data import schema
from influrec.data.badrows import BadRows, RowText
from influrec.data.times import (
    TIME_UNITS,
    UNIT_NAMES,
    MixedTimeUnits,
    TimeUnit,
    clean_text,
    expected_time,
    guess_time_unit,
    parse_numbers,
    parse_times,
)
from influrec.errors import InputError

__all__ = [
    "TIME_UNITS",
    "EncodedColumns",
    "EventBuilder",
    "FieldBatch",
    "TimeUnit",
    "Vocabulary",
    "guess_time_unit",
    "parse_numbers",
    "parse_times",
]

MAX_BEHAVIORS = np.iinfo(np.int16).max  # codes are int16; index 0 is padding


@dataclass
class FieldBatch:
    """String fields of consecutive rows. ``behavior``/``time``/``value`` may be absent (None).

    ``lines`` are 1-based physical line numbers (row numbers for Parquet). ``blank`` marks empty
    lines and ``bad_encoding`` rows that were not UTF-8 (both None: no such rows). ``invalid``
    holds rows the reader could not split into fields: (line, reason, text, expected), reported
    in line order together with this batch's other bad rows. ``text`` builds a row's text for
    a message from its index; None quotes the source line from the file.
    """

    lines: np.ndarray  # (N,) int64
    user: pa.Array
    item: pa.Array
    behavior: pa.Array | None = None
    time: pa.Array | None = None
    value: pa.Array | None = None
    item_attrs: dict[str, pa.Array] = field(default_factory=dict)
    blank: np.ndarray | None = None  # (N,) bool
    bad_encoding: np.ndarray | None = None  # (N,) bool
    invalid: list[tuple[int, str, RowText, str]] = field(default_factory=list)
    text: Callable[[int], str] | None = None


class Vocabulary:
    """Growing string -> code map (codes 0..n-1 in order of first appearance)."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.tokens: list[str] = []

    def encode(self, values: pa.Array) -> np.ndarray:
        """Codes (N,) int32 of ``values`` (a string array without nulls)."""
        encoded = pc.dictionary_encode(values)
        lookup = np.fromiter(
            (self._code(s) for s in encoded.dictionary.to_pylist()),
            dtype=np.int32,
            count=len(encoded.dictionary),
        )
        indices = encoded.indices.to_numpy(zero_copy_only=False)
        return lookup[indices] if len(indices) else np.zeros(0, np.int32)

    def _code(self, token: str) -> int:
        code = self.index.get(token)
        if code is None:
            code = self.index[token] = len(self.tokens)
            self.tokens.append(token)
        return code


@dataclass
class EncodedColumns:
    """Integer-coded events in file order, before any preprocessing."""

    user: np.ndarray  # (N,) int32 codes into users
    item: np.ndarray  # (N,) int32 codes into items
    behavior: np.ndarray  # (N,) int16 codes into behaviors
    timestamp: np.ndarray  # (N,) int64 seconds, or per-user ordinal when time_kind == "order"
    value: np.ndarray  # (N,) float64, NaN = null
    row: np.ndarray  # (N,) int64 line/row number in the source
    users: list[str]
    items: list[str]
    behaviors: list[str]
    item_attrs: dict[str, dict[int, str]]
    time_kind: Literal["timestamp", "order"]
    blank_lines: int = 0


class EventBuilder:
    """Validates, parses and codes :class:`FieldBatch` objects; ``finish()`` returns the columns.

    ``behavior`` is used for every row when a batch has no behavior field (MovieLens: ``rate``).
    ``time_unit`` is one of :data:`TIME_UNITS`; with no time field the events are ordered by
    file position (``time_kind == "order"``).
    """

    def __init__(self, bad: BadRows, *, behavior: str = "event", time_unit: str = "auto") -> None:
        if time_unit not in TIME_UNITS:
            raise ValueError(f"time unit must be one of {TIME_UNITS}, got {time_unit!r}")
        self.bad, self.default_behavior = bad, behavior
        self.guess_unit = time_unit == "auto"
        self.time_unit: str | None = None if self.guess_unit else time_unit
        self.unit_example: tuple[int, str] | None = None  # (line, text) of a time in time_unit
        self.users, self.items, self.behaviors = Vocabulary(), Vocabulary(), Vocabulary()
        self.item_attrs: dict[str, dict[int, str]] = {}
        self.parts: list[tuple[np.ndarray, ...]] = []
        self.has_time: bool | None = None
        self.blank_lines = 0

    def add(self, batch: FieldBatch) -> None:
        """Check, parse and code one batch; its bad rows go to ``self.bad`` in line order."""
        n = len(batch.lines)
        user, item = clean_text(batch.user), clean_text(batch.item)
        behavior = clean_text(batch.behavior) if batch.behavior is not None else None
        blank = batch.blank if batch.blank is not None else np.zeros(n, bool)
        problems: list[tuple[np.ndarray, str, str]] = []
        if batch.bad_encoding is not None:
            problems.append((batch.bad_encoding, "bad_encoding", "UTF-8 text"))
        problems.append((_is_empty(user), "missing_user", "a non-empty user id"))
        problems.append((_is_empty(item), "missing_item", "a non-empty item id"))
        if behavior is not None:
            problems.append((_is_empty(behavior), "missing_behavior", "a behaviour type"))
        seconds = np.zeros(n, np.int64)
        if self.has_time is None:
            self.has_time = batch.time is not None
        if batch.time is not None and n:
            seconds, missing, unparsable = self._times(batch, blank)
            problems.append((missing, "missing_time", "a timestamp"))
            problems.append((unparsable, "bad_time", expected_time(self.time_unit)))
        value = np.full(n, np.nan)
        if batch.value is not None:
            value, ok = parse_numbers(batch.value)
            ok &= ~(np.abs(value) > schema.MAX_ABS_VALUE) | np.isinf(value)  # inf: null later
            expected = f"a number of magnitude at most {schema.MAX_ABS_VALUE:.0e}, or empty"
            problems.append((~ok, "bad_value", expected))
        keep = self._report(batch, blank, problems)
        self.blank_lines += int(blank.sum())
        self._append(batch, keep, user, item, behavior, seconds, value)

    def _times(self, batch: FieldBatch, blank: np.ndarray) -> tuple[np.ndarray, ...]:
        assert batch.time is not None
        if self.guess_unit and self.unit_example is None:  # no time has parsed so far
            self.time_unit = guess_time_unit(pc.filter(batch.time, pa.array(~blank)))
        try:
            seconds, missing, bad = parse_times(
                batch.time, self.time_unit, check_mixed=self.guess_unit
            )
        except MixedTimeUnits as mixed:
            raise self._mixed_error(batch, mixed) from None
        if self.unit_example is None and self.time_unit is not None:
            good = np.flatnonzero(~bad & ~missing & ~blank)
            if len(good):
                i = int(good[0])
                self.unit_example = (int(batch.lines[i]), str(batch.time[i].as_py()).strip())
        return seconds, missing, bad

    def _mixed_error(self, batch: FieldBatch, mixed: MixedTimeUnits) -> InputError:
        assert batch.time is not None
        shown = []
        for unit, i in mixed.examples.items():
            if i < 0:  # seen in an earlier batch
                assert self.unit_example is not None
                line, text = self.unit_example
            else:
                line, text = int(batch.lines[i]), str(batch.time[i].as_py()).strip()
            shown.append(f"{UNIT_NAMES[unit]} (e.g. {text!r} on line {line})")
        return InputError(
            f"{self.bad.path}: the time column mixes epoch {' and '.join(shown)}; "
            "give the time unit, s, ms or us, to say which one it is (times of another "
            "magnitude then become bad_time rows)",
            setting="time_unit",
        )

    def _report(
        self, batch: FieldBatch, blank: np.ndarray, problems: list[tuple[np.ndarray, str, str]]
    ) -> np.ndarray:
        """Report each bad row once (its first problem), merged with ``batch.invalid`` in line
        order. Returns the rows to keep (N,) bool."""
        n = len(batch.lines)
        stacked = np.array([mask for mask, _, _ in problems], bool).reshape(len(problems), n)
        stacked &= ~blank
        is_bad = stacked.any(axis=0)
        first = stacked.argmax(axis=0)
        found: list[tuple[int, str, RowText, str]] = list(batch.invalid)
        for i in np.flatnonzero(is_bad).tolist():
            _, reason, expected = problems[first[i]]
            text: RowText = partial(batch.text, i) if batch.text is not None else None
            found.append((int(batch.lines[i]), reason, text, expected))
        for line, reason, text, expected in sorted(found, key=lambda f: f[0]):
            self.bad.report(reason, line, text, expected)
        return ~is_bad & ~blank

    def _append(
        self,
        batch: FieldBatch,
        keep: np.ndarray,
        user: pa.Array,
        item: pa.Array,
        behavior: pa.Array | None,
        seconds: np.ndarray,
        value: np.ndarray,
    ) -> None:
        mask = pa.array(keep)
        user_codes = self.users.encode(pc.filter(user, mask))
        item_codes = self.items.encode(pc.filter(item, mask))
        if behavior is None:
            code = self.behaviors.encode(pa.array([self.default_behavior]))[0]
            behavior_codes = np.full(int(keep.sum()), code, np.int16)
        else:
            behavior_codes = self.behaviors.encode(pc.filter(behavior, mask)).astype(np.int16)
        if len(self.behaviors.tokens) > MAX_BEHAVIORS:
            raise InputError(
                f"{self.bad.path}: {len(self.behaviors.tokens)} distinct behaviour values by "
                f"line {int(batch.lines[-1])}; at most {MAX_BEHAVIORS} are supported: check "
                "that the behavior column of the column map holds behaviour types",
                setting="column_map",
            )
        for name, values in batch.item_attrs.items():
            self._add_attrs(name, item_codes, clean_text(pc.filter(values, mask)))
        self.parts.append(
            (user_codes, item_codes, behavior_codes, seconds[keep], value[keep], batch.lines[keep])
        )

    def _add_attrs(self, name: str, item_codes: np.ndarray, values: pa.Array) -> None:
        known = self.item_attrs.setdefault(name, {})
        codes, first = np.unique(item_codes, return_index=True)
        new = np.array([c not in known for c in codes.tolist()], dtype=bool)
        if new.any():
            taken = pc.take(values, pa.array(first[new])).to_pylist()
            known.update(zip(codes[new].tolist(), taken, strict=True))

    def finish(self) -> EncodedColumns:
        dtypes = (np.int32, np.int32, np.int16, np.int64, np.float64, np.int64)
        pieces = [list(c) for c in zip(*self.parts, strict=True)] or [[] for _ in dtypes]
        self.parts = []
        columns = []
        for dtype in dtypes:  # one column at a time, releasing its pieces: peak = data + 1 column
            column = pieces.pop(0)
            joined = np.concatenate(column) if column else np.zeros(0, dtype)
            columns.append(joined.astype(dtype, copy=False))
            del column
        user, item, behavior, timestamp, value, row = columns
        time_kind: Literal["timestamp", "order"] = "timestamp" if self.has_time else "order"
        if not self.has_time:
            timestamp = ordinal_within_group(user)
        return EncodedColumns(
            user=user,
            item=item,
            behavior=behavior,
            timestamp=timestamp,
            value=value,
            row=row,
            users=self.users.tokens,
            items=self.items.tokens,
            behaviors=self.behaviors.tokens,
            item_attrs=self.item_attrs,
            time_kind=time_kind,
            blank_lines=self.blank_lines,
        )


def _is_empty(values: pa.Array) -> np.ndarray:
    return pc.equal(values, "").to_numpy(zero_copy_only=False)


def ordinal_within_group(group: np.ndarray) -> np.ndarray:
    """For each element, how many earlier elements share its group: (N,) int64 (0, 1, 2, ...)."""
    order = np.argsort(group, kind="stable")
    sorted_group = group[order]
    starts = np.r_[True, sorted_group[1:] != sorted_group[:-1]] if len(group) else np.zeros(0, bool)
    start_pos = np.maximum.accumulate(np.where(starts, np.arange(len(group)), 0))
    ordinal = np.empty(len(group), np.int64)
    ordinal[order] = np.arange(len(group)) - start_pos
    return ordinal
