from __future__ import annotations

import numpy as np
import torch
from test_attribution import user_history

from influrec.inference import Recommender
from influrec.influence.attribution import leave_one_out
from influrec.influence.engine import Scorer, without
from influrec.influence.faithfulness import better, planted_cause_recovery, user_faithfulness
from influrec.influence.measurement import Rank


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


def test_planted_cause_recovery_counts_cases_in_the_window(recommender: Recommender) -> None:
    data = recommender.data
    truth = recommender.dataset.ground_truth
    assert truth is not None
    rows = {int(r): i for i, r in enumerate(recommender.dataset.column("row").tolist())}
    caused = np.array([rows[int(r)] for r in truth.column("row").to_pylist()[:20]])
    causes = np.array([rows[int(r)] for r in truth.column("cause_row").to_pylist()[:20]])
    found = planted_cause_recovery(
        Scorer(recommender.model), data, caused, causes, ["loo", "random"]
    )
    assert 0 < found["loo"]["cases"] <= 20 and found["loo"]["cases"] == found["random"]["cases"]
    assert 0.0 <= found["loo"]["precision@1"] <= 1.0
