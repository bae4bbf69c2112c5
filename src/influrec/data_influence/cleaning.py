"""Removing a prepared dataset's harmful training interactions (``denoise``).

Only training interactions are ever touched (never a validation or test target), and the
vocabularies are kept, so a cleaned dataset trains and evaluates like the original. (Injecting
random interactions, to measure how well influence finds noise, is a benchmark's job:
``bench/noise.py``.)
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from influrec.data.dataset import DATASET_FOLDER, EventDataset, check_output_dir
from influrec.data_influence.tracin import DataInfluence, TracInScores
from influrec.folders import new_folder

SCORES = ("context", "loss", "self", "harm")
"""How harm is judged: the checkpoint-weighted loss plus the harm done as context to the next
interaction (highest first; see :class:`TracInScores`), the loss alone (highest first), TracIn
self-influence (highest first), TracIn influence on the validation loss (most negative
first)."""
REMOVED_FILE = "removed.parquet"


def remove_events(
    dataset: EventDataset, events: np.ndarray, *, note: dict[str, Any]
) -> EventDataset:
    """The dataset without ``events`` (row indices); ``note`` is kept in its stats."""
    keep = np.ones(dataset.events.num_rows, bool)
    keep[events] = False
    stats = copy.deepcopy(dataset.stats)
    stats["events"] = int(keep.sum())
    stats.setdefault("edits", []).append({**note, "removed_events": int((~keep).sum())})
    return EventDataset(
        events=dataset.events.filter(pa.array(keep)),
        users=dataset.users,
        items=dataset.items,
        behaviors=dataset.behaviors,
        stats=stats,
        ground_truth=dataset.ground_truth,
        item_text=dataset.item_text,
    )


def signal(scores: TracInScores, by: str) -> np.ndarray:
    """The per-interaction values that ``by`` (one of :data:`SCORES`) ranks.

    For ``"context"``, an interaction with no next training interaction (each user's last one)
    gets the mean context harm of the others: judged by its loss alone, on the same scale.
    """
    if by == "context":
        context = scores.context
        if len(context) != len(scores.loss):
            raise ValueError("these TracIn scores have no context values")
        known = np.isfinite(context)
        fill = float(context[known].mean()) if known.any() else 0.0
        return scores.loss + np.where(known, context, fill)
    values = {"loss": scores.loss, "self": scores.self_influence, "harm": scores.validation}
    if by not in values:
        raise ValueError(f"unknown score {by!r}; known: {', '.join(SCORES)}")
    return values[by]


def worst(events: np.ndarray, scores: np.ndarray, *, fraction: float, by: str) -> np.ndarray:
    """The ``fraction`` of ``events`` that are most harmful by ``scores``: the highest for
    ``by="context"``, ``"loss"`` and ``"self"``, the most negative for ``by="harm"`` (see
    :data:`SCORES`)."""
    if by not in SCORES:
        raise ValueError(f"unknown score {by!r}; known: {', '.join(SCORES)}")
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    count = max(1, round(fraction * len(events)))
    order = np.argsort(scores if by == "harm" else -scores, kind="stable")
    return np.sort(events[order[:count]])


def denoise(
    run_dir: Path,
    out_dir: Path,
    *,
    fraction: float,
    by: str = "context",
    checkpoints: int = 0,
    overwrite: bool = False,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Write the run's dataset without its most harmful ``fraction`` of training interactions
    (TracIn over the run's checkpoints) to ``out_dir``, with ``removed.parquet`` listing them.
    Returns the report that is also stored in the new dataset's stats. ``out_dir`` is written
    atomically, under the rule of :mod:`influrec.folders` (never the run or its dataset).
    ``progress``: a bar over TracIn's passes (``None``: only where stderr is a terminal)."""
    inputs = [Path(run_dir), Path(run_dir) / "data"]  # the run's dataset is read
    check_output_dir(Path(out_dir), overwrite=overwrite, inputs=inputs)
    started = time.perf_counter()
    analysis = DataInfluence(run_dir, checkpoints=checkpoints)
    scores = analysis.tracin(validation=by == "harm", progress=progress)
    values = signal(scores, by)
    removed = worst(scores.events, values, fraction=fraction, by=by)
    rows = np.searchsorted(scores.events, removed)
    report = {
        "edit": "denoise",
        "source_run": str(run_dir),
        "by": by,
        "fraction": fraction,
        "training_interactions": len(scores.events),
        "checkpoints": scores.checkpoints,
        "seconds": round(time.perf_counter() - started, 2),
    }
    cleaned = remove_events(analysis.dataset, removed, note=report)
    behaviors = analysis.dataset.events.column("behavior").take(pa.array(removed))
    counts = pc.value_counts(behaviors).to_pylist()
    report["removed_by_behavior"] = {str(c["values"]): int(c["counts"]) for c in counts}
    report["removed_events"] = len(removed)
    cleaned.stats["edits"][-1] = {**report}
    listing = analysis.dataset.events.take(pa.array(removed)).select(
        ["user_id", "item_id", "behavior", "timestamp", "row"]
    )
    listing = listing.append_column("score", pa.array(values[rows], pa.float64()))
    with new_folder(Path(out_dir), DATASET_FOLDER, overwrite=overwrite, inputs=inputs) as tmp:
        cleaned.write_files(tmp)
        pq.write_table(listing, tmp / REMOVED_FILE)
    return report
