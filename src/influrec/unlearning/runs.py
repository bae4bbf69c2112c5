"""``forget``: a new run folder in which chosen users' training data no longer shapes the model.

The new run holds the parent's dataset without the users' events (their ids stay in the user
vocabulary, so indices and the other users' splits are unchanged), and either

* the parent's weights after a bounded gradient ascent on the output side
  (:mod:`influrec.unlearning.ascent`; fast, approximate), or
* with ``exact``, a model trained from scratch on that dataset with the parent's config and
  seed (slow, exact).

Its run.json appends a ``{"kind": "forget", ...}`` step to the parent's lineage, naming the
users, the method and what it did; :func:`forgotten_users` reads them back, so ``recommend``
and ``explain`` can refuse them. The approximate run has no checkpoints (the parent's were
trained on the users' data and are not copied): TracIn and resumed training need a run
trained from scratch (``exact``).
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from influrec import run as run_folder
from influrec.data.dataset import EventDataset
from influrec.data.sequences import SequenceData, training_windows
from influrec.data.splits import make_split
from influrec.data_influence.cleaning import remove_events
from influrec.errors import InputError
from influrec.folders import check_output_dir, new_folder, remove_dir
from influrec.models.protocol import SequenceModel
from influrec.unlearning.ascent import AscentReport, AscentSettings, gradient_ascent, windows_of

FORGET = "forget"  # the lineage kind


@dataclass
class ForgetResult:
    """What ``forget`` wrote and did."""

    out_dir: Path  # the new run folder
    users: list[str]  # the users forgotten by this step
    method: str  # "gradient-ascent" or "retrain"
    events_removed: int  # their events, left out of the new run's dataset
    seconds: float  # wall time of the step (writing included)
    ascent: AscentReport | None = None  # the ascent's report (None for a retrain)


def forgotten_users(info: run_folder.RunInfo) -> dict[str, dict[str, Any]]:
    """Every user a ``forget`` step of the run's lineage removed, with that step."""
    found: dict[str, dict[str, Any]] = {}
    for step in info.lineage:
        if isinstance(step, dict) and step.get("kind") == FORGET:
            for user in step.get("users", []):
                found[str(user)] = step
    return found


def user_indices(
    dataset: EventDataset, info: run_folder.RunInfo, users: Sequence[str], *, where: Path
) -> np.ndarray:
    """Indices (1..U) of ``users``; InputError for none, an unknown or a forgotten one."""
    if not users:
        raise InputError("name at least one user to forget")
    ids = dataset.users.column("user_id").to_pylist()
    index = {str(u): i + 1 for i, u in enumerate(ids)}
    gone = forgotten_users(info)
    out = []
    for user in dict.fromkeys(users):
        if user in gone:
            raise InputError(
                f"user {user!r} was already forgotten by {where} (at {gone[user].get('at')})"
            )
        if user not in index:
            shown = ", ".join(repr(str(u)) for u in ids[:3])
            raise InputError(
                f"unknown user {user!r}: not in the dataset of {where} (its users are ids like "
                f"{shown}); check the id"
            )
        out.append(index[user])
    return np.array(out, np.int64)


def dataset_without(dataset: EventDataset, users: np.ndarray, note: dict[str, Any]) -> EventDataset:
    """``dataset`` without any event of ``users`` (indices); vocabularies kept."""
    owner = dataset.events.column("user_idx")
    rows = np.flatnonzero(
        pc.is_in(owner, pa.array(users, owner.type)).to_numpy(zero_copy_only=False)
    )
    return remove_events(dataset, rows, note=note)


def forget(
    run_dir: Path,
    users: Sequence[str],
    out_dir: Path,
    *,
    settings: AscentSettings | None = None,
    exact: bool = False,
    overwrite: bool = False,
    progress: bool | None = None,
) -> ForgetResult:
    """Write ``out_dir``: the run ``run_dir`` with ``users`` forgotten (see the module
    docstring). ``out_dir`` is checked before any work and written atomically; it may not be
    ``run_dir``. ``settings`` bound the ascent (ignored with ``exact``)."""
    started = time.perf_counter()
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    info = run_folder.read_run_info(run_dir)
    check_output_dir(out_dir, run_folder.RUN_FOLDER, overwrite=overwrite, inputs=[run_dir])
    dataset = run_folder.load_run_dataset(run_dir, info)
    chosen = user_indices(dataset, info, users, where=run_dir)
    names = [str(u) for u in dataset.users.column("user_id").take(pa.array(chosen - 1)).to_pylist()]
    step: dict[str, Any] = {
        "kind": FORGET,
        "parent": str(run_dir),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "users": names,
        "method": "retrain" if exact else "gradient-ascent",
    }
    reduced = dataset_without(dataset, chosen, note={"edit": FORGET, "users": names})
    step["events_removed"] = dataset.events.num_rows - reduced.events.num_rows
    report = None
    if exact:
        trained = _retrain(reduced, info, out_dir, overwrite=overwrite, progress=progress)
    else:
        model, report = _ascend(run_dir, info, dataset, chosen, settings or AscentSettings())
        step.update(_facts(report))
    step["seconds"] = round(time.perf_counter() - started, 2)
    lineage = [*info.lineage, step]
    if exact:
        run_folder.write_run_info(out_dir, dataclasses.replace(trained, lineage=lineage))
    else:
        _write_run(run_dir, out_dir, info, reduced, model, lineage, overwrite=overwrite)
    return ForgetResult(
        out_dir, names, step["method"], step["events_removed"], step["seconds"], report
    )


