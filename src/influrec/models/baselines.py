"""Non-neural next-item baselines with scikit-learn's contract.

Every baseline is fitted on per-user training sequences of item indices (``1..n_items``,
time-ordered; 0 is padding) and scores a batch of histories over all ``n_items + 1`` item
indices. Column 0 of every score matrix is ``-inf``. History items outside ``1..n_items`` are
ignored, and items never seen in training simply contribute nothing.

Markov and ItemKNN add a small popularity term that only separates items with equal main
scores, so "no evidence" backs off to the popularity ranking instead of to item order.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from typing import Self

# Weight of the popularity tie-breaker of ItemKNN: below 1 / (n_users + shrink), the smallest
# positive cosine similarity, so it only orders items with equal similarity sums.
_KNN_TIE_BREAK = 1e-6


class SequenceBaseline(ABC):
    """Common interface: ``fit(sequences, n_items)`` then ``score(histories)``.

    Learned state shared by all baselines: ``n_items_`` and ``counts_`` ((n_items + 1,) float64,
    number of training interactions per item, ``counts_[0] == 0``).
    """

    n_items_: int
    counts_: np.ndarray

    def fit(self, sequences: Sequence[np.ndarray], n_items: int) -> Self:
        """Fit on one int array of item indices (1..n_items, time-ordered) per user."""
        checked = _check_sequences(sequences, n_items)
        self.n_items_ = n_items
        flat = np.concatenate(checked) if checked else np.zeros(0, np.int64)
        self.counts_ = np.bincount(flat, minlength=n_items + 1).astype(np.float64)
        self._fit(checked)
        return self

    def score(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """Scores (B, n_items + 1) float32 of the next item after each history; column 0 is -inf."""
        if not hasattr(self, "n_items_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit() first")
        known = [_known_items(h, self.n_items_) for h in histories]
        scores = self._score(known).astype(np.float32)  # (B, I + 1)
        scores[:, 0] = -np.inf
        return scores

    def _popularity_share(self) -> np.ndarray:
        """(I + 1,) float64 in [0, 1]: training count relative to the most frequent item."""
        return self.counts_ / max(float(self.counts_.max()), 1.0)

    @abstractmethod
    def _fit(self, sequences: list[np.ndarray]) -> None: ...

    @abstractmethod
    def _score(self, histories: list[np.ndarray]) -> np.ndarray:
        """(B, I + 1) float64 scores of histories already restricted to items 1..I."""


class Popularity(SequenceBaseline):
    """Score of item j = number of training interactions with j, the same for every user."""

    def _fit(self, sequences: list[np.ndarray]) -> None:
        pass

    def _score(self, histories: list[np.ndarray]) -> np.ndarray:
        return np.tile(self.counts_, (len(histories), 1))


class MarkovChain(SequenceBaseline):
    """First-order Markov chain over consecutive training items.

    ``score[j] = T[last, j] + smoothing * counts_[j] / max(counts_)`` where ``T[a, b]`` counts how
    often b directly followed a in a training sequence and ``last`` is the history's last item
    (after dropping items outside 1..I).
    With ``smoothing < 1`` the popularity term only orders items with equal transition counts;
    for an empty history or a last item with no recorded successor the score is popularity.
    Learned state: ``transitions_`` = (indptr (I + 2,), successors, counts), T as CSR rows.
    """

    def __init__(self, smoothing: float = 0.5) -> None:
        if smoothing < 0:
            raise ValueError(f"smoothing must be >= 0, got {smoothing}")
        self.smoothing = smoothing

    def _fit(self, sequences: list[np.ndarray]) -> None:
        pairs = [(s[:-1], s[1:]) for s in sequences if len(s) > 1]
        source = np.concatenate([p[0] for p in pairs]) if pairs else np.zeros(0, np.int64)
        target = np.concatenate([p[1] for p in pairs]) if pairs else np.zeros(0, np.int64)
        key, count = np.unique(source * (self.n_items_ + 1) + target, return_counts=True)
        rows, cols = np.divmod(key, self.n_items_ + 1)
        self.transitions_ = _csr(rows, cols, count.astype(np.float64), self.n_items_ + 1)

    def _score(self, histories: list[np.ndarray]) -> np.ndarray:
        last = [(b, h[-1]) for b, h in enumerate(histories) if len(h)]
        owner = np.array([b for b, _ in last], dtype=np.int64)
        items = np.array([i for _, i in last], dtype=np.int64)
        scores = _sum_rows(self.transitions_, owner, items, len(histories))
        return scores + self.smoothing * self._popularity_share()


class ItemKNN(SequenceBaseline):
    """Item-based nearest neighbours on the binary user x item matrix.

    ``sim(i, j) = co(i, j) / (sqrt(d_i * d_j) + shrink)`` with ``co`` the number of users with
    both items and ``d`` the number of users with each item (cosine when ``shrink == 0``).
    Each item keeps its ``neighbors`` most similar other items (positive similarity only; ties
    at the cut are broken by ``torch.topk``). ``score[j] = sum over distinct history items i of
    sim(i, j) + 1e-6 * counts_[j] / max(counts_)``. Learned state: ``similarity_`` = (indptr
    (I + 2,), neighbour items, similarities) as CSR rows, item i's row being its neighbours.
    """

    def __init__(self, neighbors: int = 100, shrink: float = 0.0, block_cells: int = 1 << 22):
        if neighbors < 1 or shrink < 0 or block_cells < 1:
            raise ValueError("need neighbors >= 1, shrink >= 0 and block_cells >= 1")
        self.neighbors = neighbors
        self.shrink = shrink
        self.block_cells = block_cells  # memory bound: co-occurrence cells computed at once

    def _fit(self, sequences: list[np.ndarray]) -> None:
        width = self.n_items_ + 1
        user_items = [np.unique(s) for s in sequences]
        users = np.repeat(np.arange(len(user_items)), [len(u) for u in user_items])
        items = np.concatenate(user_items) if user_items else np.zeros(0, np.int64)
        by_user = _csr(users, items, np.ones(len(items)), len(user_items))
        by_item = _csr(items, users, np.ones(len(items)), width)
        degree = np.sqrt(np.diff(by_item[0]).astype(np.float64))  # (I + 1,) sqrt(#users)
        block = max(1, self.block_cells // width)
        parts = [
            self._top_neighbors(start, min(start + block, width), by_user, by_item, degree)
            for start in range(0, width, block)
        ]
        rows, cols, sims = (np.concatenate(p) for p in zip(*parts, strict=True))
        self.similarity_ = _csr(rows, cols, sims, width)

    def _top_neighbors(
        self,
        start: int,
        stop: int,
        by_user: tuple[np.ndarray, np.ndarray, np.ndarray],
        by_item: tuple[np.ndarray, np.ndarray, np.ndarray],
        degree: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows, cols, sims) of the kept neighbours of items start..stop-1 via a dense block."""
        rows = np.arange(start, stop)
        owner, position = _gather(by_item[0], rows)  # one entry per (item in block, its user)
        users = by_item[1][position]
        pair_owner, pair_position = _gather(by_user[0], users)  # one per co-occurring item
        width = self.n_items_ + 1
        key = owner[pair_owner] * width + by_user[1][pair_position]
        co = np.bincount(key, minlength=len(rows) * width).reshape(len(rows), width)
        denominator = np.outer(degree[rows], degree) + self.shrink  # (b, I + 1)
        sim = np.divide(co, denominator, out=np.zeros(co.shape), where=co > 0)
        sim[np.arange(len(rows)), rows] = 0.0  # an item is not its own neighbour
        k = min(self.neighbors, width)
        values, index = torch.topk(torch.from_numpy(sim), k, dim=1)  # (b, k)
        keep = (values > 0).numpy()
        block_rows = np.broadcast_to(rows[:, None], keep.shape)
        return block_rows[keep], index.numpy()[keep], values.numpy()[keep]

    def _score(self, histories: list[np.ndarray]) -> np.ndarray:
        distinct = [np.unique(h) for h in histories]
        owner = np.repeat(np.arange(len(distinct)), [len(d) for d in distinct])
        items = np.concatenate(distinct) if distinct else np.zeros(0, np.int64)
        scores = _sum_rows(self.similarity_, owner, items, len(histories))
        return scores + _KNN_TIE_BREAK * self._popularity_share()


