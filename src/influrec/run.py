"""A run folder: reading and writing its run.json (:class:`RunInfo`), its model, its
checkpoints and their training state, for the trainer and for everything that uses a run.

A run folder holds everything needed to use the model without the code that trained it::

    run.json            format version, influrec/torch versions, config, vocabulary sizes,
                        parameter count, training summary (best epoch, metric, seconds)
    config.toml         the experiment config, read by load_config
    data/               the prepared dataset the model was trained on (vocabularies included)
    model.safetensors   the best weights (by the validation metric)
    metrics.jsonl       one JSON line per epoch
    checkpoints/epoch-NNNN/
        model.safetensors, trainer.pt (optimizer, schedule, RNG states; loaded weights_only),
        state.json (epoch, step, best metric so far, learning-rate sum, history); a
        checkpoint's epoch is the one in its state.json, never parsed from the folder name
    checkpoints/epoch-NNNN-partial/
        the same, for an epoch train.max_minutes cut short (until a resume finishes it)

Weights are safetensors and the rest JSON or ``torch.load(weights_only=True)``: loading a run
never executes pickled code. A missing, truncated or hand-edited file is reported as a
:class:`~influrec.errors.DamagedRunError` that names the file and what to do.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pickle
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from influrec import __version__
from influrec.config import REMOVED_KEYS, ConfigError, ExperimentConfig
from influrec.data.dataset import EventDataset
from influrec.data.dataset_files import read_json_object
from influrec.errors import DamagedRunError, InputError
from influrec.folders import FolderKind
from influrec.models.protocol import SequenceModel
from influrec.models.registry import build_model

RUN_FORMAT_VERSION = 1
RUN_FILE = "run.json"
MODEL_FILE = "model.safetensors"
STATE_FILE = "state.json"
TRAINER_FILE = "trainer.pt"
RUN_FOLDER = FolderKind(
    "run folder",
    markers=(RUN_FILE,),
    contents=frozenset(
        {RUN_FILE, f"{RUN_FILE}.tmp", "config.toml", "data", MODEL_FILE, "metrics.jsonl"}
        | {"checkpoints", "tensorboard"}
    ),
)
"""A run folder (see :mod:`influrec.folders` for when one may be replaced or deleted)."""
RUN_REMEDY = "restore the run folder from a copy or train it again"
CHECKPOINT_REMEDY = (
    "delete this checkpoint folder to resume from the one before it, or train the run again"
)
RUN_KEYS: dict[str, type | tuple[type, ...]] = {
    "format_version": int,
    "config": dict,
    "n_items": int,
    "n_behaviors": int,
}
# ints; absent in older runs
OPTIONAL_RUN_KEYS = {"feature_values": 0, "feature_width": 1, "text_dim": 0}
STATE_KEYS: dict[str, type | tuple[type, ...]] = {
    "epoch": int,
    "step": int,
    "best_metric": (int, float),
    "best_epoch": int,
    "stale": int,
    "seconds": (int, float),
    "history": list,
}


def save_weights(model: SequenceModel, path: Path) -> None:
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(path))


def read_weights(path: Path, *, remedy: str = RUN_REMEDY) -> dict[str, torch.Tensor]:
    """The tensors of a weights file (safetensors: no code is run)."""
    if not path.exists():
        raise DamagedRunError(path, "missing (no trained weights)", remedy)
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise DamagedRunError(
            path, f"cannot read the model weights: truncated or not safetensors ({exc})", remedy
        ) from None


def load_weights(model: SequenceModel, path: Path, *, remedy: str = RUN_REMEDY) -> None:
    """Load ``path`` into ``model``; weights of other names or shapes are a damaged run."""
    state = read_weights(path, remedy=remedy)
    expected = model.state_dict()
    missing = [name for name in expected if name not in state]
    unexpected = [name for name in state if name not in expected]
    misfit = [
        f"{name} {tuple(state[name].shape)} in the file, {tuple(tensor.shape)} expected"
        for name, tensor in expected.items()
        if name in state and state[name].shape != tensor.shape
    ]
    if missing or unexpected or misfit:
        detail = "; ".join(misfit[:2]) or f"missing {missing[:3]}, unexpected {unexpected[:3]}"
        raise DamagedRunError(
            path,
            f"weights do not fit the model described by {RUN_FILE} ({detail}); one of the two "
            "was edited or comes from another run",
            remedy,
        )
    model.load_state_dict(state)


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


@dataclass(frozen=True, kw_only=True)
class RunInfo:
    """What run.json records about a run (fields in the file's order).

    The config and the vocabulary sizes rebuild the model; the rest summarises the training.
    A run.json written before a summary field existed reads with that field's default.
    """

    format_version: int = RUN_FORMAT_VERSION
    influrec_version: str | None = None
    torch_version: str | None = None
    python_version: str | None = None
    config: ExperimentConfig
    n_items: int  # real items (index 0 is padding)
    n_behaviors: int  # real behaviours (index 0 is padding)
    feature_values: int = 0  # item-feature vocabulary size (0: no item features)
    feature_width: int = 1  # feature values per item
    text_dim: int = 0  # size of the item text vectors (0: no item text)
    parameters: int | None = None  # trainable parameters
    split: dict[str, Any] = field(default_factory=dict)  # kind, its settings, target counts
    training_windows: int | None = None  # input windows per epoch
    dataset: dict[str, Any] = field(default_factory=dict)  # users, items, events, source
    epochs_run: int = 0
    best_epoch: int = 0  # 0: no epoch ended yet
    best_valid: dict[str, float] | None = None  # {monitored metric: its best value}
    train_seconds: float = 0.0
    averaged: dict[str, Any] | None = None  # epochs averaged, their valid metric, kept or not
    finished: bool = False
    # why training stopped: {"reason": "epochs" | "patience" | "max_minutes" | "callback",
    # "epoch", "step"} ("callback": + "by", the callback class, and "why", its sentence)
    # (+ "batch", "batches_per_epoch" when the time budget cut the last epoch short)
    stopped: dict[str, Any] | None = None
    device: str | None = None
    # how this run came from others, oldest first: each step a dict with "kind" ("update",
    # "forget", ...), "parent" (the run folder it started from), "at" (ISO UTC time) and the
    # step's own facts (events added, time span, users forgotten); [] for a run trained from
    # scratch
    lineage: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of run.json."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["config"] = self.config.to_dict()
        return data

    @property
    def model_sizes(self) -> dict[str, int]:
        """``build_model``'s size keywords for this run."""
        return {
            "n_items": self.n_items,
            "n_behaviors": self.n_behaviors,
            "feature_values": self.feature_values,
            "feature_width": self.feature_width,
            "text_dim": self.text_dim,
        }


def write_run_info(run_dir: Path, info: RunInfo) -> None:
    """Write ``run_dir``/run.json (atomically: a reader never sees half a file)."""
    write_json(Path(run_dir) / RUN_FILE, info.to_dict())


def read_run_info(run_dir: Path) -> RunInfo:
    """run.json of a run folder, checked for existence, format version, keys and config."""
    path = Path(run_dir) / RUN_FILE
    if not path.exists():
        if not Path(run_dir).is_dir():
            raise InputError(f"{run_dir}: no such run folder")
        raise InputError(
            f"{run_dir}: not a run folder (no {RUN_FILE}); create one with `influrec train`"
        )
    info = read_json_object(path, {"format_version": int}, RUN_REMEDY)
    version = info["format_version"]
    if version != RUN_FORMAT_VERSION:
        raise InputError(
            f"{run_dir}: run format version {version} (influrec {info.get('influrec_version')}) "
            f"cannot be read by influrec {__version__} (format {RUN_FORMAT_VERSION}); retrain it"
        )
    info = read_json_object(path, RUN_KEYS, RUN_REMEDY)
    for key, default in OPTIONAL_RUN_KEYS.items():
        value = info.setdefault(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise DamagedRunError(
                path, f"{key} must be a whole number >= 0, got {value!r}", RUN_REMEDY
            )
    known = {f.name for f in dataclasses.fields(RunInfo)} - {"config"}
    fields = {k: v for k, v in info.items() if k in known and v is not None}
    return RunInfo(config=_run_config(info, path), **fields)


def _run_config(info: dict[str, Any], path: Path) -> ExperimentConfig:
    """The experiment config recorded in run.json (read from ``path``)."""
    try:
        return ExperimentConfig.from_dict(info["config"])
    except InputError as exc:
        if (
            isinstance(exc, ConfigError) and exc.key in REMOVED_KEYS
        ):  # an intact run of an older influrec, not a damaged one
            raise InputError(
                f"{path}: the run used a setting this influrec no longer has ({exc}); "
                "train it again"
            ) from None
        raise DamagedRunError(path, f"holds an invalid config ({exc})", RUN_REMEDY) from None


def load_model(run_dir: Path, *, weights: Path | None = None) -> tuple[SequenceModel, RunInfo]:
    """The trained model of a run folder (best weights unless ``weights``), in eval mode."""
    info = read_run_info(run_dir)
    try:
        model = build_model(info.config.model, **info.model_sizes)
    except ConfigError as exc:  # an architecture this installation does not register
        raise DamagedRunError(Path(run_dir) / RUN_FILE, str(exc), RUN_REMEDY) from None
    path = weights or Path(run_dir) / MODEL_FILE
    if not path.exists():
        if weights is None and not saved_checkpoints(run_dir):
            raise InputError(
                f"{run_dir}: the run has no trained weights: its training stopped before the "
                "first epoch ended; delete the folder and train it again"
            )
        raise DamagedRunError(path, "missing", RUN_REMEDY)
    load_weights(model, path)
    model.eval()
    return model, info


def load_run_dataset(run_dir: Path, info: RunInfo) -> EventDataset:
    """The run's copy of its dataset (``data/``), checked against the sizes in run.json."""
    folder = Path(run_dir) / "data"
    if not folder.is_dir():
        raise DamagedRunError(folder, "missing (the run's copy of its dataset)", RUN_REMEDY)
    dataset = EventDataset.load(folder, remedy=RUN_REMEDY)
    sizes = {"n_items": dataset.n_items, "n_behaviors": len(dataset.behaviors) - 1}
    for key, actual in sizes.items():
        if getattr(info, key) != actual:
            raise DamagedRunError(
                Path(run_dir) / RUN_FILE,
                f"says {key}={getattr(info, key)} but the run's dataset (data/) has {actual}",
                RUN_REMEDY,
            )
    return dataset


def load_run(run_dir: Path) -> tuple[SequenceModel, RunInfo, EventDataset]:
    """A run's model (best weights, eval mode), its run.json and its dataset, all checked
    (the sizes in run.json against the dataset before the weights against the sizes)."""
    dataset = load_run_dataset(run_dir, read_run_info(run_dir))
    model, info = load_model(run_dir)
    return model, info, dataset


def checkpoint_dir(run_dir: Path, epoch: int, *, partial: bool = False) -> Path:
    """Where a new checkpoint of ``epoch`` is written (read epochs from state.json, not names);
    ``partial``: of an epoch the time budget cut short (``epoch-NNNN-partial``)."""
    return Path(run_dir) / "checkpoints" / f"epoch-{epoch:04d}{'-partial' if partial else ''}"


@dataclass(frozen=True)
class Checkpoint:
    """A saved checkpoint, described by its state.json (never by its folder's name)."""

    folder: Path
    epoch: int  # epochs trained when it was saved
    step: int  # optimizer steps taken when it was saved
    lr_sum: float | None  # learning rate summed over those steps; None in runs that predate it

    @property
    def weights(self) -> Path:
        return self.folder / MODEL_FILE


def read_checkpoint_state(folder: Path) -> dict[str, Any]:
    """A checkpoint's state.json, checked for its keys and for values a trainer can write."""
    path = Path(folder) / STATE_FILE
    state = read_json_object(path, STATE_KEYS, CHECKPOINT_REMEDY)
    epoch, step, stale = state["epoch"], state["step"], state["stale"]
    if not (epoch >= 1 and step >= 0 and 0 <= stale <= epoch and len(state["history"]) == epoch):
        problem = (
            f"holds epoch {epoch}, step {step}, stale {stale} and {len(state['history'])} "
            "epochs of history, which no training writes"
        )
        raise DamagedRunError(path, problem, CHECKPOINT_REMEDY)
    return state


def saved_checkpoints(run_dir: Path) -> list[Checkpoint]:
    """Complete checkpoints (those with a state.json), oldest epoch first."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        if (path / STATE_FILE).exists():
            state = read_checkpoint_state(path)
            found.append(Checkpoint(path, state["epoch"], state["step"], _lr_sum(state)))
    return sorted(found, key=lambda c: (c.epoch, c.step))


def _lr_sum(state: dict[str, Any]) -> float | None:
    """A state's learning-rate sum; None where it was never recorded (older runs, or a resume
    of one) or is not a finite number."""
    value = state.get("lr_sum")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def last_checkpoint(run_dir: Path) -> Checkpoint:
    """The checkpoint a resumed run continues from (InputError when there is none)."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise InputError(f"{run_dir}: nothing to resume: no such run folder")
    read_run_info(run_dir)
    saved = saved_checkpoints(run_dir)
    if not saved:
        raise InputError(
            f"{run_dir}: nothing to resume: no checkpoint was saved (training stopped before "
            "its first epoch ended); delete the folder and train again"
        )
    return saved[-1]


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Folders of the complete checkpoints, oldest epoch first."""
    return [c.folder for c in saved_checkpoints(run_dir)]


def save_checkpoint(
    run_dir: Path,
    *,
    epoch: int,
    model: SequenceModel,
    trainer_state: dict[str, Any],
    state: dict[str, Any],
    keep: int,
    protect: set[int],
    partial: bool = False,
) -> Path:
    """Write one epoch's checkpoint (state.json last, so a half-written one is ignored) and
    delete older ones beyond ``keep``, never those whose epoch is in ``protect``. A
    ``partial`` one (of an epoch cut short) is deleted when its epoch's full one is written."""
    folder = checkpoint_dir(run_dir, epoch, partial=partial)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / STATE_FILE).unlink(missing_ok=True)  # a folder written again is incomplete
    save_weights(model, folder / MODEL_FILE)
    torch.save(trainer_state, folder / TRAINER_FILE)
    write_json(folder / STATE_FILE, state)
    if not partial:
        shutil.rmtree(checkpoint_dir(run_dir, epoch, partial=True), ignore_errors=True)
    existing = saved_checkpoints(run_dir)
    for old in existing[: max(0, len(existing) - keep)]:
        if old.epoch not in protect:
            shutil.rmtree(old.folder, ignore_errors=True)
    return folder


def load_checkpoint(folder: Path, model: SequenceModel) -> tuple[dict[str, Any], dict[str, Any]]:
    """Restore weights into ``model``; returns (trainer_state, state), both checked."""
    state = read_checkpoint_state(folder)
    load_weights(model, folder / MODEL_FILE, remedy=CHECKPOINT_REMEDY)
    path = folder / TRAINER_FILE
    if not path.exists():
        raise DamagedRunError(path, "missing", CHECKPOINT_REMEDY)
    try:
        trainer_state = torch.load(path, weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        # torch's own message advises weights_only=False, which would run pickled code
        raise DamagedRunError(
            path, f"cannot be read as a trainer state ({type(exc).__name__})", CHECKPOINT_REMEDY
        ) from None
    keys = ("optimizer", "schedule", "torch_rng")
    if not isinstance(trainer_state, dict) or any(k not in trainer_state for k in keys):
        raise DamagedRunError(path, f"lacks some of {list(keys)}", CHECKPOINT_REMEDY)
    return trainer_state, state
