"""Progress bar for an epoch; per-epoch metrics log (JSON lines, and TensorBoard if installed)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import TracebackType
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

log = logging.getLogger(__name__)


class EpochProgress:
    """A rich progress bar over the batches of one epoch (a no-op when disabled)."""

    def __init__(self, total: int, description: str, *, enabled: bool = True) -> None:
        self.total, self.description, self.enabled = total, description, enabled
        self.progress: Progress | None = None
        self.task: Any = None

    def __enter__(self) -> EpochProgress:
        if self.enabled:
            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]:.4f}"),
                TimeElapsedColumn(),
                transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task(
                self.description, total=self.total, loss=float("nan")
            )
        return self

    def advance(self, *, loss: float) -> None:
        if self.progress is not None:
            self.progress.update(self.task, advance=1, loss=loss)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.progress is not None:
            self.progress.stop()


class MetricsLog:
    """Appends one JSON line per epoch; mirrors scalars to TensorBoard when it is installed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.writer: Any = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(path.parent / "tensorboard"))
        except ImportError:
            log.debug("tensorboard not installed; metrics go to %s only", path)

    def write(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in _scalars(record):
                self.writer.add_scalar(key, value, record["epoch"])
            self.writer.flush()


def _scalars(record: dict[str, Any], prefix: str = "") -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    for key, value in record.items():
        if isinstance(value, dict):
            out.extend(_scalars(value, f"{prefix}{key}/"))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out.append((f"{prefix}{key}", float(value)))
    return out
