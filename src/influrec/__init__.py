"""influrec: behaviour-sequence recommendation with measured influence.

The public API, one name per stage of the pipeline and the types they return::

    from influrec import Recommender, explain, evaluate_run, prepare, run_pipeline, train

Names are imported on first use (PEP 562), so ``import influrec`` loads neither torch nor
pyarrow, and modules of the data layer may import ``influrec.__version__`` without a cycle.
See docs/python-api.md.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    # 1. data: read and prepare a log, or generate the synthetic shop
    "EventDataset": "influrec.data.dataset",
    "prepare": "influrec.data.dataset",
    "SynthConfig": "influrec.data.synthetic",
    "synthesize_dataset": "influrec.data.synthesize",
    # 2. train
    "ExperimentConfig": "influrec.config",
    "load_config": "influrec.config",
    "TrainResult": "influrec.training.loop",
    "train": "influrec.training.loop",
    # 3. evaluate
    "RunEvaluation": "influrec.evaluation.runs",
    "evaluate_run": "influrec.evaluation.runs",
    # 4. recommend and explain
    "History": "influrec.data.history",
    "Recommendation": "influrec.inference",
    "Recommender": "influrec.inference",
    "ExplainResult": "influrec.influence.results",
    "explain": "influrec.influence.api",
    "because": "influrec.influence.sentences",
    # all of it at once
    "PipelineResult": "influrec.pipeline",
    "run_pipeline": "influrec.pipeline",
    # what influrec raises on purpose
    "InputError": "influrec.errors",
}

__all__ = [
    "EventDataset",
    "ExperimentConfig",
    "ExplainResult",
    "History",
    "InputError",
    "PipelineResult",
    "Recommendation",
    "Recommender",
    "RunEvaluation",
    "SynthConfig",
    "TrainResult",
    "__version__",
    "because",
    "evaluate_run",
    "explain",
    "load_config",
    "prepare",
    "run_pipeline",
    "synthesize_dataset",
    "train",
]

if TYPE_CHECKING:
    from influrec.config import ExperimentConfig, load_config
    from influrec.data.dataset import EventDataset, prepare
    from influrec.data.history import History
    from influrec.data.synthesize import synthesize_dataset
    from influrec.data.synthetic import SynthConfig
    from influrec.errors import InputError
    from influrec.evaluation.runs import RunEvaluation, evaluate_run
    from influrec.inference import Recommendation, Recommender
    from influrec.influence.api import explain
    from influrec.influence.results import ExplainResult
    from influrec.influence.sentences import because
    from influrec.pipeline import PipelineResult, run_pipeline
    from influrec.training.loop import TrainResult, train


def __getattr__(name: str) -> Any:
    """Import a public name on first use (PEP 562) and keep it for the next lookups."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'influrec' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
