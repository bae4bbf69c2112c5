"""RunEvaluation: what evaluate_run returns and the JSON layout `influrec evaluate` prints."""

from __future__ import annotations

import json

from influrec.evaluation.protocol import Metrics
from influrec.evaluation.runs import RunEvaluation


def test_to_dict_puts_the_model_on_top_and_labels_both_conventions() -> None:
    model = Metrics(unmasked={"HR@10": 0.5, "NDCG@10": 0.25}, masked={"HR@10": 0.6, "NDCG@10": 0.3})
    popularity = Metrics(unmasked={"HR@10": 0.1}, masked={"HR@10": 0.2})
    report = RunEvaluation(
        run="runs/x",
        split="test",
        split_kind="leave_one_out",
        protocol="full ranking over all items",
        targets=40,
        targets_seen=0.125,
        model=model,
        baselines={"popularity": popularity},
    )
    out = report.to_dict()
    assert list(out) == [
        "run",
        "split",
        "split_kind",
        "protocol",
        "targets",
        "targets_seen",
        "HR@10",
        "NDCG@10",
        "seen_items_masked",
        "masked",
        "baselines",
    ]
    assert out["HR@10"] == 0.5 and out["seen_items_masked"] is False
    assert out["masked"] == {"HR@10": 0.6, "NDCG@10": 0.3, "seen_items_masked": True}
    assert out["baselines"] == {
        "popularity": {
            "HR@10": 0.1,
            "seen_items_masked": False,
            "masked": {"HR@10": 0.2, "seen_items_masked": True},
        }
    }
    json.dumps(out)


def test_behavior_and_baselines_appear_only_when_measured() -> None:
    metrics = Metrics(unmasked={"HR@1": 1.0}, masked={"HR@1": 1.0})
    bare = RunEvaluation("r", "valid", "global_temporal", "full", 3, 0.0, metrics)
    assert "behavior" not in bare.to_dict() and "baselines" not in bare.to_dict()
    with_head = RunEvaluation(
        "r", "valid", "global_temporal", "full", 3, 0.0, metrics, behavior={"accuracy": 0.5}
    )
    assert with_head.to_dict()["behavior"] == {"accuracy": 0.5}
    assert metrics.headline(mask_seen=True) == {"HR@1": 1.0, "seen_items_masked": True}