def _facts(report: AscentReport) -> dict[str, Any]:
    """The ascent's report as lineage facts (losses in nats per target)."""
    return {
        "steps": report.steps,
        "stopped": report.stopped,
        "forget_loss": [round(v, 4) for v in report.forget_loss],
        "retain_loss": [round(v, 4) for v in report.retain_loss],
        "heldout_loss": round(report.heldout_loss, 4),
        "seen_loss": round(report.seen_loss, 4),
        "target_loss": round(report.target_loss, 4),
        "change": round(report.change, 5),
        "parameters": sorted({_group(name) for name in report.parameters}),
    }


def _group(name: str) -> str:
    """A parameter's layer: ``blocks.1`` for ``blocks.1.attn.qkv.weight``, ``ln_final``..."""
    parts = name.split(".")
    return ".".join(parts[:2]) if parts[0] == "blocks" else parts[0]


def _ascend(
    run_dir: Path,
    info: run_folder.RunInfo,
    dataset: EventDataset,
    chosen: np.ndarray,
    settings: AscentSettings,
) -> tuple[SequenceModel, AscentReport]:
    """The parent's model with the ``chosen`` users unlearned, and what the ascent did."""
    model, _ = run_folder.load_model(run_dir)
    data = SequenceData.from_dataset(dataset)
    split = make_split(data, info.config.data)
    windows = training_windows(data, split.train, max_len=info.config.model.max_len)
    forget_windows = windows_of(windows, data, chosen)
    others = np.setdiff1d(np.unique(data.user[windows[0]]), chosen)
    rng = np.random.default_rng(settings.seed)
    sample = rng.choice(others, min(settings.retain_users, len(others)), replace=False)
    retain = windows_of(windows, data, sample)
    valid = split.valid[np.isin(data.user[split.valid], sample)]
    seen = np.isin(valid - 1, split.train)  # their last training target, just before
    heldout = (valid[seen], valid[seen] - 1)
    report = gradient_ascent(
        model, data, forget=forget_windows, retain=retain, heldout=heldout, settings=settings
    )
    model.eval()
    return model, report


def _retrain(
    reduced: EventDataset,
    info: run_folder.RunInfo,
    out_dir: Path,
    *,
    overwrite: bool,
    progress: bool | None,
) -> run_folder.RunInfo:
    """Train ``reduced`` from scratch into ``out_dir`` with the parent's config (and seed)."""
    from influrec.training.loop import train

    if overwrite and out_dir.exists():
        remove_dir(out_dir, run_folder.RUN_FOLDER)
    train(reduced, info.config, out_dir, progress=progress)
    return run_folder.read_run_info(out_dir)


def _write_run(
    run_dir: Path,
    out_dir: Path,
    info: run_folder.RunInfo,
    reduced: EventDataset,
    model: SequenceModel,
    lineage: list[dict[str, Any]],
    *,
    overwrite: bool,
) -> None:
    """The approximate run folder: the parent's run.json (new lineage, dataset counts and
    split sizes), config.toml, the reduced dataset and the unlearned weights."""
    data = SequenceData.from_dataset(reduced)
    split = make_split(data, info.config.data)
    new_info = dataclasses.replace(
        info,
        lineage=lineage,
        split={**info.split, **split.sizes()},
        dataset={
            **info.dataset,
            "users": reduced.stats.get("users"),
            "events": reduced.stats.get("events"),
        },
    )
    with new_folder(out_dir, run_folder.RUN_FOLDER, overwrite=overwrite, inputs=[run_dir]) as tmp:
        (tmp / "data").mkdir()
        reduced.write_files(tmp / "data")
        shutil.copyfile(run_dir / "config.toml", tmp / "config.toml")
        run_folder.save_weights(model, tmp / run_folder.MODEL_FILE)
        run_folder.write_run_info(tmp, new_info)
