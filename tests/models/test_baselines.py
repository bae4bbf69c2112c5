from __future__ import annotations

import numpy as np
import pytest

from influrec.models.baselines import BASELINES, ItemKNN, MarkovChain, Popularity

TOY = [np.array(s) for s in ([1, 2, 3], [1, 2], [2, 1, 2], [3, 3], [4])]
N_ITEMS = 5  # item 5 never occurs in training
COUNTS = np.array([0, 3, 4, 3, 1, 0], dtype=np.float64)


def test_popularity_scores_training_counts_for_everyone() -> None:
    scores = Popularity().fit(TOY, N_ITEMS).score([np.array([1]), np.array([], np.int64)])
    assert scores.shape == (2, N_ITEMS + 1) and scores.dtype == np.float32
    assert np.all(np.isneginf(scores[:, 0]))
    assert scores[:, 1:].tolist() == [COUNTS[1:].tolist()] * 2


def test_markov_scores_are_exact_transition_counts_plus_popularity() -> None:
    model = MarkovChain(smoothing=0.5).fit(TOY, N_ITEMS)
    transitions = np.zeros((N_ITEMS + 1, N_ITEMS + 1))
    for a, b in [(1, 2), (2, 3), (1, 2), (2, 1), (1, 2), (3, 3)]:  # consecutive pairs of TOY
        transitions[a, b] += 1
    popularity = 0.5 * COUNTS / COUNTS.max()
    histories = [np.array([3, 1]), np.array([1, 2]), np.array([], np.int64), np.array([2, 5])]
    scores = model.score(histories)
    expected = np.stack(
        [
            transitions[1] + popularity,  # from 1: 1->2 three times
            transitions[2] + popularity,  # from 2: one each to 1 and 3
            popularity,  # empty history backs off to popularity
            popularity,  # item 5 has no recorded successor
        ]
    )
    np.testing.assert_allclose(scores[:, 1:], expected[:, 1:], rtol=1e-6)
    assert np.all(np.isneginf(scores[:, 0]))
    # with smoothing < 1 popularity only breaks ties: after item 2, item 3 (one transition) beats
    # item 2 (no transition, most popular), and the popularity of items 1 and 3 (3 each) ties them
    assert scores[1, 1] == scores[1, 3] > scores[1, 2] > scores[1, 4]


def test_markov_ignores_history_items_outside_the_vocabulary() -> None:
    model = MarkovChain().fit(TOY, N_ITEMS)
    np.testing.assert_array_equal(model.score([np.array([1, 0, 99])]), model.score([np.array([1])]))


def _random_log(seed: int, n_users: int = 40, n_items: int = 15) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.ones(n_items))  # skewed so that similarities differ
    return [rng.choice(n_items, size=rng.integers(1, 8), p=weights) + 1 for _ in range(n_users)]


def _brute_force_similarity(sequences: list[np.ndarray], n_items: int, shrink: float) -> np.ndarray:
    """(I + 1, I + 1) dense cosine (with shrink) of the binary user x item matrix, no diagonal."""
    users = np.zeros((len(sequences), n_items + 1))
    for u, sequence in enumerate(sequences):
        users[u, sequence] = 1.0
    co = users.T @ users
    norm = np.sqrt(np.outer(users.sum(0), users.sum(0))) + shrink
    similarity = np.divide(co, norm, out=np.zeros_like(co), where=co > 0)
    np.fill_diagonal(similarity, 0.0)
    return similarity


def _learned_similarity(model: ItemKNN) -> np.ndarray:
    indptr, neighbours, values = model.similarity_
    dense = np.zeros((len(indptr) - 1, len(indptr) - 1))
    rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    dense[rows, neighbours] = values
    return dense


@pytest.mark.parametrize("block_cells", [1 << 22, 7])  # one block, and one item per block
def test_itemknn_without_pruning_is_the_dense_cosine(block_cells: int) -> None:
    log, n_items = _random_log(0), 15
    model = ItemKNN(neighbors=n_items, shrink=2.0, block_cells=block_cells).fit(log, n_items)
    expected = _brute_force_similarity(log, n_items, shrink=2.0)
    np.testing.assert_allclose(_learned_similarity(model), expected, rtol=1e-12, atol=1e-15)
    counts = np.bincount(np.concatenate(log), minlength=n_items + 1)
    tie_break = 1e-6 * counts / counts.max()
    scores = model.score([np.array([3]), np.array([3, 7, 3]), np.array([], np.int64)])
    np.testing.assert_allclose(scores[0, 1:], (expected[3] + tie_break)[1:], rtol=1e-6)
    # each distinct history item counts once
    both = expected[3] + expected[7] + tie_break
    np.testing.assert_allclose(scores[1, 1:], both[1:], rtol=1e-6)
    np.testing.assert_allclose(scores[2, 1:], tie_break[1:], rtol=1e-6)  # nothing: popularity


def test_itemknn_pruning_keeps_each_items_top_k() -> None:
    log, n_items, k = _random_log(1), 15, 3
    model = ItemKNN(neighbors=k).fit(log, n_items)
    full = _brute_force_similarity(log, n_items, shrink=0.0)
    pruned = _learned_similarity(model)
    for item in range(1, n_items + 1):
        kept = np.flatnonzero(pruned[item])
        best = np.sort(full[item][full[item] > 0])[::-1][:k]
        assert len(kept) == len(best) <= k
        np.testing.assert_allclose(pruned[item, kept], full[item, kept])  # true similarities
        np.testing.assert_allclose(np.sort(pruned[item, kept])[::-1], best)  # the k largest


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_every_baseline_scores_all_items_with_a_padding_column(name: str) -> None:
    model = BASELINES[name]()
    assert model.fit(TOY, N_ITEMS) is model
    histories = [np.array([1, 2]), np.array([], np.int64), np.array([5, 0, 42])]
    scores = model.score(histories)
    assert scores.shape == (3, N_ITEMS + 1) and scores.dtype == np.float32
    assert np.all(np.isneginf(scores[:, 0])) and np.all(np.isfinite(scores[:, 1:]))
    # items never seen fall back to popularity order: item 2 (4 events) above item 5 (none)
    assert scores[1, 2] > scores[1, 5]


def test_baselines_reject_bad_input() -> None:
    assert set(BASELINES) == {"popularity", "markov", "itemknn"}
    with pytest.raises(RuntimeError, match="not fitted"):
        ItemKNN().score([np.array([1])])
    with pytest.raises(ValueError, match="sequence 1"):
        Popularity().fit([np.array([1]), np.array([0, 2])], 3)
    with pytest.raises(ValueError, match="sequence 0"):
        MarkovChain().fit([np.array([4])], 3)
