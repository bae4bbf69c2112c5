"""The service's answers, independent of HTTP: a loaded run plus the event store.

A user's history at request time is their training history (unless they were erased) merged
with every event ingested for them, in time order (a stable sort: on equal timestamps the
training events come first, then ingested events in arrival order). Ingested events whose item
or behaviour the model does not know are stored but left out of the history. Nothing is
retrained: the next answer simply reads the longer history.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from influrec.data.history import History
from influrec.errors import InputError
from influrec.inference import Recommender
from influrec.influence import api
from influrec.influence.counterfactual import Edit
from influrec.influence.robust import robust_recommend
from influrec.mutes import muted_mask
from influrec.serving.errors import ApiError
from influrec.serving.metrics import Metrics
from influrec.serving.mute_schemas import (
    BehaviorMuteIn,
    EventMuteIn,
    MuteList,
    MuteOut,
    WindowMuteIn,
)
from influrec.serving.schemas import (
    MAX_ABS_VALUE,
    MAX_TIMESTAMP,
    Erasure,
    EventIn,
    Explanations,
    ForUser,
    Health,
    HistoryInfo,
    InfluentialActions,
    IngestResult,
    Recommendations,
    RecommendedItem,
    UserList,
    UserSummary,
    WhatIf,
    WhatIfRequest,
    WhyNot,
)
from influrec.serving.settings import ServiceSettings
from influrec.serving.store import EventStore, StoredEvent, open_store
from influrec.serving.versions import ModelVersion, model_version


@dataclass
class UserHistory:
    history: History
    info: HistoryInfo
    model: str  # the version id of the model that reads it

    @property
    def cold_start(self) -> bool:
        return len(self.history) == 0

    def about(self, user_id: str) -> ForUser:
        """Whom an answer is about: the fields every answer about a user starts with."""
        return ForUser(
            user=user_id, cold_start=self.cold_start, history=self.info, model=self.model
        )


def too_large(field: str, value: int, limit: int) -> ApiError:
    message = f"{field} = {value} is over the limit of {limit}"
    return ApiError(422, "validation_error", message, [{"field": field, "message": message}])


class Service:
    """What the routes call, over one model: a request uses one Service from start to end, and
    a reload makes a new one (:meth:`with_model`) sharing the store. Thread-safe: the model is
    only read, the store locks itself."""

    def __init__(
        self,
        settings: ServiceSettings,
        rec: Recommender,
        store: EventStore,
        metrics: Metrics,
        *,
        version: ModelVersion,
    ) -> None:
        self.settings, self.rec, self.store, self.metrics = settings, rec, store, metrics
        self.limits = settings.limits
        self.version = version

    @classmethod
    def open(
        cls, settings: ServiceSettings, metrics: Metrics, rec: Recommender | None = None
    ) -> Service:
        """The service over ``rec``, or over the run of ``settings`` loaded now."""
        version = model_version(Path(settings.run_dir))
        rec = rec or Recommender.load(version.run_dir)
        rec.model.eval()
        return cls(settings, rec, open_store(settings.store_location), metrics, version=version)

    def with_model(self, rec: Recommender, version: ModelVersion) -> Service:
        """The same service (settings, store, metrics) over another loaded model."""
        rec.model.eval()
        return Service(self.settings, rec, self.store, self.metrics, version=version)

    def close(self) -> None:
        self.store.close()

    def check(self, field: str, value: int, limit: int) -> int:
        if value > limit:
            raise too_large(field, value, limit)
        return value

    def within_catalogue(self, k: int) -> int:
        """``k`` clamped to the items the model knows (answers say which k they used)."""
        return min(k, len(self.rec.item_ids))

    # -- events ---------------------------------------------------------------------------------

    def ingest(self, events: Sequence[EventIn]) -> IngestResult:
        """Store a validated batch in one transaction; say what was new and what was known."""
        if len(events) > self.limits.max_batch:
            raise ApiError(
                413,
                "batch_too_large",
                f"{len(events)} events in one request; at most {self.limits.max_batch}",
            )
        now = int(time.time())
        rows = [
            StoredEvent(
                e.user,
                e.item,
                e.behavior,
                now if e.timestamp is None else e.timestamp,
                e.value,
                e.event_id,
            )
            for e in events
        ]
        stored = self.store.append(rows)
        duplicates = [i for i, new in enumerate(stored) if not new]
        self.metrics.count_events(stored=len(rows) - len(duplicates), duplicates=len(duplicates))
        return IngestResult(
            stored=len(rows) - len(duplicates),
            duplicates=len(duplicates),
            duplicate_indices=duplicates,
            duplicate_event_ids=[str(events[i].event_id) for i in duplicates],
            unknown_items=sorted({e.item for e in events if e.item not in self.rec.item_index}),
            unknown_behaviors=sorted(
                {e.behavior for e in events if e.behavior not in self.rec.behavior_index}
            ),
            model=self.version.id,
        )

    def erase(self, user_id: str) -> Erasure:
        deleted = self.store.erase_user(user_id)
        return Erasure(user=user_id, events_deleted=deleted, erased=True)

    # -- mutes ----------------------------------------------------------------------------------

    def mutes(self, user_id: str) -> MuteList:
        return MuteList(user=user_id, mutes=[MuteOut.of(m) for m in self.store.mutes(user_id)])

    def mute(self, user_id: str, request: EventMuteIn | BehaviorMuteIn | WindowMuteIn) -> MuteOut:
        """Store the mute (an equal one stored already is returned as it is)."""
        return MuteOut.of(self.store.add_mute(user_id, request.to_mute()))

    def unmute(self, user_id: str, mute_id: int) -> MuteList:
        """Remove the mute; 404 if the user has none of that id. The mutes left."""
        if not self.store.remove_mute(user_id, mute_id):
            raise ApiError(404, "not_found", f"user {user_id!r} has no mute {mute_id}")
        return self.mutes(user_id)

    # -- histories ------------------------------------------------------------------------------

    def _usable(self, event: StoredEvent) -> bool:
        """Known item and behaviour, and a value and time the model can read (rows stored
        before the request bounds existed may hold values that overflow float32)."""
        return (
            event.item_id in self.rec.item_index
            and event.behavior in self.rec.behavior_index
            and (event.value is None or abs(event.value) <= MAX_ABS_VALUE)
            and 0 <= event.timestamp <= MAX_TIMESTAMP
        )

    def _ingested(self, user_id: str, trained: History) -> tuple[History, int]:
        """The user's stored events the model can read and has not trained on, and how many
        were left out. A run updated with the stored events (``influrec update``) holds them in
        its training history already: they are used once, as training events."""
        stored = self.store.user_events(user_id, limit=self.limits.max_history)
        known = set(
            zip(
                trained.items.tolist(),
                trained.behaviors.tolist(),
                trained.timestamps.tolist(),
                strict=True,
            )
        )
        usable = [
            (item, behavior, e)
            for e in stored
            if self._usable(e)
            and (
                (item := self.rec.item_index[e.item_id]),
                (behavior := self.rec.behavior_index[e.behavior]),
                e.timestamp,
            )
            not in known
        ]
        ingested = History(
            np.array([u[0] for u in usable], np.int64),
            np.array([u[1] for u in usable], np.int64),
            np.array([u[2].timestamp for u in usable], np.int64),
            np.array([u[2].value or 0.0 for u in usable], np.float32),
        )
        return ingested, len(stored) - len(usable)

    def user_history(self, user_id: str) -> UserHistory:
        """Training history (unless erased) + ingested events, merged in time order, without
        the events the user muted."""
        erased = self.store.is_erased(user_id)
        trained = History.empty()
        if not erased and user_id in self.rec.user_index:
            trained = self.rec.user_history(user_id)
        ingested, skipped = self._ingested(user_id, trained)
        from_store = np.r_[np.zeros(len(trained), bool), np.ones(len(ingested), bool)]
        order = np.argsort(np.r_[trained.timestamps, ingested.timestamps], kind="stable")
        merged = History(
            *(
                np.r_[a, b][order]
                for a, b in (
                    (trained.items, ingested.items),
                    (trained.behaviors, ingested.behaviors),
                    (trained.timestamps, ingested.timestamps),
                    (trained.values, ingested.values),
                )
            )
        )
        muted = muted_mask(
            merged,
            self.store.mutes(user_id),
            item_index=self.rec.item_index,
            behavior_index=self.rec.behavior_index,
        )
        kept = np.flatnonzero(~muted)[-self.limits.max_history :]
        info = HistoryInfo(
            events_used=len(kept),
            trained_events=int((~from_store[order][kept]).sum()),
            stored_events=int(from_store[order][kept].sum()),
            stored_events_skipped=skipped,
            muted_events=int(muted.sum()),
            truncated=int((~muted).sum()) - len(kept),
            erased=erased,
        )
        history = History(
            merged.items[kept], merged.behaviors[kept], merged.timestamps[kept], merged.values[kept]
        )
        return UserHistory(history, info, self.version.id)

    # -- users ----------------------------------------------------------------------------------

    @cached_property
    def trained_users(self) -> list[str]:
        """The run's users in id order (sorted once, on first use)."""
        return sorted(self.rec.user_index)

    def users(self, *, limit: int, after: str | None, prefix: str) -> UserList:
        """A page of the users who have a history here, in id order: the run's users (unless
        erased) and every user with stored events; ``next_after`` continues the list."""
        found: list[UserSummary] = []
        cursor, exhausted = after, False
        while len(found) <= limit and not exhausted:
            candidates = self._candidates(cursor, prefix=prefix, limit=limit + 1)
            exhausted = len(candidates) < limit + 1
            found += self._summaries(candidates)
            cursor = candidates[-1] if candidates else cursor
        page = found[:limit]
        more = len(found) > limit
        return UserList(users=page, next_after=page[-1].user if more and page else None)

    def _candidates(self, after: str | None, *, prefix: str, limit: int) -> list[str]:
        """The first ``limit`` ids after ``after`` with ``prefix``, from the run or the store."""
        trained = self.trained_users
        start = 0 if after is None else bisect.bisect_right(trained, after)
        start = max(start, bisect.bisect_left(trained, prefix))
        run = [u for u in trained[start : start + limit] if u.startswith(prefix)]
        stored = self.store.users_after(after, prefix=prefix, limit=limit)
        return sorted(set(run) | set(stored))[:limit]

    def _summaries(self, users: list[str]) -> list[UserSummary]:
        """Each user's event counts; erased users with no event stored since are left out."""
        erased = self.store.erased_among(users)
        stored = self.store.event_counts(users)
        out = []
        for user in users:
            trained = 0
            if user not in erased and user in self.rec.user_index:
                trained = len(self.rec.user_history(user))
            if trained or user in stored:
                out.append(
                    UserSummary(
                        user=user, trained_events=trained, stored_events=stored.get(user, 0)
                    )
                )
        return out

    # -- answers --------------------------------------------------------------------------------

    def recommend(
        self,
        user_id: str,
        *,
        k: int,
        exclude_seen: bool,
        robust: bool = False,
        low_intent: list[str] | None = None,
    ) -> Recommendations:
        user = self.user_history(user_id)
        k = self.within_catalogue(k)
        # an empty history gets the cold-start policy (Recommender.cold_start_scores)
        if robust:
            recs = robust_recommend(
                self.rec, user.history, k=k, exclude_seen=exclude_seen, low_intent=low_intent
            )
        else:
            recs = self.rec.recommend(user.history, k=k, exclude_seen=exclude_seen)
        return Recommendations(
            **dict(user.about(user_id)),
            k=k,
            recommendations=[
                RecommendedItem(
                    rank=r.rank,
                    item=r.item_id,
                    title=self.rec.item_title(r.item_id),
                    score=r.score,
                    new_item=r.new_item,
                )
                for r in recs
            ],
        )

    def explain(
        self, user_id: str, *, k: int, method: str, measure: str, exclude_seen: bool
    ) -> Explanations:
        user = self.user_history(user_id)
        k = self.within_catalogue(k)
        if measure == "margin":  # the margin to the (k+1)-th item: one must be left over
            k = max(1, min(k, len(self.rec.item_ids) - 1))
        if user.cold_start:
            return Explanations(
                **dict(user.about(user_id)),
                events_explained=0,
                method=method,
                measure=measure,
                k=k,
                note="no history: popular items are recommended, there is nothing to explain",
                recommendations=[],
                exclude_seen=exclude_seen,
            )
        result = api.explain(  # no progress bar in the service's console
            self.rec,
            user.history,
            k=k,
            method=method,
            measure=measure,
            exclude_seen=exclude_seen,
            progress=False,
        )
        explained = result.recommendations[0].events if result.recommendations else []
        return Explanations(
            **dict(user.about(user_id)), **dict(result), events_explained=len(explained)
        )

    def whatif(self, request: WhatIfRequest) -> WhatIf:
        self.check("k", request.k, self.limits.max_k)
        self.check("edits", len(request.add) + len(request.remove), self.limits.max_edits)
        user = self.user_history(request.user)
        edits = [Edit("remove", position=p) for p in request.remove] + self._additions(request)
        k = self.within_catalogue(request.k)
        result = api.whatif(self.rec, user.history, edits, k=k, exclude_seen=request.exclude_seen)
        return WhatIf(**dict(user.about(request.user)), k=k, **dict(result))

    def _additions(self, request: WhatIfRequest) -> list[Edit]:
        errors: list[dict[str, Any]] = []
        edits = []
        default = next(iter(self.rec.behavior_index.values()))
        for i, added in enumerate(request.add):
            item = self.rec.item_index.get(added.item)
            behavior = (
                default if added.behavior is None else self.rec.behavior_index.get(added.behavior)
            )
            if item is None:
                errors.append({"field": f"add.{i}.item", "message": f"unknown item {added.item!r}"})
            if behavior is None:
                known = ", ".join(self.rec.behavior_index)
                message = f"unknown behavior {added.behavior!r}; known: {known}"
                errors.append({"field": f"add.{i}.behavior", "message": message})
            if item is not None and behavior is not None:
                edits.append(Edit("add", item=item, behavior=behavior))
        if errors:
            raise ApiError(422, "validation_error", "unknown items or behaviours to add", errors)
        return edits

    def influential_actions(
        self, user_id: str, *, candidates: int, k: int, top: int
    ) -> InfluentialActions:
        user = self.user_history(user_id)
        candidates, k = self.within_catalogue(candidates), self.within_catalogue(k)
        result = api.influential_actions(
            self.rec, user.history, candidates=candidates, k=k, top=top
        )
        return InfluentialActions(**dict(user.about(user_id)), k=k, **dict(result))

    def why_not(self, user_id: str, *, item: str, k: int, candidates: int) -> WhyNot:
        from influrec.influence.whynot import why_not

        user = self.user_history(user_id)
        if user.cold_start:
            raise InputError(
                f"user {user_id!r} has no usable history: the popular items are recommended, "
                "and no event holds any item back"
            )
        k, candidates = self.within_catalogue(k), self.within_catalogue(candidates)
        result = why_not(self.rec, user.history, item, k=k, candidates=candidates)
        return WhyNot(**dict(user.about(user_id)), **dict(result))

    def health(self) -> Health:
        return Health(
            status="ok",
            run=self.version.run_dir.name,
            model=self.version.id,
            items=len(self.rec.item_ids),
            users=len(self.rec.user_index),
            events_in_store=self.store.count(),
        )
