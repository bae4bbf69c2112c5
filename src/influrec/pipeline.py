"""The whole path in one function: prepare -> train -> evaluate -> recommend and explain.

    from influrec import SynthConfig, run_pipeline, synthesize_dataset
    result = run_pipeline(synthesize_dataset(SynthConfig(n_users=200)), "out")
    result.evaluation.model.unmasked["NDCG@10"], result.explanation.recommendations[0].events

Each stage is a public function you can also call on its own (see docs/python-api.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from influrec.config import ExperimentConfig, load_config
from influrec.data.dataset import DATASET_FOLDER, EventDataset, prepare
from influrec.data.synthesize import synthesize_dataset
from influrec.data.synthetic import SynthConfig
from influrec.errors import InputError
from influrec.evaluation.runs import RunEvaluation, evaluate_run
from influrec.folders import FolderKind, check_output_dir, remove_dir
from influrec.inference import Recommender
from influrec.influence.api import explain
from influrec.influence.results import ExplainResult
from influrec.run import RUN_FOLDER
from influrec.training.loop import TrainResult, train

REPORT_FILE = "report.html"  # the demo's report, beside data/ and run/
PIPELINE_FOLDER = FolderKind(
    "demo folder",
    markers=tuple(f"data/{name}" for name in DATASET_FOLDER.markers),
    contents=frozenset({"data", "run", REPORT_FILE}),
)
"""What :func:`run_pipeline` writes into ``out_dir``: the dataset in data/, the run in run/
(and ``influrec demo`` its report)."""


@dataclass(frozen=True)
class PipelineResult:
    """What each stage of :func:`run_pipeline` produced."""

    dataset: EventDataset  # the prepared events (saved in out_dir/data)
    run_dir: Path  # the trained run folder (out_dir/run)
    training: TrainResult  # epochs, best epoch, validation NDCG@10, seconds
    evaluation: RunEvaluation  # test split, full ranking, the model and the baselines
    recommender: Recommender  # the trained run, loaded: recommend, user_history, ...
    user_id: str  # the user explained
    explanation: ExplainResult  # its top k, every past event's effect (loo, rank margin)


def run_pipeline(
    data: EventDataset | SynthConfig | Path | str,
    out_dir: Path | str,
    *,
    config: ExperimentConfig | None = None,
    fmt: str | None = None,
    user_id: str | None = None,
    k: int = 10,
    baselines: Sequence[str] = ("popularity",),
    overwrite: bool = False,
    progress: bool | None = None,
) -> PipelineResult:
    """Prepare ``data``, train on it into ``out_dir``/run, evaluate on the test split (with
    ``baselines``), and explain the top ``k`` of ``user_id`` (default: the first user).

    ``data`` is a prepared dataset, a synthetic config, a prepared dataset folder, or a log
    file in format ``fmt``. ``out_dir`` must be missing, empty or (with ``overwrite``) an
    earlier pipeline's folder; that is checked before any work. ``progress``: training's
    lines and bars and the evaluation's bars (``None``: only where stderr is a terminal).
    """
    out_dir = Path(out_dir)
    check_output_dir(out_dir, PIPELINE_FOLDER, overwrite=overwrite)
    check_output_dir(out_dir / "run", RUN_FOLDER, overwrite=overwrite)
    dataset = load_events(data, fmt=fmt)  # 1. prepare
    dataset.save(out_dir / "data", overwrite=overwrite)
    run_dir = out_dir / "run"
    remove_dir(run_dir, RUN_FOLDER)
    training = train(dataset, config or load_config(), run_dir, progress=progress)  # 2. train
    evaluation = evaluate_run(  # 3. evaluate
        run_dir, split="test", baselines=baselines, progress=False if progress is False else None
    )
    recommender = Recommender.load(run_dir)  # 4. recommend and explain
    user_id = user_id or str(dataset.users.column("user_id")[0].as_py())
    history = recommender.user_history(user_id)
    explanation = explain(recommender, history, k=k, method="loo", measure="margin")
    return PipelineResult(dataset, run_dir, training, evaluation, recommender, user_id, explanation)


def load_events(
    data: EventDataset | SynthConfig | Path | str, *, fmt: str | None = None
) -> EventDataset:
    """The prepared dataset ``data`` names: itself, a synthetic one generated from a
    :class:`SynthConfig`, a prepared dataset folder, or a log file read as ``fmt``."""
    if isinstance(data, EventDataset):
        return data
    if isinstance(data, SynthConfig):
        return synthesize_dataset(data)
    path = Path(data)
    if path.is_dir():
        return EventDataset.load(path)
    if fmt is None:
        raise InputError(f"{path}: a log file needs its format (e.g. fmt='movielens')")
    return prepare(path, fmt)
