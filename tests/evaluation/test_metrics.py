from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from influrec.evaluation.metrics import behavior_metrics, ranking_metrics, ranks_from_scores


def test_ranking_metrics_match_hand_computed_values() -> None:
    got = ranking_metrics(np.array([0, 3, 12]), ks=(1, 10, 20))
    assert set(got) == {f"{m}@{k}" for m in ("HR", "NDCG", "MRR", "Recall") for k in (1, 10, 20)}
    assert got["HR@1"] == pytest.approx(1 / 3)
    assert got["NDCG@1"] == pytest.approx(1 / 3)
    assert got["HR@10"] == pytest.approx(2 / 3)
    assert got["NDCG@10"] == pytest.approx((1 + 1 / math.log2(5)) / 3)
    assert got["MRR@10"] == pytest.approx((1 + 1 / 4) / 3)
    assert got["HR@20"] == pytest.approx(1.0)
    assert got["NDCG@20"] == pytest.approx((1 + 1 / math.log2(5) + 1 / math.log2(14)) / 3)
    assert got["MRR@20"] == pytest.approx((1 + 1 / 4 + 1 / 13) / 3)
    assert all(got[f"Recall@{k}"] == got[f"HR@{k}"] for k in (1, 10, 20))


def test_ranking_metrics_accept_tensors_and_reject_empty_input() -> None:
    assert ranking_metrics(torch.tensor([0, 3, 12]), ks=(10,)) == ranking_metrics([0, 3, 12], (10,))
    with pytest.raises(ValueError, match="non-empty"):
        ranking_metrics(np.zeros(0, np.int64))
    with pytest.raises(ValueError, match="positive"):
        ranking_metrics(np.array([1]), ks=(0,))


def test_rank_counts_higher_and_tied_items_but_never_padding() -> None:
    scores = torch.tensor(
        [
            [100.0, 0.5, 0.9, 0.5, 0.1, 0.5],  # target 1: item 2 is higher, items 3 and 5 tie
            [100.0, 0.5, 0.9, 0.5, 0.1, 0.5],  # target 2: the best real item
        ]
    )
    ranks = ranks_from_scores(scores, torch.tensor([1, 2]))
    assert ranks.tolist() == [3, 0]
    assert ranks.dtype == torch.int64
    scores[:, 0] = -math.inf  # the padding score changes nothing
    assert ranks_from_scores(scores, torch.tensor([1, 2])).tolist() == [3, 0]


def test_all_tied_scores_give_the_worst_rank() -> None:
    scores = torch.zeros(2, 8)  # 7 real items, all tied
    assert ranks_from_scores(scores, torch.tensor([1, 7])).tolist() == [6, 6]


def test_excluded_items_leave_the_ranking_and_an_excluded_target_is_a_miss() -> None:
    scores = torch.tensor([[0.0, 0.5, 0.9, 0.5, 0.1, 0.5]] * 2)
    exclude = torch.zeros(2, 6, dtype=torch.bool)
    exclude[:, [2, 3]] = True
    exclude[1, 1] = True  # row 1 excludes its own target
    ranks = ranks_from_scores(scores, torch.tensor([1, 1]), exclude=exclude)
    assert ranks.tolist() == [1, 5]  # only item 5 is left tied; the excluded target gets I = 5
    assert ranking_metrics(ranks, ks=(5,))["HR@5"] == 0.5


def test_nan_target_score_is_a_miss() -> None:
    scores = torch.tensor([[0.0, math.nan, 0.2, 0.3]])
    assert ranks_from_scores(scores, torch.tensor([1])).tolist() == [3]


def test_ranks_match_a_slow_reference_with_many_ties() -> None:
    generator = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 4, (50, 21), generator=generator).float()  # ties everywhere
    targets = torch.randint(1, 21, (50,), generator=generator)
    exclude = torch.rand(50, 21, generator=generator) < 0.2
    got = ranks_from_scores(scores, targets, exclude=exclude)
    for b in range(50):
        t = int(targets[b])
        others = [j for j in range(1, 21) if j != t and not exclude[b, j]]
        expected = 20 if exclude[b, t] else sum(bool(scores[b, j] >= scores[b, t]) for j in others)
        assert int(got[b]) == expected


