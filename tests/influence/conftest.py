from __future__ import annotations

import pytest

from influrec.config import load_config
from influrec.data.synthesize import synthesize_dataset
from influrec.data.synthetic import SynthConfig
from influrec.inference import Recommender
from influrec.training.loop import train
from tests_helpers import one_torch_thread


@pytest.fixture(scope="session")
def recommender(tmp_path_factory: pytest.TempPathFactory) -> Recommender:
    """A small model trained on synthetic data (time gaps and values on, so every path runs).

    Trained on one thread: the weights then do not depend on the machine's core count (float
    sums are split differently over threads), so every machine tests the same model."""
    run = tmp_path_factory.mktemp("influence") / "run"
    dataset = synthesize_dataset(SynthConfig(n_users=150, n_items=40, mean_events=20, seed=4))
    overrides = [
        "model.max_len=16",
        "model.d_model=16",
        "model.layers=2",
        "model.heads=2",
        "model.time_buckets=8",
        "model.use_value=true",
        "train.epochs=3",
        "train.batch_size=32",
        "eval.ks=[1,10]",
    ]
    with one_torch_thread():
        train(dataset, load_config(None, overrides), run, progress=False)
    return Recommender.load(run)
