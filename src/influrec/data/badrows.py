"""What happens to a malformed input row: stop with a precise error, or skip and count it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from influrec.errors import BadRowError, InputError

BadRowPolicy = Literal["error", "skip"]
MAX_EXAMPLES = 5

__all__ = ["MAX_EXAMPLES", "BadRowError", "BadRowPolicy", "BadRows", "InputError"]


@dataclass
class BadRows:
    """Collects bad rows of one input file according to ``policy``.

    With ``policy="error"`` the first report raises :class:`BadRowError`; with ``"skip"`` rows are
    counted per reason and the first few kept as examples (they end up in ``stats.json``).
    """

    path: Path
    policy: BadRowPolicy = "error"
    counts: Counter[str] = field(default_factory=Counter)
    examples: list[dict[str, object]] = field(default_factory=list)

    def report(self, reason: str, line: int, text: str, expected: str) -> None:
        if self.policy == "error":
            raise BadRowError(self.path, line, reason, text, expected)
        self.counts[reason] += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(
                {"line": line, "reason": reason, "text": text[:200], "expected": expected}
            )
