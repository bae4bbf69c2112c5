"""Why not item X? The events that hold an item back, and the one next action that would lift it.

`why_not(rec, history, "X")` answers a user who expected X among their recommendations:

- where X ranks now, among all items (items already in the history included: the question is
  about the model's view of X, whichever seen-items convention the list is shown with);
- each event's exact leave-one-out effect on X's rank margin (the distance of X's score to the
  k-th best other item's), so the events that hold X back are the negative ones;
- the next action (one of the `candidates` best-scored items, with each behaviour) after which
  X ranks best, and that rank: the smallest addition to the history that would bring X into
  the top k, when one exists among them.
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field

from influrec.data.history import History
from influrec.errors import InputError
from influrec.inference import Recommender, clamp_k
from influrec.influence.api import _events, item_index
from influrec.influence.counterfactual import _batched_futures
from influrec.influence.engine import Scorer
from influrec.influence.measurement import MEASURES, measurement_for
from influrec.influence.methods import run_method
from influrec.influence.results import TITLE, EventEffect, Result, missing

SHOWN = 5  # events listed on each side


class NextAction(Result):
    item: str
    title: str | None = Field(None, exclude_if=missing, description=TITLE)
    behavior: str
    rank_after: int = Field(description="the asked item's rank after this action (1 = top)")


class WhyNotResult(Result):
    item: str
    title: str | None = Field(None, exclude_if=missing, description=TITLE)
    k: int
    rank: int = Field(description="the item's rank now (1 = top)")
    in_top_k: bool
    unit: str = Field(description="what the effects measure")
    holding_back: list[EventEffect] = Field(description="events that lower the item, most first")
    supporting: list[EventEffect] = Field(description="events that raise it, most first")
    best_action: NextAction | None = Field(
        description="the next action after which the item ranks best (None: none found)"
    )
    sentence: str


def why_not(
    rec: Recommender, history: History, item: str, *, k: int = 10, candidates: int = 100
) -> WhyNotResult:
    """Why `item` is (not) in this user's top `k`: see the module's docstring."""
    if len(history) == 0:
        raise InputError("the history is empty: the popular items are shown, whatever it holds")
    k = clamp_k(k, rec.n_items)
    target = item_index(rec, item)
    scorer = Scorer(rec.model)
    scores = scorer.scores(history, [np.arange(len(history))])[0]
    rank = int((scores > scores[target]).sum()) + 1  # 1-based; index 0 is -inf
    explanation = run_method("loo", scorer, history, measurement_for("margin", target, k))
    events = _events(rec, history, explanation)
    opposing = sorted((e for e in events if e.effect < 0), key=lambda e: e.effect)[:SHOWN]
    supporting = sorted((e for e in events if e.effect > 0), key=lambda e: -e.effect)[:SHOWN]
    action = _best_action(
        rec, scorer, history, scores, target, candidates=clamp_k(candidates, rec.n_items)
    )
    title = rec.item_title(item)
    result = WhyNotResult(
        item=item,
        title=title,
        k=k,
        rank=rank,
        in_top_k=rank <= k,
        unit=MEASURES["margin"].unit,
        holding_back=opposing,
        supporting=supporting,
        best_action=action,
        sentence="",
    )
    return result.model_copy(update={"sentence": _sentence(rec, result)})


def _best_action(
    rec: Recommender,
    scorer: Scorer,
    history: History,
    base: torch.Tensor,
    target: int,
    *,
    candidates: int,
) -> NextAction | None:
    """The (item, behaviour) after which `target` ranks best, among the top `candidates` items
    of `base`, the history's scores (I + 1,)."""
    items = torch.topk(base, min(candidates, int(torch.isfinite(base).sum()))).indices.tolist()
    futures = [(i, b) for i in items for b in rec.behavior_index.values()]
    if not futures:
        return None
    when = int(history.timestamps[-1]) + 60
    after = _batched_futures(scorer, history, futures, when)  # (F, I + 1)
    ranks = (after > after[:, target : target + 1]).sum(dim=1) + 1
    best = int(torch.argmin(ranks))
    chosen, behavior = futures[best]
    return NextAction(
        item=rec.item_ids[chosen - 1],
        title=rec.item_title(chosen),
        behavior=rec.dataset.behaviors[behavior],
        rank_after=int(ranks[best]),
    )


def _sentence(rec: Recommender, result: WhyNotResult) -> str:
    name = rec.item_label(result.item)
    where = f"{name} is ranked {result.rank} (the top {result.k} are recommended)"
    if result.holding_back:
        worst = result.holding_back[0]
        where += (
            f"; your {worst.behavior} of {rec.item_label(worst.item)} holds it back most "
            f"({worst.effect:+.2f} {result.unit})"
        )
    action = result.best_action
    if action is not None and action.rank_after < result.rank:
        verb = f"a {action.behavior} of {rec.item_label(action.item)}"
        where += f". After {verb}, it would rank {action.rank_after}"
    return where + "."
