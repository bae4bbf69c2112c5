"""Several runs on one split, in one table: each run's own evaluation, side by side.

Runs are comparable only when they were prepared from the same events and split the same
way; :func:`compare_runs` checks both from each run's own files before evaluating any.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from influrec.data.dataset import EventDataset
from influrec.errors import InputError
from influrec.evaluation.protocol import Metrics
from influrec.evaluation.runs import RunEvaluation, evaluate_run
from influrec.run import load_run_dataset, read_run_info


def data_fingerprint(dataset: EventDataset) -> str:
    """SHA-256 (hex) of the dataset's events and of its user and item ids, in file order:
    equal for two copies of one prepared dataset, different when any event, id or order differs."""
    digest = hashlib.sha256()
    tables = {"events": dataset.events, "users": dataset.users, "items": dataset.items}
    for table_name, table in tables.items():
        for name in table.column_names:
            if table_name != "events" and name not in (
                "user_idx",
                "user_id",
                "item_idx",
                "item_id",
            ):
                continue  # item metadata (titles, genres) does not change what is ranked
            values = table.column(name).to_numpy(zero_copy_only=False)
            digest.update(f"{table_name}.{name}:{values.dtype}:{len(values)}\n".encode())
            if values.dtype == object:
                digest.update("\x00".join(map(str, values)).encode())
            else:
                digest.update(np.ascontiguousarray(values).tobytes())
    digest.update("\x00".join(dataset.behaviors).encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class RunIdentity:
    """What makes two runs' evaluations comparable: their data and how it was split."""

    run: str  # the run folder
    architecture: str  # model.architecture
    data: str  # data_fingerprint of the run's copy of its dataset
    split: dict[str, Any]  # data.split and, for a temporal split, its fractions

    @classmethod
    def of(cls, run_dir: Path) -> RunIdentity:
        info = read_run_info(run_dir)
        settings = info.config.data
        split: dict[str, Any] = {"data.split": settings.split}
        if settings.split != "leave_one_out":
            split["data.valid_fraction"] = settings.valid_fraction
            split["data.test_fraction"] = settings.test_fraction
        return cls(
            run=str(run_dir),
            architecture=info.config.model.architecture,
            data=data_fingerprint(load_run_dataset(run_dir, info)),
            split=split,
        )

    def difference(self, other: RunIdentity) -> str | None:
        """What differs from ``other`` in words, or None when the two are comparable."""
        if self.data != other.data:
            return (
                f"they were prepared from different data (events fingerprint "
                f"{self.data[:12]} vs {other.data[:12]})"
            )
        changed = [
            f"{key}={self.split.get(key)} vs {other.split.get(key)}"
            for key in sorted(self.split.keys() | other.split.keys())
            if self.split.get(key) != other.split.get(key)
        ]
        return f"they were split differently ({', '.join(changed)})" if changed else None


@dataclass(frozen=True)
class ComparedRun:
    """One row of a comparison: a run's name, its model family and its metrics."""

    label: str  # the run folder's name
    architecture: str
    metrics: Metrics
    evaluation: RunEvaluation  # the run's full evaluation (what `evaluate RUN` reports)


@dataclass(frozen=True)
class RunComparison:
    """What :func:`compare_runs` measured: several runs and the baselines on one split."""

    split: str  # "test" or "valid"
    split_kind: str
    protocol: str
    targets: int
    targets_seen: float
    runs: list[ComparedRun]
    baselines: dict[str, Metrics] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON layout: each run's metrics as :meth:`Metrics.to_dict` lays them out, with
        its label, folder and family; the baselines likewise."""
        return {
            "split": self.split,
            "split_kind": self.split_kind,
            "protocol": self.protocol,
            "targets": self.targets,
            "targets_seen": self.targets_seen,
            "runs": [
                {
                    "label": r.label,
                    "run": r.evaluation.run,
                    "architecture": r.architecture,
                    **r.metrics.to_dict(),
                }
                for r in self.runs
            ],
            "baselines": {name: m.to_dict() for name, m in self.baselines.items()},
        }


def check_comparable(identities: Sequence[RunIdentity]) -> None:
    """Raise :class:`InputError` naming the first run that differs from the first one."""
    first = identities[0]
    for other in identities[1:]:
        why = first.difference(other)
        if why is not None:
            raise InputError(
                f"cannot compare runs {first.run} and {other.run}: {why}; compare runs trained "
                "on the same prepared dataset with the same split settings"
            )


def run_labels(run_dirs: Sequence[Path]) -> list[str]:
    """Each run's folder name, or its whole path where two runs share a name."""
    names = [Path(r).name for r in run_dirs]
    return [
        name if names.count(name) == 1 else str(r) for name, r in zip(names, run_dirs, strict=True)
    ]


def compare_runs(
    run_dirs: Sequence[Path],
    *,
    split: str = "test",
    baselines: Sequence[str] = (),
    device: str = "cpu",
    ks: Sequence[int] | None = None,
    progress: bool | None = None,
) -> RunComparison:
    """Evaluate each run (as :func:`evaluate_run` does) on ``split`` with the same cut-offs
    (``ks``, else the first run's ``eval.ks``) and the baselines once; runs on other data or
    split otherwise are refused before any is evaluated. ``progress`` as in evaluate_run."""
    if not run_dirs:
        raise ValueError("no runs to compare")
    resolved = [Path(r).resolve() for r in run_dirs]
    twice = next((str(r) for i, r in enumerate(run_dirs) if resolved[i] in resolved[:i]), None)
    if twice is not None:
        raise InputError(f"run {twice} is given twice; compare each run once")
    identities = [RunIdentity.of(Path(r)) for r in run_dirs]
    check_comparable(identities)
    ks = ks or read_run_info(Path(run_dirs[0])).config.eval.ks
    reports = [
        evaluate_run(
            Path(r),
            split=split,
            baselines=baselines if i == 0 else (),
            device=device,
            ks=ks,
            progress=progress,
        )
        for i, r in enumerate(run_dirs)
    ]
    first = reports[0]
    return RunComparison(
        split=split,
        split_kind=first.split_kind,
        protocol=first.protocol,
        targets=first.targets,
        targets_seen=first.targets_seen,
        runs=[
            ComparedRun(label, ident.architecture, report.model, report)
            for label, ident, report in zip(run_labels(run_dirs), identities, reports, strict=True)
        ],
        baselines=first.baselines,
    )
