"""WHAT an influence method explains: a number computed from the model's item scores.

Every method in :mod:`influrec.influence` takes a measurement, so a new question ("how far is
item j from the top 10?") needs no new method code. A measurement maps scores (B, I + 1) --
one row per (possibly edited) history, index 0 being padding at -inf -- to values (B,).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch

from influrec.errors import InputError


class Measurement(Protocol):
    """A function of the next-item scores; ``differentiable`` says gradients are meaningful."""

    @property
    def differentiable(self) -> bool: ...

    @property
    def name(self) -> str: ...

    def __call__(self, scores: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class ItemScore:
    """The raw score (logit) of item ``item``."""

    item: int
    differentiable: bool = True

    @property
    def name(self) -> str:
        return f"score(item {self.item})"

    def __call__(self, scores: torch.Tensor) -> torch.Tensor:
        return scores[:, self.item]


@dataclass(frozen=True)
class LogProbability:
    """log p(item) under the softmax over all items."""

    item: int
    differentiable: bool = True

    @property
    def name(self) -> str:
        return f"log p(item {self.item})"

    def __call__(self, scores: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(scores.float(), dim=-1)[:, self.item]


def kth_best_other(scores: torch.Tensor, item: int, k: int) -> torch.Tensor:
    """(B,) the k-th largest score among all items except ``item`` and padding.

    With fewer than ``k`` other real items, the last of them (``k`` is clamped).
    """
    others = scores.clone()
    others[:, item] = float("-inf")
    k = max(1, min(k, others.shape[-1] - 2))  # the other real items: not padding, not item
    return torch.topk(others, k, dim=-1).values[:, -1]


@dataclass(frozen=True)
class RankMargin:
    """score(item) minus the score it must beat to be in the top ``k``: the k-th best other item.

    Positive exactly when the item is in the top k; the distance to dropping out (or getting in).
    """

    item: int
    k: int
    differentiable: bool = True

    @property
    def name(self) -> str:
        return f"rank margin(item {self.item}, top {self.k})"

    def __call__(self, scores: torch.Tensor) -> torch.Tensor:
        return scores[:, self.item] - kth_best_other(scores, self.item, self.k)


@dataclass(frozen=True)
class Rank:
    """Minus the item's rank (1 = first), plus half its probability to order equal ranks.

    A leave-one-out effect under this measurement is the number of places the item falls when
    the event is removed, plus half the probability it loses: the half keeps that tie-break
    under one place (|Δp| < 1), so events are ordered by places first. Not differentiable.
    """

    item: int
    differentiable: bool = False

    @property
    def name(self) -> str:
        return f"rank(item {self.item})"

    def __call__(self, scores: torch.Tensor) -> torch.Tensor:
        scores = scores.float()
        rank = (scores > scores[:, self.item : self.item + 1]).sum(-1) + 1
        return torch.softmax(scores, dim=-1)[:, self.item] / 2 - rank


@dataclass(frozen=True)
class InTopK:
    """1.0 when the item is in the top ``k``, else 0.0 (not differentiable)."""

    item: int
    k: int
    differentiable: bool = False

    @property
    def name(self) -> str:
        return f"in top {self.k}(item {self.item})"

    def __call__(self, scores: torch.Tensor) -> torch.Tensor:
        return (scores[:, self.item] > kth_best_other(scores, self.item, self.k)).float()


@dataclass(frozen=True)
class WithoutItems:
    """``inner`` measured on the ranking of the other items: the scores of ``excluded`` (item
    indices, e.g. the items of the history when seen items are not recommended) are set to
    -inf first, so a margin, rank or log-probability is among the items that can be
    recommended. The excluded items stay out of every edited history's ranking too (deleting
    an event does not make its item unseen)."""

    inner: Measurement
    excluded: tuple[int, ...]

    @property
    def differentiable(self) -> bool:
        return self.inner.differentiable

    @property
    def name(self) -> str:
        return self.inner.name

    def __call__(self, scores: torch.Tensor) -> torch.Tensor:
        if not self.excluded:
            return self.inner(scores)
        index = torch.tensor(self.excluded, dtype=torch.long, device=scores.device)
        return self.inner(scores.index_fill(-1, index, float("-inf")))


@dataclass(frozen=True)
class Measure:
    """A named kind of measurement users ask for: ``build(item, k)`` makes it for one item;
    ``unit`` says in words what one point of an effect on it is (a positive effect: deleting
    the event lowers the measurement), once per answer, as sentences carry no unit."""

    name: str
    build: Callable[[int, int], Measurement]
    description: str
    unit: str


MEASURES: dict[str, Measure] = {
    m.name: m
    for m in (
        Measure(
            "margin",
            RankMargin,
            "score minus the score it must beat to be in the top k",
            "rank-margin points: how much the item's lead over the first item outside the top k "
            "(a difference of model scores) shrinks when that one past event is deleted",
        ),
        Measure(
            "score",
            lambda item, k: ItemScore(item),
            "the raw score (logit) of the item",
            "score points: how much the item's model score drops when that one event is deleted",
        ),
        Measure(
            "logp",
            lambda item, k: LogProbability(item),
            "log-probability of the item",
            "log-probability points: how much log p(item) drops when that one event is deleted",
        ),
        Measure(
            "rank",
            lambda item, k: Rank(item),
            "minus the item's rank (1 = first)",
            "places: how many places the item falls when that one event is deleted",
        ),
    )
}
"""Measure name -> :class:`Measure`; the one list of what the influence questions explain."""


def measurement_for(
    measure: str, item: int, k: int, *, excluded: tuple[int, ...] = ()
) -> Measurement:
    """The measurement ``measure`` of item index ``item`` (``k``: the top-k size it refers to),
    on the ranking without the item indices ``excluded`` (:class:`WithoutItems`) when given.

    An unknown name is an :class:`~influrec.errors.InputError` listing the known ones.
    """
    if measure not in MEASURES:
        raise InputError(f"unknown measure {measure!r}; choose one of {', '.join(MEASURES)}")
    built = MEASURES[measure].build(item, k)
    return WithoutItems(built, excluded) if excluded else built
