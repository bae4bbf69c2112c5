"""What training shows while it runs (one line per epoch; the bar inside an epoch is
:func:`influrec.progress.steps`) and what it logs (JSON lines; trackers such as TensorBoard are
callbacks, see :mod:`influrec.training.callbacks`)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any, TextIO

from influrec.config import TrainConfig


def clock(seconds: float) -> str:
    """``42s``, ``3:07`` or ``1:02:03``: a duration as a reader scans it in a log."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}" if minutes else f"{secs}s"


class EpochLines:
    """One plain line per epoch on a text stream (stderr by default): what a terminal keeps
    after each epoch's bar, and all a log file, a CI job or ``nohup`` shows of training.

    ``epoch 3/20  loss 5.1234  valid NDCG@10 0.0412 HR@10 0.0800 MRR@10 0.0300  best 0.0412
    (epoch 3)  elapsed 1:03  eta 6:01``; the ETA is for the whole run (the epochs left at the
    mean time of those trained, capped by ``train.max_minutes``): early stopping can end it
    sooner. Silent when ``enabled`` is False.
    """

    def __init__(
        self,
        *,
        epochs: int,
        monitor: str,
        budget_seconds: float = math.inf,
        enabled: bool = True,
        stream: TextIO | None = None,
    ) -> None:
        self.epochs, self.monitor, self.budget = epochs, monitor, budget_seconds
        self.enabled, self.stream = enabled, stream

    def write(self, line: str) -> None:
        if self.enabled:
            stream = self.stream or sys.stderr
            stream.write(line + "\n")
            stream.flush()

    def epoch(self, record: dict[str, Any], *, best: float, best_epoch: int, done: int) -> None:
        """The line of one history ``record``; ``done``: epochs completed so far in the run."""
        partial = record.get("partial")
        where = f"epoch {record['epoch']}/{self.epochs}"
        if partial:
            where += f" (cut short: {partial['batches']} of {partial['of']} batches)"
        elapsed = float(record["elapsed_seconds"])
        per_epoch = elapsed / max(1, done)
        eta = min(max(0, self.epochs - done) * per_epoch, max(0.0, self.budget - elapsed))
        self.write(
            f"{where}  loss {record['loss']:.4f}  valid {self.headline(record['valid'])}  "
            f"best {best:.4f} (epoch {best_epoch})  elapsed {clock(elapsed)}  eta {clock(eta)}"
        )

    def headline(self, valid: dict[str, Any]) -> str:
        """The monitored metric first, then HR, NDCG and MRR at its cut-off."""
        cutoff = self.monitor.partition("@")[2]
        names = [self.monitor] + [f"{m}@{cutoff}" for m in ("HR", "NDCG", "MRR")]
        shown = dict.fromkeys(n for n in names if n in valid)
        return " ".join(f"{name} {float(valid[name]):.4f}" for name in shown)


def stop_sentence(stopped: dict[str, Any] | None, train: TrainConfig) -> str:
    """Why a run stopped, in a sentence (``stopped`` as :func:`~influrec.training.resume.stop_info`
    gives it)."""
    if stopped is None:
        return "still training"
    epoch = stopped["epoch"]
    if stopped["reason"] == "callback":
        return f"stopped after epoch {epoch} by {stopped['by']}: {stopped['why']}"
    if stopped["reason"] == "epochs":
        return f"all {train.epochs} epochs trained (step {stopped['step']})"
    if stopped["reason"] == "patience":
        return (
            f"early stopping after epoch {epoch}: {train.patience} epochs without improvement "
            f"of valid {train.monitor} (train.patience={train.patience})"
        )
    where = f"after epoch {epoch}"
    if "batch" in stopped:
        of = stopped["batches_per_epoch"]
        where = f"in epoch {epoch}, after batch {stopped['batch']} of {of}"
    return (
        f"time budget train.max_minutes={train.max_minutes:g} reached {where} (step "
        f"{stopped['step']}); resume it with a larger train.max_minutes to go on"
    )


class MetricsLog:
    """Appends one JSON line per epoch to ``path`` (the run's metrics.jsonl)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
