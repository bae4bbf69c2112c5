"""Self-describing run folders and checkpoints.

A run folder holds everything needed to use the model without the code that trained it::

    run.json            format version, influrec/torch versions, config, vocabulary sizes,
                        parameter count, training summary (best epoch, metric, seconds)
    config.toml         the experiment config, loadable with --config
    data/               the prepared dataset the model was trained on (vocabularies included)
    model.safetensors   the best weights (by the validation metric)
    metrics.jsonl       one JSON line per epoch
    checkpoints/epoch-NNNN/
        model.safetensors, trainer.pt (optimizer, schedule, RNG states; loaded weights_only),
        state.json (epoch, step, best metric so far, history)

Weights are safetensors and the rest JSON or ``torch.load(weights_only=True)``: loading a run
never executes pickled code.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from influrec import __version__
from influrec.config import ExperimentConfig
from influrec.errors import InputError
from influrec.models.transformer import BehaviorTransformer, build_model

RUN_FORMAT_VERSION = 1
RUN_FILE = "run.json"
MODEL_FILE = "model.safetensors"


def save_weights(model: torch.nn.Module, path: Path) -> None:
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(path))


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a weights file (safetensors: no code is run)."""
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read the model weights ({exc})") from exc


def load_weights(model: torch.nn.Module, path: Path) -> None:
    state = read_weights(path)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise InputError(
            f"{path}: weights do not fit this model "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def read_run_info(run_dir: Path) -> dict[str, Any]:
    """run.json of a run folder, checked for existence and format version."""
    path = Path(run_dir) / RUN_FILE
    if not path.exists():
        raise InputError(
            f"{run_dir}: not a run folder (no {RUN_FILE}); create one with `influrec train`"
        )
    try:
        info: dict[str, Any] = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: corrupted ({exc})") from exc
    version = info.get("format_version")
    if version != RUN_FORMAT_VERSION:
        raise InputError(
            f"{run_dir}: run format version {version} (influrec {info.get('influrec_version')}) "
            f"cannot be read by influrec {__version__} (format {RUN_FORMAT_VERSION}); retrain it"
        )
    return info


def load_model(
    run_dir: Path, *, weights: Path | None = None
) -> tuple[BehaviorTransformer, dict[str, Any]]:
    """The trained model of a run folder (best weights unless ``weights``), in eval mode."""
    info = read_run_info(run_dir)
    config = ExperimentConfig.from_dict(info["config"])
    model = build_model(
        config.model,
        n_items=info["n_items"],
        n_behaviors=info["n_behaviors"],
        feature_values=info.get("feature_values", 0),
        feature_width=info.get("feature_width", 1),
    )
    path = weights or Path(run_dir) / MODEL_FILE
    if not path.exists():
        raise InputError(
            f"{path}: missing; the run has no trained weights (did training finish an epoch?)"
        )
    load_weights(model, path)
    model.eval()
    return model, info


def checkpoint_dir(run_dir: Path, epoch: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"epoch-{epoch:04d}"


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints (those with a state.json), oldest first."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.exists():
        return []
    return sorted(p for p in folder.iterdir() if (p / "state.json").exists())


def save_checkpoint(
    run_dir: Path,
    *,
    epoch: int,
    model: torch.nn.Module,
    trainer_state: dict[str, Any],
    state: dict[str, Any],
    keep: int,
    protect: set[int],
) -> Path:
    """Write one epoch's checkpoint (state.json last, so a half-written one is ignored) and
    delete older ones beyond ``keep``, never those whose epoch is in ``protect``."""
    folder = checkpoint_dir(run_dir, epoch)
    folder.mkdir(parents=True, exist_ok=True)
    save_weights(model, folder / MODEL_FILE)
    torch.save(trainer_state, folder / "trainer.pt")
    write_json(folder / "state.json", state)
    existing = list_checkpoints(run_dir)
    for old in existing[: max(0, len(existing) - keep)]:
        if int(old.name.split("-")[1]) not in protect:
            shutil.rmtree(old, ignore_errors=True)
    return folder


def load_checkpoint(folder: Path, model: torch.nn.Module) -> tuple[dict[str, Any], dict[str, Any]]:
    """Restore weights into ``model``; returns (trainer_state, state)."""
    load_weights(model, folder / MODEL_FILE)
    try:
        trainer_state = torch.load(folder / "trainer.pt", weights_only=True)
        state = json.loads((folder / "state.json").read_text())
    except (OSError, RuntimeError, json.JSONDecodeError) as exc:
        raise InputError(f"{folder}: corrupted checkpoint ({exc})") from exc
    return trainer_state, state
