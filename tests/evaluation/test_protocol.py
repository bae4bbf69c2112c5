from __future__ import annotations

import numpy as np
import torch

from influrec.evaluation.protocol import evaluate_targets, history_score_fn
from influrec.models.baselines import Popularity
from tests_helpers import make_data


def test_oracle_scores_rank_first_unless_the_target_was_seen() -> None:
    data = make_data([5, 5, 5])
    data.item[:] = [1, 2, 3, 4, 5, 1, 2, 3, 4, 1, 1, 2, 3, 4, 5]  # user 2's target (1) was seen

    def oracle(targets: np.ndarray) -> tuple[torch.Tensor, None]:
        scores = torch.zeros(len(targets), data.n_items + 1)
        scores[torch.arange(len(targets)), torch.from_numpy(data.item[targets])] = 1.0
        scores[:, 0] = float("-inf")
        return scores, None

    result = evaluate_targets(oracle, data, np.array([4, 9, 14]), ks=(1, 5))
    assert result.metrics.unmasked["HR@1"] == 1.0
    assert result.metrics.masked["HR@1"] == 2 / 3 and result.metrics.masked["HR@5"] == 2 / 3
    assert np.isclose(result.targets_seen, 1 / 3)


def test_baseline_through_the_protocol_matches_hand_ranks() -> None:
    data = make_data([4, 4])
    data.item[:] = [1, 1, 1, 2, 2, 3, 1, 4]
    pop = Popularity().fit(
        [data.item[:2], data.item[4:6]], data.n_items
    )  # counts: 1->2, 2->1, 3->1
    result = evaluate_targets(history_score_fn(pop, data), data, np.array([3, 7]), ks=(1, 2, 5))
    # target 2: items 1 (2) beats it, 3 ties (1): pessimistic rank 2; target 4 (count 0): rank 4
    assert result.metrics.unmasked["HR@5"] == 1.0 and result.metrics.unmasked["HR@2"] == 0.0
    assert np.isclose(result.metrics.unmasked["MRR@5"], (1 / 3 + 1 / 5) / 2)
