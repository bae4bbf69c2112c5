"""Turn batches of string fields into typed, integer-coded event columns.

Every reader yields :class:`FieldBatch` objects (strings as read, plus each row's line number);
:class:`EventBuilder` validates them (bad rows go to :class:`~influrec.data.badrows.BadRows`),
parses time and value, and codes ids against growing vocabularies without ever turning a whole
column into Python objects: only the distinct ids of a batch are looked up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from influrec.data.badrows import BadRows

TimeUnit = Literal["auto", "s", "ms", "us", "iso"]
TIME_UNITS: tuple[str, ...] = ("auto", "s", "ms", "us", "iso")
_NUMBER = r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^(?i:[-+]?(nan|inf|infinity))$"
_ZONED = r"(Z|[+-]\d\d(:?\d\d)?)$"
_UNIT_DIVISOR = {"s": 1, "ms": 1_000, "us": 1_000_000}


@dataclass
class FieldBatch:
    """String fields of consecutive rows. ``behavior``/``time``/``value`` may be absent (None)."""

    lines: np.ndarray  # (N,) int64, 1-based line (or row) number of each row
    user: pa.Array
    item: pa.Array
    behavior: pa.Array | None = None
    time: pa.Array | None = None
    value: pa.Array | None = None
    item_attrs: dict[str, pa.Array] = field(default_factory=dict)
    delimiter: str = ","

    def row_text(self, i: int) -> str:
        parts = [self.user, self.item, self.behavior, self.time, self.value]
        return self.delimiter.join(str(a[i].as_py() or "") for a in parts if a is not None)


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


def _clean(values: pa.Array) -> pa.Array:
    """Strip surrounding whitespace; nulls become empty strings."""
    return pc.fill_null(pc.utf8_trim_whitespace(values.cast(pa.string())), "")


def parse_numbers(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Parse strings as float64. Returns (numbers (N,) with NaN where empty/bad, ok mask (N,)).

    Empty strings are ``ok`` and NaN (a missing optional value); unparsable text is not ``ok``.
    """
    text = _clean(values)
    empty = pc.equal(text, "").to_numpy(zero_copy_only=False)
    numeric = pc.match_substring_regex(text, _NUMBER).to_numpy(zero_copy_only=False)
    out = np.full(len(text), np.nan)
    if numeric.any():
        good = pc.filter(text, pa.array(numeric))
        out[numeric] = pc.cast(good, pa.float64()).to_numpy(zero_copy_only=False)
    return out, numeric | empty


def _parse_iso(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """ISO-8601 strings -> epoch seconds (floor). Zone-less times are taken as UTC."""
    zoned = pc.match_substring_regex(text, _ZONED).to_numpy(zero_copy_only=False)
    seconds = np.zeros(len(text), np.int64)
    ok = np.zeros(len(text), bool)
    for mask, unit in ((zoned, pa.timestamp("us", tz="UTC")), (~zoned, pa.timestamp("us"))):
        idx = np.flatnonzero(mask)
        if len(idx) == 0:
            continue
        part = pc.take(text, pa.array(idx))
        try:
            micros = pc.cast(part, unit).cast(pa.int64()).to_numpy(zero_copy_only=False)
            seconds[idx], ok[idx] = np.floor_divide(micros, 1_000_000), True
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            for j, s in zip(idx, part.to_pylist(), strict=True):  # slow path: find the bad ones
                try:
                    micro = pc.cast(pa.array([s]), unit).cast(pa.int64())[0].as_py()
                    seconds[j], ok[j] = micro // 1_000_000, True
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    pass
    return seconds, ok


def guess_time_unit(values: pa.Array) -> str:
    """'s', 'ms' or 'us' for epoch numbers by their magnitude, 'iso' for anything else."""
    text = _clean(values)
    text = pc.filter(text, pc.not_equal(text, ""))
    if len(text) == 0:
        return "s"
    numbers, ok = parse_numbers(text[:1000])
    if not ok.all():
        return "iso"
    magnitude = float(np.nanmedian(np.abs(numbers))) if len(numbers) else 0.0
    return "us" if magnitude > 1e14 else "ms" if magnitude > 1e11 else "s"


def parse_times(values: pa.Array, unit: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse times to epoch seconds. Returns (seconds int64, missing mask, unparsable mask)."""
    text = _clean(values)
    missing = pc.equal(text, "").to_numpy(zero_copy_only=False)
    if unit == "iso":
        seconds, ok = _parse_iso(text)
    else:
        numbers, ok = parse_numbers(text)
        ok &= np.isfinite(numbers) | missing
        scaled = np.floor(np.where(ok & ~missing, numbers, 0) / _UNIT_DIVISOR[unit])
        seconds = scaled.astype(np.int64)
    return seconds, missing, ~ok & ~missing


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
        self.bad, self.default_behavior, self.time_unit = bad, behavior, time_unit
        self.users, self.items, self.behaviors = Vocabulary(), Vocabulary(), Vocabulary()
        self.item_attrs: dict[str, dict[int, str]] = {}
        self.parts: list[tuple[np.ndarray, ...]] = []
        self.has_time: bool | None = None
        self.blank_lines = 0

    def add(self, batch: FieldBatch) -> None:
        n = len(batch.lines)
        if n == 0:
            return
        user, item = _clean(batch.user), _clean(batch.item)
        behavior = _clean(batch.behavior) if batch.behavior is not None else None
        problems: list[tuple[np.ndarray, str, str]] = []
        blank = _is_empty(user) & _is_empty(item)
        problems.append((_is_empty(user) & ~blank, "missing_user", "a non-empty user id"))
        problems.append((_is_empty(item) & ~blank, "missing_item", "a non-empty item id"))
        if behavior is not None:
            problems.append((_is_empty(behavior) & ~blank, "missing_behavior", "a behaviour type"))
        seconds = np.zeros(n, np.int64)
        if self.has_time is None:
            self.has_time = batch.time is not None
        if batch.time is not None:
            if self.time_unit == "auto":
                self.time_unit = guess_time_unit(batch.time)
            seconds, missing, unparsable = parse_times(batch.time, self.time_unit)
            expected = "an ISO-8601 time" if self.time_unit == "iso" else "epoch time as a number"
            problems.append((missing & ~blank, "missing_time", "a timestamp"))
            problems.append((unparsable & ~blank, "bad_time", expected))
        value = np.full(n, np.nan)
        if batch.value is not None:
            value, ok = parse_numbers(batch.value)
            problems.append((~ok & ~blank, "bad_value", "a number or an empty field"))
        keep = ~blank & ~np.logical_or.reduce([mask for mask, _, _ in problems])
        self._report(batch, problems)
        self.blank_lines += int(blank.sum())
        self._append(batch, keep, user, item, behavior, seconds, value)

    def _report(self, batch: FieldBatch, problems: list[tuple[np.ndarray, str, str]]) -> None:
        found = [
            (int(i), reason, exp) for mask, reason, exp in problems for i in np.flatnonzero(mask)
        ]
        for i, reason, expected in sorted(found, key=lambda f: batch.lines[f[0]]):
            self.bad.report(reason, int(batch.lines[i]), batch.row_text(i), expected)

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
        for name, values in batch.item_attrs.items():
            self._add_attrs(name, item_codes, _clean(pc.filter(values, mask)))
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
