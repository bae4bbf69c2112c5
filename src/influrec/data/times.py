"""Event times: epoch numbers (seconds, milliseconds, microseconds) or ISO-8601 text.

Accepted times lie from 1970-01-01 to 2262-04-11 (0 .. :data:`MAX_SECONDS` epoch seconds, the
range numpy's ``datetime64[ns]`` holds); anything else is a bad row, never an overflow.

With ``time_unit="auto"`` the format is guessed from the values that parse
(:func:`guess_time_unit`), so one odd value is a bad row of its own, and a column whose
values are partly seconds and partly milliseconds (or microseconds) is refused with
:class:`MixedTimeUnits`.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

TimeUnit = Literal["auto", "s", "ms", "us", "iso"]
TIME_UNITS: tuple[str, ...] = ("auto", "s", "ms", "us", "iso")
MAX_SECONDS = 9_223_372_036  # 2262-04-11T23:47:16Z
TIME_RANGE = "1970-01-01 to 2262-04-11"
NUMERIC_UNITS = ("s", "ms", "us")
UNIT_NAMES = {"s": "seconds", "ms": "milliseconds", "us": "microseconds"}
_UNIT_DIVISOR = {"s": 1, "ms": 1_000, "us": 1_000_000}
_CLASS_FLOOR = (0.0, 1e11, 1e14)  # smallest value read as s / ms / us when guessing
_NUMBER = r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^(?i:[-+]?(nan|inf|infinity))$"
_ZONED = r"(Z|[+-]\d\d(:?\d\d)?)$"
_GUESS_SAMPLE = 1000


class MixedTimeUnits(Exception):
    """A time column holds epoch numbers of two magnitudes: ``examples`` maps unit -> row index."""

    def __init__(self, examples: dict[str, int]) -> None:
        super().__init__(examples)
        self.examples = examples


def clean_text(values: pa.Array) -> pa.Array:
    """Strip surrounding whitespace; nulls become empty strings."""
    return pc.fill_null(pc.utf8_trim_whitespace(values.cast(pa.string())), "")


def parse_numbers(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Parse strings as float64. Returns (numbers (N,) with NaN where empty/bad, ok mask (N,)).

    Empty strings are ``ok`` and NaN (a missing optional value); unparsable text is not ``ok``.
    """
    text = clean_text(values)
    empty = pc.equal(text, "").to_numpy(zero_copy_only=False)
    numeric = pc.match_substring_regex(text, _NUMBER).to_numpy(zero_copy_only=False)
    out = np.full(len(text), np.nan)
    if numeric.any():
        good = pc.filter(text, pa.array(numeric))
        out[numeric] = pc.cast(good, pa.float64()).to_numpy(zero_copy_only=False)
    return out, numeric | empty


