"""Experiment trackers: each one a training callback (:mod:`influrec.training.callbacks`),
chosen by ``train.tracking`` and built by :func:`trackers`.

- ``tensorboard``: event files in the run's ``tensorboard/`` folder: per-epoch ``train/loss``,
  ``train/lr``, ``train/seconds`` and ``valid/METRIC@K`` (step = epoch), the best model's
  ``test/METRIC@K`` (step = epochs trained), and the config and run.json as text.
- ``mlflow``: one MLflow run per training (named after the run folder) in
  ``train.tracking_experiment``: the config as parameters (``model.d_model``, ...),
  per-epoch ``train/loss``, ``train/lr`` and ``valid/METRIC_at_K`` (MLflow names cannot hold
  ``@``), the best model's ``test/METRIC_at_K``, and run.json, config.toml, metrics.jsonl and
  model.safetensors as artefacts. The store is ``train.tracking_uri``, or an SQLite file in
  ``./mlruns`` (``mlruns/mlflow.db``, artefacts under ``mlruns/artifacts``).

Both packages are optional (``pip install 'influrec[tracking]'``); asking for a tracker whose
package is missing is an :class:`~influrec.errors.InputError` before training starts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from influrec import run as run_folder
from influrec.config import TrainConfig, config_to_toml
from influrec.errors import InputError
from influrec.training.callbacks import EpochEnd, TrainEnd, TrainingCallback, TrainStart

DEFAULT_MLFLOW_FOLDER = Path("mlruns")
ARTIFACTS = ("run.json", "config.toml", "metrics.jsonl", run_folder.MODEL_FILE)


def missing_package(tracker: str, package: str) -> InputError:
    return InputError(
        f"train.tracking asks for {tracker}, but the {package} package is not installed; "
        f"install it with pip install 'influrec[tracking]', or remove {tracker!r} from "
        "train.tracking"
    )


def epoch_scalars(epoch: EpochEnd) -> dict[str, float]:
    """``train/loss``, ``train/lr``, ``train/seconds`` and ``valid/METRIC@K`` of one epoch."""
    record = epoch.record
    scalars = {f"train/{k}": float(record[k]) for k in ("loss", "lr", "seconds") if k in record}
    return scalars | {f"valid/{name}": value for name, value in epoch.valid.items()}


class TensorBoardTracker(TrainingCallback):
    """Writes the run's scalars and texts to ``RUN/tensorboard`` (see the module doc)."""

    wants_test: ClassVar[bool] = True

    def __init__(self, train: TrainConfig) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise missing_package("tensorboard", "tensorboard") from None
        self.writer_type: Any = SummaryWriter
        self.writer: Any = None

    def on_train_start(self, start: TrainStart) -> None:
        self.writer = self.writer_type(str(start.run_dir / "tensorboard"))
        self.writer.add_text("config", _code(config_to_toml(start.config)), start.epoch)

    def on_epoch_end(self, epoch: EpochEnd) -> str | None:
        for name, value in epoch_scalars(epoch).items():
            self.writer.add_scalar(name, value, epoch.epoch)
        self.writer.flush()
        return None

    def on_train_end(self, end: TrainEnd) -> None:
        for name, value in (end.test or {}).items():
            self.writer.add_scalar(f"test/{name}", value, end.epochs_run)
        run_json = (end.run_dir / run_folder.RUN_FILE).read_text()
        self.writer.add_text("run.json", _code(run_json), end.epochs_run)
        self.writer.close()


def _code(text: str) -> str:
    """TensorBoard renders text as Markdown: indent it as a code block."""
    return "\n".join("    " + line for line in text.splitlines())


def _param_text(value: object) -> str:
    """A config value as an MLflow parameter: text as it is, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def mlflow_name(name: str) -> str:
    """A metric name MLflow accepts: ``valid/NDCG@10`` -> ``valid/NDCG_at_10``."""
    return name.replace("@", "_at_")


class MlflowTracker(TrainingCallback):
    """Logs the run to MLflow (see the module doc) through MLflow's client, no global state."""

    wants_test: ClassVar[bool] = True

    def __init__(self, train: TrainConfig) -> None:
        try:
            from mlflow.entities import Metric, Param
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise missing_package("mlflow", "mlflow") from None
        self.metric_type: Any = Metric
        self.param_type: Any = Param
        self.experiment = train.tracking_experiment
        self.artifacts: str | None = None
        if train.tracking_uri:
            self.uri = train.tracking_uri
        else:
            folder = DEFAULT_MLFLOW_FOLDER.resolve()
            self.uri = f"sqlite:///{folder / 'mlflow.db'}"
            self.artifacts = (folder / "artifacts").as_uri()
        self.client_type: Any = MlflowClient
        self.run_id = ""

    def on_train_start(self, start: TrainStart) -> None:
        if self.artifacts is not None:
            DEFAULT_MLFLOW_FOLDER.mkdir(exist_ok=True)
        self.client = self.client_type(tracking_uri=self.uri)
        found = self.client.get_experiment_by_name(self.experiment)
        experiment = (
            found.experiment_id
            if found is not None
            else self.client.create_experiment(self.experiment, artifact_location=self.artifacts)
        )
        run = self.client.create_run(experiment, run_name=start.run_dir.name)
        self.run_id = run.info.run_id
        self.client.set_tag(self.run_id, "influrec.run_dir", str(start.run_dir.resolve()))
        params = [
            self.param_type(f"{section}.{key}", _param_text(value))
            for section, table in start.config.to_dict().items()
            for key, value in table.items()
        ]
        self.client.log_batch(self.run_id, params=params)

    def _log(self, scalars: dict[str, float], step: int) -> None:
        now = int(time.time() * 1000)
        metrics = [
            self.metric_type(mlflow_name(name), value, now, step) for name, value in scalars.items()
        ]
        self.client.log_batch(self.run_id, metrics=metrics)

    def on_epoch_end(self, epoch: EpochEnd) -> str | None:
        self._log(epoch_scalars(epoch), epoch.epoch)
        return None

    def on_train_end(self, end: TrainEnd) -> None:
        test = {f"test/{name}": value for name, value in (end.test or {}).items()}
        self._log(test, end.epochs_run)
        if end.stopped is not None:
            self.client.set_tag(self.run_id, "influrec.stopped", end.stopped["reason"])
        for name in ARTIFACTS:
            if (end.run_dir / name).exists():
                self.client.log_artifact(self.run_id, str(end.run_dir / name))
        self.client.set_terminated(self.run_id, "FINISHED")


TRACKER_TYPES: dict[str, Callable[[TrainConfig], TrainingCallback]] = {
    "tensorboard": TensorBoardTracker,
    "mlflow": MlflowTracker,
}


def trackers(train: TrainConfig) -> list[TrainingCallback]:
    """The trackers ``train.tracking`` names, in its order (InputError: a package is missing)."""
    return [TRACKER_TYPES[name](train) for name in train.tracking]
