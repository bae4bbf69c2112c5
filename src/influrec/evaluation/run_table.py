"""Several runs side by side from their own files: how their configs differ, and how they did.

:func:`runs_table` reads each run's run.json and metrics.jsonl (no model is loaded): the
config keys whose values differ between the runs, and per run its epochs, best epoch,
training time, parameter count, why it stopped, and the best epoch's validation metrics
(the convention of its ``eval.mask_seen``). With ``test=True`` the runs' best models are also
evaluated on the test targets through :func:`~influrec.evaluation.compare.compare_runs`,
which first checks that the runs share their data and split.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from influrec.errors import DamagedRunError, InputError
from influrec.evaluation.compare import compare_runs, run_labels
from influrec.run import RUN_REMEDY, RunInfo, read_run_info


@dataclass(frozen=True)
class RunRow:
    """One run's summary, from its run.json and its best epoch's line in metrics.jsonl."""

    label: str  # the run folder's name (its path where two share a name)
    run: str  # the run folder
    epochs: int
    best_epoch: int
    train_seconds: float
    parameters: int | None
    stopped: str | None  # run.json's stopped reason
    valid: dict[str, float]  # the best epoch's validation metrics
    test: dict[str, float] = field(default_factory=dict)  # with test=True: unmasked test metrics


@dataclass(frozen=True)
class RunsTable:
    """The differing config keys (each with one value per run, in run order) and the rows."""

    differences: dict[str, list[Any]]
    rows: list[RunRow]

    def to_dict(self) -> dict[str, Any]:
        return {
            "differences": self.differences,
            "runs": [row.__dict__ for row in self.rows],
        }


def best_valid_metrics(run_dir: Path, info: RunInfo) -> dict[str, float]:
    """The validation metrics of the run's best epoch (``{}`` before its first epoch)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not info.best_epoch:
        return {}
    try:
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        raise DamagedRunError(path, "missing (the run's per-epoch metrics)", RUN_REMEDY) from None
    except json.JSONDecodeError as exc:
        raise DamagedRunError(path, f"is not JSON lines ({exc})", RUN_REMEDY) from None
    best = [
        line for line in lines if isinstance(line, dict) and line.get("epoch") == info.best_epoch
    ]
    if not best or not isinstance(best[-1].get("valid"), dict):
        problem = f"has no line for the best epoch {info.best_epoch} that run.json names"
        raise DamagedRunError(path, problem, RUN_REMEDY)
    return {
        key: float(value)
        for key, value in best[-1]["valid"].items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


def runs_table(run_dirs: Sequence[Path], *, test: bool = False) -> RunsTable:
    """The config differences and metrics of ``run_dirs`` (two or more run folders)."""
    if len(run_dirs) < 2:
        raise InputError(f"give two or more runs to compare, got {len(run_dirs)}")
    infos = [read_run_info(Path(r)) for r in run_dirs]
    keys: dict[str, None] = {}
    for info in infos[1:]:
        keys.update((key, None) for key, _, _ in infos[0].config.changes(info.config))
    tables = [info.config.to_dict() for info in infos]
    differences = {
        key: [table[key.partition(".")[0]][key.partition(".")[2]] for table in tables]
        for key in keys
    }
    tested = compare_runs(run_dirs, split="test", progress=False).runs if test else []
    rows = [
        RunRow(
            label=label,
            run=str(run_dir),
            epochs=info.epochs_run,
            best_epoch=info.best_epoch,
            train_seconds=info.train_seconds,
            parameters=info.parameters,
            stopped=(info.stopped or {}).get("reason"),
            valid=best_valid_metrics(Path(run_dir), info),
            test=dict(tested[i].metrics.unmasked) if tested else {},
        )
        for i, (label, run_dir, info) in enumerate(
            zip(run_labels(run_dirs), run_dirs, infos, strict=True)
        )
    ]
    return RunsTable(differences, rows)
