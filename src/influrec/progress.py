"""Progress over a known number of steps, shared by every long command.

`steps(total, "what")` is a context manager whose `.advance()` moves a rich progress bar with an
ETA on stderr. It draws only where stderr is a terminal (or when asked with `enabled=True`), so
library callers, tests and logs see nothing unless they opt in. Asked to show progress where
stderr is not a terminal (a log file, CI), it writes one plain line when the work ends instead of
a bar: ``explain: 200/200 in 4.1 s``.

Library functions with a long loop take ``progress: bool | None = None`` and pass it on as
``enabled``: ``None`` lets the terminal decide, ``True`` always draws, ``False`` never does.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class Steps:
    """A progress bar over `total` steps; every method is a no-op when disabled."""

    def __init__(self, total: int, description: str, *, enabled: bool | None = None) -> None:
        self.total, self.description = total, description
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._progress: Progress | None = None
        self._task: Any = None
        self._done, self._started = 0, 0.0
        self._plain = self.enabled and not sys.stderr.isatty()  # one line at the end

    def __enter__(self) -> Steps:
        self._started = time.perf_counter()
        if self.enabled and not self._plain:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[note]}"),
                console=Console(stderr=True),
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(self.description, total=self.total, note="")
        return self

    def advance(self, n: int = 1, *, note: str | None = None) -> None:
        """Count `n` more steps done; `note` (e.g. "loss 5.1234") is shown after the ETA."""
        self._done += n
        if self._progress is not None:
            if note is None:
                self._progress.update(self._task, advance=n)
            else:
                self._progress.update(self._task, advance=n, note=note)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
        if self._plain:
            seconds = time.perf_counter() - self._started
            line = f"{self.description}: {self._done}/{self.total} in {seconds:.1f} s\n"
            sys.stderr.write(line)


def steps(total: int, description: str, *, enabled: bool | None = None) -> Steps:
    """A progress bar over `total` steps (drawn only on a terminal unless `enabled` says)."""
    return Steps(total, description, enabled=enabled)