def test_ranks_reject_padding_targets_and_bad_masks() -> None:
    with pytest.raises(ValueError, match=r"in 1\.\.3"):
        ranks_from_scores(torch.zeros(1, 4), torch.tensor([0]))
    with pytest.raises(ValueError, match="bool"):
        ranks_from_scores(torch.zeros(1, 4), torch.tensor([1]), exclude=torch.zeros(1, 4))


LABELS = np.array([0, 0, 1, 2, 1])
PROBS = np.array(
    [
        [0.6, 0.3, 0.1],  # predicts 0, right
        [0.2, 0.5, 0.3],  # predicts 1, wrong
        [0.1, 0.7, 0.2],  # predicts 1, right
        [0.3, 0.3, 0.4],  # predicts 2, right
        [0.5, 0.3, 0.2],  # predicts 0, wrong
    ]
)


def test_behavior_metrics_match_hand_computed_values() -> None:
    got = behavior_metrics(PROBS, LABELS)
    assert got["accuracy"] == pytest.approx(3 / 5)
    # F1 per class: 0 -> 2/(2+1+1), 1 -> 2/(2+1+1), 2 -> 2/2
    assert got["macro_f1"] == pytest.approx((0.5 + 0.5 + 1.0) / 3)
    # AUC per class: 0 -> 4/6; 1 -> (3 + 0.5 + 0.5)/6 (one positive ties two negatives); 2 -> 1
    assert got["auc"] == pytest.approx((4 / 6 + 4 / 6 + 1.0) / 3)


def _pairwise_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    pos, neg = scores[positive], scores[~positive]
    wins = sum(float(p > n) + 0.5 * float(p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def test_auc_matches_brute_force_pairwise_count_and_skips_single_sided_classes() -> None:
    rng = np.random.default_rng(0)
    probs = np.round(rng.dirichlet(np.ones(4), size=60), 1)  # rounded: many ties
    labels = rng.integers(0, 3, size=60)  # class 3 never occurs: it has no positives
    expected = np.mean([_pairwise_auc(probs[:, c], labels == c) for c in range(3)])
    assert behavior_metrics(probs, labels)["auc"] == pytest.approx(expected)


def test_behavior_metrics_edge_cases() -> None:
    one_class = behavior_metrics(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([0, 0]))
    assert math.isnan(one_class["auc"])
    assert one_class["accuracy"] == 0.5
    # class 1 is only predicted, never a label, yet it counts: F1 = (2/3 + 0) / 2
    assert one_class["macro_f1"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        behavior_metrics(np.zeros((0, 2)), np.zeros(0, np.int64))
    with pytest.raises(ValueError, match=r"in 0\.\.1"):
        behavior_metrics(np.zeros((1, 2)), np.array([2]))


def test_ranking_metrics_agree_with_torchmetrics_retrieval() -> None:
    """Without ties the hand-written metrics equal torchmetrics' retrieval metrics row by row."""
    from torchmetrics.functional.retrieval import (
        retrieval_hit_rate,
        retrieval_normalized_dcg,
        retrieval_reciprocal_rank,
    )

    generator = torch.Generator().manual_seed(0)
    scores = torch.randn(64, 31, generator=generator, dtype=torch.float64)  # 30 items + padding
    targets = torch.randint(1, 31, (64,), generator=generator)
    ours = ranking_metrics(ranks_from_scores(scores, targets), ks=(1, 5, 10))
    relevant = torch.zeros(64, 30, dtype=torch.bool)
    relevant[torch.arange(64), targets - 1] = True
    for k in (1, 5, 10):
        rows = [(scores[i, 1:], relevant[i]) for i in range(64)]
        theirs = {
            f"HR@{k}": [retrieval_hit_rate(p, t, top_k=k) for p, t in rows],
            f"NDCG@{k}": [retrieval_normalized_dcg(p, t, top_k=k) for p, t in rows],
            f"MRR@{k}": [retrieval_reciprocal_rank(p, t, top_k=k) for p, t in rows],
        }
        for name, values in theirs.items():
            assert ours[name] == pytest.approx(float(torch.stack(values).double().mean()), abs=1e-6)
    assert 0 < ours["NDCG@10"] < ours["HR@10"] < 1  # the sample exercises hits and misses
