"""What a search leaves in its folder: a table of every trial, the best configuration as a
TOML file a training config can be loaded from, and two plots.

``OUT/trials.csv``      number, state, validation NDCG@10, epochs, each searched key
``OUT/best.toml``       the best complete trial's whole configuration
``OUT/history.png``     optimisation history (each trial's value, and the best so far)
``OUT/importances.png`` parameter importances (fANOVA; needs two or more complete trials)
"""

from __future__ import annotations

import csv
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
BEST_FILE = "best.toml"
TRIALS_FILE = "trials.csv"
PLOTS = {"history": "history.png", "importances": "importances.png"}


@dataclass(frozen=True)
class TrialRow:
    """One trial of the study."""

    number: int
    state: str  # COMPLETE, PRUNED, FAIL, RUNNING
    value: float | None  # validation NDCG@10 of a complete trial
    epochs: int | None  # epochs trained
    params: dict[str, Any]


@dataclass(frozen=True)
class StudySummary:
    """Every trial, the best one, and the files written."""

    rows: list[TrialRow]
    best: TrialRow | None
    files: dict[str, Path] = field(default_factory=dict)  # what -> path
    notes: list[str] = field(default_factory=list)  # plots left out, and why

    @property
    def pruned(self) -> int:
        return sum(row.state == "PRUNED" for row in self.rows)


def trial_rows(study: Any) -> list[TrialRow]:
    return [
        TrialRow(t.number, t.state.name, t.value, t.user_attrs.get("epochs"), dict(t.params))
        for t in study.trials
    ]


def summarize(study: Any, out: Path) -> StudySummary:
    """Write the table, the best configuration and the plots of ``study`` into ``out``."""
    rows = trial_rows(study)
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    files: dict[str, Path] = {}
    notes: list[str] = []
    keys = sorted({key for row in rows for key in row.params})
    with (Path(out) / TRIALS_FILE).open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["number", "state", "valid_NDCG@10", "epochs", *keys])
        for row in rows:
            value = "" if row.value is None else f"{row.value:.6f}"
            params = [row.params.get(key, "") for key in keys]
            writer.writerow([row.number, row.state, value, row.epochs or "", *params])
    files["trials"] = Path(out) / TRIALS_FILE
    best = None
    if complete:
        best_trial = max(complete, key=lambda t: t.value)
        best = next(row for row in rows if row.number == best_trial.number)
        (Path(out) / BEST_FILE).write_text(best_trial.user_attrs["config"], encoding="utf-8")
        files["best"] = Path(out) / BEST_FILE
    else:
        notes.append("no trial completed: no best configuration")
    files.update(_plots(study, Path(out), len(complete), notes))
    return StudySummary(rows, best, files, notes)


def _plots(study: Any, out: Path, complete: int, notes: list[str]) -> dict[str, Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from optuna.visualization import matplotlib as optuna_plots
    except ImportError:
        notes.append("plots left out: matplotlib is not installed (pip install matplotlib)")
        return {}
    written: dict[str, Path] = {}
    makers: dict[str, Any] = {
        "history": optuna_plots.plot_optimization_history,
        "importances": optuna_plots.plot_param_importances,
    }
    for name, make in makers.items():
        if complete < (1 if name == "history" else 2):
            notes.append(f"{PLOTS[name]} left out: too few complete trials ({complete})")
            continue
        try:
            with warnings.catch_warnings():  # optuna marks its matplotlib plots experimental
                warnings.simplefilter("ignore")
                axes = make(study)
        except (ValueError, RuntimeError) as exc:  # e.g. importances of a constant value
            notes.append(f"{PLOTS[name]} left out: {exc}")
            continue
        axes.figure.savefig(out / PLOTS[name], dpi=100, bbox_inches="tight")
        plt.close(axes.figure)
        written[name] = out / PLOTS[name]
    return written