def _cast_micros(text: pa.Array, unit: pa.DataType, out: np.ndarray, ok: np.ndarray) -> None:
    """Cast ``text`` to ``unit`` microseconds into ``out``; on failure split the array in halves
    until the values that do not parse are isolated (few casts when few values are bad)."""
    try:
        micros = pc.cast(text, unit).cast(pa.int64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        if len(text) > 1:
            half = len(text) // 2
            _cast_micros(text[:half], unit, out[:half], ok[:half])
            _cast_micros(text[half:], unit, out[half:], ok[half:])
        return
    out[:] = micros
    ok[:] = True


def _parse_iso(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """ISO-8601 strings -> epoch seconds (floor), ok mask. Zone-less times are taken as UTC."""
    zoned = pc.match_substring_regex(text, _ZONED).to_numpy(zero_copy_only=False)
    seconds = np.zeros(len(text), np.int64)
    ok = np.zeros(len(text), bool)
    for mask, unit in ((zoned, pa.timestamp("us", tz="UTC")), (~zoned, pa.timestamp("us"))):
        idx = np.flatnonzero(mask)
        if len(idx) == 0:
            continue
        micros, parsed = np.zeros(len(idx), np.int64), np.zeros(len(idx), bool)
        _cast_micros(pc.take(text, pa.array(idx)), unit, micros, parsed)
        seconds[idx], ok[idx] = np.floor_divide(micros, 1_000_000), parsed
    ok &= (seconds >= 0) & (seconds <= MAX_SECONDS)
    return seconds, ok


def magnitude_classes(numbers: np.ndarray) -> np.ndarray:
    """(N,) int8: 0, 1, 2 where a number reads as an in-range epoch s / ms / us time by its
    magnitude, -1 where it is none of these (NaN, negative, or too large for its magnitude)."""
    classes = np.full(len(numbers), -1, np.int8)
    for code, (unit, floor) in enumerate(zip(NUMERIC_UNITS, _CLASS_FLOOR, strict=True)):
        top = MAX_SECONDS * _UNIT_DIVISOR[unit]
        with np.errstate(invalid="ignore"):
            classes[(numbers >= floor) & (numbers <= top)] = code
    return classes


def guess_time_unit(values: pa.Array) -> str | None:
    """'s', 'ms', 'us' or 'iso' from the values that parse, None when none of them does.

    Numbers against ISO-8601 text by majority of the first non-empty values; the epoch unit by the
    magnitude most of the numbers have.
    """
    text = clean_text(values)
    text = pc.filter(text, pc.not_equal(text, ""))[:_GUESS_SAMPLE]
    numbers, ok = parse_numbers(text)
    numeric = ok & np.isfinite(numbers)
    n_iso = int(_parse_iso(pc.filter(text, pa.array(~numeric)))[1].sum()) if len(text) else 0
    if n_iso > int(numeric.sum()):
        return "iso"
    if not numeric.any():
        return None
    classes = magnitude_classes(numbers[numeric])
    counts = np.bincount(classes[classes >= 0], minlength=len(NUMERIC_UNITS))
    return NUMERIC_UNITS[int(np.argmax(counts))]


def parse_times(
    values: pa.Array, unit: str | None, *, check_mixed: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse times to epoch seconds. Returns (seconds (N,) int64, missing mask, bad mask).

    ``unit`` None (no format known yet) makes every non-empty value bad. ``check_mixed`` raises
    :class:`MixedTimeUnits` when in-range numbers of another magnitude than ``unit`` occur.
    """
    text = clean_text(values)
    missing = pc.equal(text, "").to_numpy(zero_copy_only=False)
    if unit is None:
        return np.zeros(len(text), np.int64), missing, ~missing
    if unit == "iso":
        seconds, ok = _parse_iso(text)
        return seconds, missing, ~ok & ~missing
    numbers, ok = parse_numbers(text)
    if check_mixed:
        _check_one_magnitude(numbers, unit)
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = np.floor(numbers / _UNIT_DIVISOR[unit])
        ok &= (scaled >= 0) & (scaled <= MAX_SECONDS)
    seconds = np.where(ok, scaled, 0).astype(np.int64)
    return seconds, missing, ~ok & ~missing


def _check_one_magnitude(numbers: np.ndarray, unit: str) -> None:
    classes = magnitude_classes(numbers)
    present = np.unique(classes[classes >= 0]).tolist()
    if any(NUMERIC_UNITS[c] != unit for c in present):
        chosen = NUMERIC_UNITS.index(unit)
        first = {c: int(np.flatnonzero(classes == c)[0]) for c in present}
        examples = {unit: first.get(chosen, -1)}  # -1: seen in an earlier block
        examples |= {NUMERIC_UNITS[c]: i for c, i in first.items() if c != chosen}
        raise MixedTimeUnits(examples)


def expected_time(unit: str | None) -> str:
    """What a bad time row was expected to hold, for messages."""
    if unit is None:
        return f"an epoch time (a number) or an ISO-8601 time, from {TIME_RANGE}"
    if unit == "iso":
        return f"an ISO-8601 time from {TIME_RANGE}"
    top = MAX_SECONDS * _UNIT_DIVISOR[unit]
    return f"epoch time in {UNIT_NAMES[unit]} as a number from 0 to {top} ({TIME_RANGE})"


def readable_time(seconds: int) -> str:
    """Epoch seconds as a UTC date and minute people read: ``1997-12-04 15:32``."""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(int(seconds), tz=UTC).strftime("%Y-%m-%d %H:%M")
