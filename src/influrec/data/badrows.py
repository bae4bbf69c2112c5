"""What happens to a malformed input row: stop with a precise error, or skip and count it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from influrec.data.textio import source_lines
from influrec.errors import BadRowError

BadRowPolicy = Literal["error", "skip"]
MAX_EXAMPLES = 5
RowText = str | Callable[[], str] | None
"""A bad row's text: as read, a function that builds it, or None to read it back from the file."""


@dataclass
class BadRows:
    """Collects bad rows of one input file according to ``policy``.

    With ``policy="error"`` the first report raises :class:`BadRowError`; with ``"skip"`` rows are
    counted per reason and the first few kept as examples (they end up in ``stats.json``).
    A row reported without text is quoted as its line is in the file (read back only for the
    error or the examples, in one pass: see :meth:`fill_examples`).
    """

    path: Path
    policy: BadRowPolicy = "error"
    counts: Counter[str] = field(default_factory=Counter)
    examples: list[dict[str, object]] = field(default_factory=list)

    def report(self, reason: str, line: int, text: RowText, expected: str) -> None:
        if self.policy == "error":
            raise BadRowError(self.path, line, reason, self._text(line, text), expected)
        self.counts[reason] += 1
        if len(self.examples) < MAX_EXAMPLES:
            shown = text() if callable(text) else text
            self.examples.append(
                {"line": line, "reason": reason, "text": shown, "expected": expected}
            )

    def _text(self, line: int, text: RowText) -> str:
        if callable(text):
            return text()
        if text is None:
            return source_lines(self.path, [line]).get(line, "")
        return text

    def fill_examples(self) -> None:
        """Read the text of the examples reported without one from the file (one pass)."""
        missing = [int(str(e["line"])) for e in self.examples if e["text"] is None]
        found = source_lines(self.path, missing) if missing else {}
        for example in self.examples:
            if example["text"] is None:
                example["text"] = found.get(int(str(example["line"])), "")
            example["text"] = str(example["text"])[:200]