BASELINES: dict[str, type[SequenceBaseline]] = {
    "popularity": Popularity,
    "markov": MarkovChain,
    "itemknn": ItemKNN,
}


def _check_sequences(sequences: Sequence[np.ndarray], n_items: int) -> list[np.ndarray]:
    """Sequences as int64 arrays; ValueError naming the first one with an item outside 1..I."""
    if n_items < 1:
        raise ValueError(f"n_items must be >= 1, got {n_items}")
    checked = []
    for index, sequence in enumerate(sequences):
        array = np.asarray(sequence)
        if array.size and not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"sequence {index} must hold integer item indices, got {array.dtype}")
        array = array.astype(np.int64).reshape(-1)
        if array.size and (array.min() < 1 or array.max() > n_items):
            raise ValueError(f"sequence {index} has an item outside 1..{n_items} (0 is padding)")
        checked.append(array)
    return checked


def _known_items(history: np.ndarray, n_items: int) -> np.ndarray:
    """(L',) int64: the history's items that are valid indices 1..n_items, order kept."""
    array = np.asarray(history).astype(np.int64).reshape(-1)
    return array[(array >= 1) & (array <= n_items)]


def _csr(
    rows: np.ndarray, cols: np.ndarray, values: np.ndarray, n_rows: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indptr (n_rows + 1,), cols, values) with entries grouped by row, order kept within a row."""
    order = np.argsort(rows, kind="stable")
    indptr = np.zeros(n_rows + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    return indptr, cols[order].astype(np.int64), values[order]


def _gather(indptr: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Entries of the given CSR rows, vectorised: (index into ``rows``, position in the data)."""
    lengths = indptr[rows + 1] - indptr[rows]  # (R,)
    owner = np.repeat(np.arange(len(rows)), lengths)  # (E,)
    offset = np.arange(len(owner)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return owner, indptr[rows][owner] + offset


def _sum_rows(
    matrix: tuple[np.ndarray, np.ndarray, np.ndarray],
    owner: np.ndarray,
    rows: np.ndarray,
    batch: int,
) -> np.ndarray:
    """(batch, n_cols) float64: out[owner[e]] += matrix[rows[e]] for each e; n_cols = n_rows."""
    indptr, cols, values = matrix
    width = len(indptr) - 1
    entry, position = _gather(indptr, rows)
    key = owner[entry] * width + cols[position]
    flat = np.bincount(key, weights=values[position], minlength=batch * width)
    return flat.reshape(batch, width)
