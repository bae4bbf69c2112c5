from __future__ import annotations

import numpy as np
import pytest
import torch

from influrec.config import load_config
from influrec.data.synthesize import synthesize_dataset
from influrec.data.synthetic import SynthConfig
from influrec.inference import Recommender
from influrec.influence.attribution import leave_one_out
from influrec.influence.engine import Scorer, without
from influrec.influence.faithfulness import better, planted_cause_recovery, user_faithfulness
from influrec.influence.measurement import Rank
from influrec.training.loop import train
from tests_helpers import one_torch_thread, user_history


def test_metrics_equal_direct_rescoring(recommender: Recommender) -> None:
    history = user_history(recommender, 12)
    scorer = Scorer(recommender.model)
    item = int(torch.argmax(recommender.scores([history])[0]))
    metrics = user_faithfulness(scorer, history, ["loo"])["loo"]
    order = leave_one_out(scorer, history, Rank(item)).ranked()  # what faithfulness explains
    deleted = scorer.scores(history, [without(12, order[:2])])[0]
    kept = scorer.scores(history, [np.sort(order[:2])])[0]
    assert np.isclose(metrics["DEL@2"], float(torch.softmax(deleted, -1)[item]), rtol=1e-5)
    assert np.isclose(metrics["INS@2"], float(torch.softmax(kept, -1)[item]), rtol=1e-5)
    rank = int((deleted >= deleted[item]).sum())
    assert np.isclose(metrics["CDCG@2"], 1 / np.log2(1 + rank))
    assert metrics["POS@1,2"] == float(rank <= 1) and metrics["POS@20,2"] == float(rank <= 20)
    assert better("DEL@1", 0.1, 0.2) and better("INS@1", 0.2, 0.1) and better("DEL-AUC", 0.1, 0.2)


def planted_pairs(rec: Recommender) -> tuple[np.ndarray, np.ndarray]:
    """(caused, cause) event indices into ``rec.data`` of every planted link."""
    truth = rec.dataset.ground_truth
    assert truth is not None
    rows = {int(r): i for i, r in enumerate(rec.dataset.column("row").tolist())}
    caused = np.array([rows[int(r)] for r in truth.column("row").to_pylist()])
    causes = np.array([rows[int(r)] for r in truth.column("cause_row").to_pylist()])
    return caused, causes


def test_planted_cause_recovery_counts_only_cases_in_the_window(recommender: Recommender) -> None:
    data, max_len = recommender.data, recommender.model.config.max_len
    caused, causes = (a[:30] for a in planted_pairs(recommender))
    before = caused - data.user_start[data.user[caused]]  # events before each caused one
    assert (before > max_len).sum() >= 5  # enough long histories to move causes out
    causes = np.where(np.arange(30) % 2 == 1, data.user_start[data.user[caused]], causes)
    in_window = caused - causes <= max_len  # planted causes are in it; first events often not
    assert 0 < in_window.sum() < 30
    with one_torch_thread():
        found = planted_cause_recovery(
            Scorer(recommender.model), data, caused, causes, ["loo", "random"]
        )
    assert found["loo"]["cases"] == found["random"]["cases"] == in_window.sum()


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Recommender:
    """A model that has learnt the planted links: each item has one successor, every event
    triggers one as often (so causes are common) and there is no taste to learn instead.
    The session model (3 epochs inside the warm-up) finds causes barely above chance."""
    run = tmp_path_factory.mktemp("planted") / "run"
    triggers = {f"trigger_{b}": 0.2 for b in ("view", "cart", "fav", "buy")}
    dataset = synthesize_dataset(
        SynthConfig(
            n_users=200,
            n_items=30,
            mean_events=20,
            seed=4,
            n_successors=1,
            taste_weight=0.0,
            **triggers,
        )
    )
    overrides = ["model.max_len=16", "model.d_model=16", "model.layers=2", "model.heads=2"]
    overrides += ["model.time_buckets=8", "train.epochs=10", "train.batch_size=32"]
    overrides += ["train.warmup_steps=5", "train.lr=3e-3", "eval.ks=[10]"]
    with one_torch_thread():  # about 2 s
        train(dataset, load_config(None, overrides), run, progress=False)
    return Recommender.load(run)


def test_leave_one_out_recovers_planted_causes_far_more_often_than_random(
    planted: Recommender,
) -> None:
    """Precision@1 of the planted cause over 200 caused events. A random ranking hits with
    probability 1 / (events the model sees), so its hits are a sum of Bernoullis with mean
    μ = Σ 1/L and variance Σ 1/L (1 - 1/L): about 24 ± 4.3. Leave-one-out (53 hits with this
    model) must beat μ by more than 4 standard deviations (chance < 1e-4) and beat the random
    method's own count; the random method must look like chance."""
    data, max_len = planted.data, planted.model.config.max_len
    caused, causes = (a[:200] for a in planted_pairs(planted))
    seen = np.minimum(caused - data.user_start[data.user[caused]], max_len)
    assert (caused - causes <= max_len).all()  # planted causes are at most 5 events back
    chance = 1 / seen
    mean, sd = chance.sum(), np.sqrt((chance * (1 - chance)).sum())
    with one_torch_thread():
        found = planted_cause_recovery(
            Scorer(planted.model), data, caused, causes, ["loo", "random"]
        )
    hits = {m: found[m]["precision@1"] * found[m]["cases"] for m in found}
    assert found["loo"]["cases"] == found["random"]["cases"] == 200
    assert abs(hits["random"] - mean) < 4 * sd, (hits, mean, sd)
    assert hits["loo"] > max(hits["random"], mean + 4 * sd), (hits, mean, sd)
