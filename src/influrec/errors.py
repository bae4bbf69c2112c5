"""The exceptions influrec raises on purpose.

Every error a user can act on is an :class:`InputError` (a subclass of :class:`InflurecError`):
the CLI prints it as one ``error:`` line and exits with 2, the service answers it with a 4xx.
Anything else that escapes the library (a ``ValueError``, an ``IndexError``...) is a bug in
influrec and is shown as one, with its traceback.

Library messages speak the library's terms (what is wrong, with which value); the CLI and the
HTTP layer add their own hints (flags, fields). An error about one setting says which in
:attr:`InputError.setting`, so that they can name their own way of giving it.
"""

from __future__ import annotations

from pathlib import Path


class InflurecError(Exception):
    """Base class of the exceptions influrec raises deliberately."""


class InputError(InflurecError):
    """A problem with the user's input that they can fix (missing file, bad option, bad row).

    ``setting`` is the name of the library setting whose value is wrong, or that would fix the
    problem, when there is one: a parameter such as ``"time_unit"`` or ``"column_map"``, or a
    config key such as ``"train.lr"``. The message names it in the library's terms; the CLI and
    the service map it to their flag or field.
    """

    def __init__(self, message: str, *, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


class DamagedRunError(InputError):
    """A run or dataset folder whose files are missing, truncated or edited by hand."""

    def __init__(self, path: Path, problem: str, remedy: str) -> None:
        self.path, self.problem, self.remedy = Path(path), problem, remedy
        super().__init__(f"{path}: {problem}; {remedy}")


class BadRowError(InputError):
    """A malformed row, with where it is and what was expected.

    ``line`` is the 1-based line number for text files (the row number for Parquet).
    """

    def __init__(self, path: Path, line: int, reason: str, text: str, expected: str) -> None:
        self.path, self.line, self.reason = path, line, reason
        self.text, self.expected = text, expected
        shown = text if len(text) <= 200 else text[:200] + "..."
        super().__init__(f"{path}:{line}: {reason}: expected {expected}; got {shown!r}")
