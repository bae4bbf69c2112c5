"""Does an explanation find the cause the synthetic data planted?

The synthetic generator (:mod:`influrec.data.synthetic`) records, for every caused event,
the earlier event of the same user that caused it. Explaining log p(caused item) from the
history just before it, exact leave-one-out should rank that planted cause first. This module
asks it for one user (:func:`planted_cause_of_user`) and for many (:func:`planted_cause_rate`,
through :func:`influrec.influence.faithfulness.planted_cause_recovery`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from influrec.data.dataset import EventDataset
from influrec.data.history import History
from influrec.data.sequences import SequenceData
from influrec.errors import InputError
from influrec.inference import Recommender
from influrec.influence.attribution import leave_one_out
from influrec.influence.engine import Scorer
from influrec.influence.faithfulness import planted_cause_recovery
from influrec.influence.measurement import LogProbability


def planted_pairs(dataset: EventDataset) -> tuple[np.ndarray, np.ndarray]:
    """(caused, cause): (C,) int64 event indices into ``dataset`` (and its
    :class:`SequenceData`) of each caused event and of the event that caused it, in event order.

    Raises InputError when the dataset has no ground truth (it is not synthetic).
    """
    truth = dataset.ground_truth
    if truth is None:
        raise InputError("the dataset records no planted causes (only synthetic data does)")
    event_of_row = {int(r): i for i, r in enumerate(dataset.column("row").tolist())}
    pairs = sorted(
        (event_of_row[effect], event_of_row[cause])
        for effect, cause in zip(
            truth.column("row").to_pylist(), truth.column("cause_row").to_pylist(), strict=True
        )
        if effect in event_of_row and cause in event_of_row  # preparation may drop events
    )
    caused, causes = np.array(pairs, np.int64).reshape(-1, 2).T
    return caused.copy(), causes.copy()


def visible_cases(
    data: SequenceData, caused: np.ndarray, causes: np.ndarray, *, max_len: int
) -> np.ndarray:
    """(V,) indices into ``caused``/``causes`` of each user's LAST caused event whose cause the
    model sees (among the ``max_len`` events before it), ordered by user."""
    visible = causes >= caused - max_len
    picked = np.flatnonzero(visible)
    users = data.user[caused[picked]]
    # caused is in event order, so each user's cases are together, the latest last
    last = np.flatnonzero(np.append(users[1:] != users[:-1], len(users) > 0))
    return picked[last]


def first_user_with_planted_cause(dataset: EventDataset, *, max_len: int) -> str | None:
    """The first user (in the users table's order) with a caused event whose planted cause lies
    within the ``max_len`` events before it; None when no user has one."""
    data = SequenceData.from_dataset(dataset)
    caused, causes = planted_pairs(dataset)
    cases = visible_cases(data, caused, causes, max_len=max_len)
    if not len(cases):
        return None
    user_idx = int(data.user[caused[cases[0]]])
    return str(dataset.users.column("user_id")[user_idx - 1].as_py())


@dataclass(frozen=True)
class PlantedEvent:
    """One event of a user's history, named as the user knows it."""

    position: int  # index in the user's history
    item: str
    behavior: str


@dataclass(frozen=True)
class PlantedCase:
    """One user's check: the caused event, its planted cause, and the event leave-one-out
    ranks first when explaining log p(caused item) from the history before it."""

    user_id: str
    caused: PlantedEvent
    cause: PlantedEvent
    found: PlantedEvent
    effect: float  # the found event's effect, in log-probability points
    events_seen: int  # how many events before the caused one the model sees

    @property
    def recovered(self) -> bool:
        return self.found.position == self.cause.position


def _event(rec: Recommender, history: History, position: int) -> PlantedEvent:
    item = rec.item_ids[int(history.items[position]) - 1]
    return PlantedEvent(position, item, rec.dataset.behaviors[int(history.behaviors[position])])


def planted_cause_of_user(rec: Recommender, user_id: str) -> PlantedCase | None:
    """Check the user's last caused event whose cause the model sees; None when there is none."""
    caused, causes = planted_pairs(rec.dataset)
    scorer = Scorer(rec.model)
    cases = visible_cases(rec.data, caused, causes, max_len=scorer.max_len)
    user = rec.user_index.get(str(user_id))
    mine = [c for c in cases if user is not None and rec.data.user[caused[c]] == user]
    if not mine:
        return None
    start = int(rec.data.user_start[user])
    event, cause = int(caused[mine[0]]) - start, int(causes[mine[0]]) - start
    whole = rec.user_history(user_id)
    before = History(
        whole.items[:event], whole.behaviors[:event], whole.timestamps[:event], whole.values[:event]
    )
    explanation = leave_one_out(scorer, before, LogProbability(int(whole.items[event])))
    found = int(explanation.ranked()[0])
    return PlantedCase(
        user_id=str(user_id),
        caused=_event(rec, whole, event),
        cause=_event(rec, whole, cause),
        found=_event(rec, whole, found),
        effect=float(explanation.effects[explanation.positions == found][0]),
        events_seen=len(explanation.positions),
    )


@dataclass(frozen=True)
class PlantedRecovery:
    """How often leave-one-out's top event is the planted cause, over one case per user."""

    users: int  # users checked (each user's last caused event whose cause the model sees)
    recovered: float  # share of them where leave-one-out ranks the planted cause first
    chance: float  # the share a pick at random among the events the model sees would expect


def planted_cause_rate(rec: Recommender, *, users: int = 100, seed: int = 0) -> PlantedRecovery:
    """:class:`PlantedRecovery` over a seeded sample of at most ``users`` users."""
    caused, causes = planted_pairs(rec.dataset)
    scorer = Scorer(rec.model)
    cases = visible_cases(rec.data, caused, causes, max_len=scorer.max_len)
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(cases, size=min(users, len(cases)), replace=False))
    found = planted_cause_recovery(scorer, rec.data, caused[pick], causes[pick], ["loo"])["loo"]
    seen = np.minimum(
        caused[pick] - rec.data.user_start[rec.data.user[caused[pick]]], scorer.max_len
    )
    return PlantedRecovery(
        users=int(found["cases"]),
        recovered=float(found["precision@1"]),
        chance=float(np.mean(1.0 / seen)) if len(seen) else float("nan"),
    )
