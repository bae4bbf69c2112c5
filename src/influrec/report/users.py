"""Per-user cards: a user's history coloured by its effect on the top item, the top k with
the sentence that explains each, a counterfactual set and the most influential next actions.

Every number is an answer of :mod:`influrec.influence.api` (``explain`` with exact
leave-one-out on the rank margin, ``counterfactual``, ``influential_actions``).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

import numpy as np

from influrec.data.history import History
from influrec.data.times import readable_time
from influrec.inference import EXCLUDE_SEEN, Recommender
from influrec.influence import api
from influrec.influence.measurement import MEASURES
from influrec.influence.results import ExplainResult, ItemExplanation
from influrec.progress import steps
from influrec.report.html import Section, cell, paragraph, table
from influrec.report.svg import StripCell, history_strip

K = 10  # recommendations listed per user
ACTIONS = 5  # influential next actions listed per user
CANDIDATES = 50  # items tried (x every behaviour) for the next actions
UNIT = MEASURES["margin"].unit.split(":")[0]  # "rank-margin points"


def choose_users(rec: Recommender, count: int, *, seed: int) -> list[str]:
    """``count`` user ids drawn at random (seeded, each once), in the order drawn."""
    ids = rec.dataset.users.column("user_id").to_pylist()
    picks = np.random.default_rng(seed).choice(len(ids), size=min(count, len(ids)), replace=False)
    return [str(ids[i]) for i in picks]


def behaviour_marks(behaviors: Sequence[str]) -> dict[str, str]:
    """A short mark per behaviour: its first letter, or more letters where two would clash."""
    for width in range(1, max((len(b) for b in behaviors), default=1) + 1):
        marks = {b: b[:width].upper() for b in behaviors}
        if len(set(marks.values())) == len(marks):
            return marks
    return {b: b.upper() for b in behaviors}


def users_section(rec: Recommender, user_ids: Sequence[str]) -> Section:
    """One card per user, in the order given."""
    marks = behaviour_marks(rec.dataset.behaviors[1:])
    cards = []
    with steps(len(user_ids), "user cards") as bar:
        for n, user in enumerate(user_ids):
            cards.append(user_card(rec, user, marks=marks, uid=f"strip{n}"))
            bar.advance()
    legend = ", ".join(f"{m} = {b}" for b, m in marks.items())
    what = (
        f"One card per user. Effects are exact leave-one-out effects on each item's rank "
        f"margin, in {MEASURES['margin'].unit}. The strip shows every event the model sees "
        f"(oldest left) coloured by its effect on the user's top item; the letter in a cell is "
        f"the behaviour ({legend}); hover a cell for its item, behaviour, time and effect. "
        + (
            "The top lists leave out the items already in the user's history."
            if EXCLUDE_SEEN
            else "The top lists may hold items already in the user's history."
        )
    )
    return Section("users", "Users: why these recommendations", what, "".join(cards))


def user_card(rec: Recommender, user: str, *, marks: dict[str, str], uid: str) -> str:
    """The card of one user (see the module's docstring)."""
    history = rec.user_history(user)
    if len(history) == 0:
        return f'<div class="card"><h3>User {escape(user)}</h3><p>No events.</p></div>'
    result = api.explain(rec, history, k=K, method="loo", measure="margin")
    top = result.recommendations[0]
    seen = len(top.events)
    first, last = int(history.timestamps[0]), int(history.timestamps[-1])
    head = f"{len(history)} events from {readable_time(first)} to {readable_time(last)} (UTC); " + (
        "the model sees all of them."
        if seen >= len(history)
        else f"the model sees the last {seen}."
    )
    parts = [f'<div class="card"><h3>User {escape(user)}</h3>', paragraph(head, "small")]
    if top.sentence:
        parts.append(paragraph(top.sentence, "sentence"))
    parts.append(_strip(rec, top, marks=marks, uid=uid, user=user))
    parts.append(_top_k(rec, result))
    parts.append(_counterfactual(rec, history, top))
    parts.append(_actions(rec, history))
    return "".join(parts) + "</div>"


def _strip(
    rec: Recommender, top: ItemExplanation, *, marks: dict[str, str], uid: str, user: str
) -> str:
    cells = [
        StripCell(
            effect=e.effect,
            label=rec.item_label(e.item),
            tooltip=f"event {e.position}: {e.behavior} of {rec.item_label(e.item)} on "
            f"{readable_time(e.timestamp)} UTC; effect on {rec.item_label(top.item)}: "
            f"{e.effect:+.4f} {UNIT}",
            mark=marks.get(e.behavior, ""),
        )
        for e in top.events
    ]
    events = top.events
    return history_strip(
        cells,
        title=f"user {user}: each event's effect on #1 {rec.item_label(top.item)}",
        unit=UNIT,
        start=readable_time(events[0].timestamp) if events else "",
        end=readable_time(events[-1].timestamp) if events else "",
        uid=uid,
    )


def _top_k(rec: Recommender, result: ExplainResult) -> str:
    rows = [
        [
            r.rank,
            cell(rec.item_label(r.item), title=f"item id {r.item}"),
            r.score,
            r.value,
            r.sentence or "",
        ]
        for r in result.recommendations
    ]
    header = [
        "rank",
        "item",
        "score",
        "rank margin",
        "why, in plain words (effects in " + UNIT + ")",
    ]
    return f"<h4>Top {len(rows)}</h4>" + table(header, rows)


def _counterfactual(rec: Recommender, history: History, top: ItemExplanation) -> str:
    found = api.counterfactual(rec, history, top.item, k=K)
    item = rec.item_label(top.item)
    if not found.valid or not found.size:
        text = f"No set of past events found whose removal drops {item} out of the top {K}"
        return "<h4>Counterfactual</h4>" + paragraph(f"{text}: {found.reason or 'none found'}.")
    removed = "; ".join(
        f"event {e.position}, {rec.item_label(e.item)}" for e in found.removed_events
    )
    these = "this past event" if found.size == 1 else f"these {found.size} past events"
    text = (
        f"Without {these} ({removed}), {item} drops from rank "
        f"{found.original_rank} to {found.new_rank}, out of the top {K} (verified by "
        f"re-scoring; {found.evaluated} edited histories scored)."
    )
    return "<h4>Counterfactual</h4>" + paragraph(text)


def _actions(rec: Recommender, history: History) -> str:
    found = api.influential_actions(rec, history, candidates=CANDIDATES, k=K, top=ACTIONS)
    rows = [
        [
            cell(rec.item_label(a.item), title=f"item id {a.item}"),
            a.behavior,
            a.churn,
            round(a.rank_movement),
            ", ".join(rec.item_label(i) for i in a.new_top[:3]),
        ]
        for a in found.actions
    ]
    header = ["next action: item", "behaviour", "churn of the top " + str(K), "rank movement"]
    header.append("new top 3")
    what = (
        f"The next actions (item x behaviour, {found.candidates} tried) that would change "
        f"this user's top {K} most. Churn: 1 - Jaccard overlap of the top {K} now and after "
        f"the action (0: unchanged, 1: all new); rank movement: places moved, summed over the "
        f"items of the top {K}."
    )
    return "<h4>Most influential next actions</h4>" + paragraph(what, "small") + table(header, rows)
