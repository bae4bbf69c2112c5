from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from influrec.config import load_config
from influrec.config.sections import TRACKERS
from influrec.data.dataset import EventDataset
from influrec.data.synthesize import synthesize_dataset
from influrec.data.synthetic import SynthConfig
from influrec.errors import InputError
from influrec.evaluation.runs import evaluate_run
from influrec.training.loop import train
from influrec.training.tracking import TRACKER_TYPES

pytest.importorskip("mlflow")
pytest.importorskip("tensorboard")

TINY = [
    "model.max_len=12",
    "model.d_model=16",
    "model.layers=1",
    "train.batch_size=32",
    "train.warmup_steps=2",
    "train.epochs=2",
    "eval.ks=[1,5,10]",
]


@pytest.fixture(scope="module")
def dataset() -> EventDataset:
    return synthesize_dataset(SynthConfig(n_users=60, n_items=30, mean_events=10, seed=4))


def epochs_of(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_every_configured_name_has_a_tracker() -> None:
    assert tuple(TRACKER_TYPES) == TRACKERS


@pytest.mark.slow  # MLflow's import and its SQLite store's creation: about 30 s on a loaded machine
def test_a_run_logged_to_mlflow_reads_back_through_its_client(
    dataset: EventDataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)  # the default store: ./mlruns
    config = load_config(None, [*TINY, 'train.tracking=["mlflow"]'])
    run = tmp_path / "run"
    train(dataset, config, run, progress=False)
    epochs = epochs_of(run)
    test = evaluate_run(run, split="test").model.unmasked

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("influrec")
    assert experiment is not None
    (logged,) = client.search_runs([experiment.experiment_id])
    assert logged.info.run_name == "run" and logged.info.status == "FINISHED"
    assert logged.data.params["model.d_model"] == "16"
    assert logged.data.params["eval.ks"] == "[1, 5, 10]"
    history = client.get_metric_history(logged.info.run_id, "valid/NDCG_at_10")
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [
        (e["epoch"], e["valid"]["NDCG@10"]) for e in epochs
    ]
    losses = client.get_metric_history(logged.info.run_id, "train/loss")
    assert sorted(m.value for m in losses) == sorted(e["loss"] for e in epochs)
    assert logged.data.metrics["test/NDCG_at_10"] == pytest.approx(test["NDCG@10"])
    artifacts = {a.path for a in client.list_artifacts(logged.info.run_id)}
    assert {"run.json", "config.toml", "metrics.jsonl", "model.safetensors"} <= artifacts
    assert (tmp_path / "mlruns" / "artifacts").is_dir()


def test_a_run_logged_to_tensorboard_reads_back_from_its_event_file(
    dataset: EventDataset, tmp_path: Path
) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = load_config(None, [*TINY, 'train.tracking=["tensorboard"]'])
    run = tmp_path / "run"
    train(dataset, config, run, progress=False)
    epochs = epochs_of(run)
    test = evaluate_run(run, split="test").model.unmasked
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    valid = events.Scalars("valid/NDCG@10")
    assert [s.step for s in valid] == [e["epoch"] for e in epochs]
    assert [s.value for s in valid] == pytest.approx([e["valid"]["NDCG@10"] for e in epochs])
    loss = events.Scalars("train/loss")
    assert [s.value for s in loss] == pytest.approx([e["loss"] for e in epochs])
    assert [s.value for s in events.Scalars("test/NDCG@10")] == pytest.approx([test["NDCG@10"]])
    assert {"config/text_summary", "run.json/text_summary"} <= set(events.Tags()["tensors"])


@pytest.mark.parametrize(
    ("tracker", "module"), [("mlflow", "mlflow"), ("tensorboard", "tensorboard")]
)
def test_a_tracker_whose_package_is_missing_is_refused_before_training(
    dataset: EventDataset,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tracker: str,
    module: str,
) -> None:
    for name in [m for m in sys.modules if m == module or m.startswith(f"{module}.")]:
        monkeypatch.delitem(sys.modules, name)
    if module == "tensorboard":
        monkeypatch.delitem(sys.modules, "torch.utils.tensorboard", raising=False)
    monkeypatch.setitem(sys.modules, module, None)  # what an absent package imports as
    config = load_config(None, [*TINY, f'train.tracking=["{tracker}"]'])
    with pytest.raises(
        InputError,
        match=rf"asks for {tracker}, but the {module} package is not installed; "
        r"install it with pip install 'influrec\[tracking\]'",
    ):
        train(dataset, config, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
