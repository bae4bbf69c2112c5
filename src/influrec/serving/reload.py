"""Swapping the served model while requests run: load, validate, then swap in one assignment.

Each request takes the current :class:`Service` once (``deps.get_service``) and keeps it to the
end, so a swap never fails a request nor mixes two models in one answer: requests that started
before it finish on the old model, later ones get the new one. A reload that fails anywhere
before the swap changes nothing and says why.

Validation, in order: the folder is a run and loads; the new model ranks a probe user (the
run's first user, else a cold start) with finite scores; and it knows every item and behaviour
of the stored events that the current model reads (unless ``force``), so no user's history
silently shrinks.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from pathlib import Path
from typing import Any

from influrec.errors import InputError
from influrec.inference import Recommender
from influrec.serving.errors import ApiError
from influrec.serving.schemas import Reload
from influrec.serving.service import Service
from influrec.serving.versions import model_version

log = logging.getLogger(__name__)

EXAMPLES = 5  # names of lost items shown in a refusal
PROBE_K = 10


def refused(message: str, details: list[dict[str, Any]] | None = None) -> ApiError:
    return ApiError(422, "reload_refused", f"{message}; the current model stays", details)


class LiveService:
    """The service being served now, and the one way to replace it (:meth:`reload`)."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self._reloading = threading.Lock()

    def reload(self, run: Path | None = None, *, force: bool = False) -> Reload:
        """Load ``run`` (default: the run the service started with, links followed again),
        validate it and swap. Raises ApiError 422 ``reload_refused`` naming what is wrong (the
        old model stays), 409 while another reload runs."""
        if not self._reloading.acquire(blocking=False):
            raise ApiError(409, "reload_in_progress", "another reload is running; retry after it")
        try:
            start = time.perf_counter()
            old = self.service
            new = self._load(Path(run) if run is not None else Path(old.settings.run_dir))
            _probe(new)
            added, unknown = _vocabulary_check(old, new, force=force)
            self.service = new  # the swap: one reference assignment
        finally:
            self._reloading.release()
        log.info("model %s replaced by %s", old.version.id, new.version.id)
        return Reload(
            model=new.version.id,
            previous_model=old.version.id,
            run=str(new.version.run_dir),
            items=len(new.rec.item_ids),
            users=len(new.rec.user_index),
            items_added=added,
            stored_items_unknown=unknown,
            seconds=round(time.perf_counter() - start, 3),
        )

    def _load(self, run: Path) -> Service:
        if not (run / "run.json").is_file():
            raise refused(f"{run}: not a trained run (no run.json)")
        try:
            version = model_version(run)
            rec = Recommender.load(version.run_dir)
        except (InputError, OSError) as exc:
            raise refused(f"{run}: the run does not load ({exc})") from exc
        except Exception as exc:  # anything a damaged run raises must keep the old model
            log.exception("loading %s failed", run)
            raise refused(f"{run}: the run does not load ({type(exc).__name__}: {exc})") from exc
        return self.service.with_model(rec, version)


def _probe(new: Service) -> None:
    """The new model ranks one user (through the service, store included) with finite scores."""
    user = next(iter(new.rec.user_index), "influrec-reload-probe")
    try:
        answer = new.recommend(user, k=PROBE_K, exclude_seen=False)
    except Exception as exc:  # a model that cannot answer must not be swapped in
        log.exception("the probe of %s failed", new.version.id)
        raise refused(f"{new.version.run_dir}: the probe recommendation failed ({exc})") from exc
    scores = [r.score for r in answer.recommendations]
    if len(scores) != min(PROBE_K, len(new.rec.item_ids)) or not all(map(math.isfinite, scores)):
        raise refused(
            f"{new.version.run_dir}: the probe user {user!r} got {len(scores)} items with "
            f"scores {scores[:3]}...; expected {PROBE_K} finite scores"
        )


def _vocabulary_check(old: Service, new: Service, *, force: bool) -> tuple[int, int]:
    """(items new to the model, stored items it does not know); refuses when the new model
    misses items or behaviours of stored events that the old one reads, unless ``force``."""
    items, behaviors = old.store.vocabulary()
    lost_items = sorted(i for i in items if i in old.rec.item_index and i not in new.rec.item_index)
    lost_behaviors = sorted(
        b for b in behaviors if b in old.rec.behavior_index and b not in new.rec.behavior_index
    )
    if (lost_items or lost_behaviors) and not force:
        details = [
            {"field": "items", "message": f"unknown: {lost_items[:EXAMPLES]}"},
            {"field": "behaviors", "message": f"unknown: {lost_behaviors}"},
        ]
        raise refused(
            f"{new.version.run_dir}: the new model does not know {len(lost_items)} items and "
            f"{len(lost_behaviors)} behaviours of stored events the current model reads; their "
            "events would be skipped. Train on them, or reload with force",
            details,
        )
    added = sum(1 for i in new.rec.item_index if i not in old.rec.item_index)
    return added, sum(1 for i in items if i not in new.rec.item_index)


def watch_link(live: LiveService, link: Path, *, interval_s: float, stop: threading.Event) -> None:
    """Reload whenever the target of ``link`` changes (checked every ``interval_s``) until
    ``stop`` is set. A refused target is logged and not retried until the link changes again."""
    seen = os.path.realpath(link)
    while not stop.wait(interval_s):
        target = os.path.realpath(link)
        if target == seen:
            continue
        try:
            answer = live.reload()
        except ApiError as exc:
            log.error("%s -> %s: %s", link, target, exc.message)
            if exc.status != 409:  # another reload ran: try this target again next time
                seen = target
            continue
        seen = target
        log.info("%s -> %s: serving %s (%.1f s)", link, target, answer.model, answer.seconds)


def start_watching(
    live: LiveService, link: Path, *, interval_s: float, stop: threading.Event
) -> threading.Thread:
    """:func:`watch_link` in a daemon thread, until ``stop`` is set."""
    watcher = threading.Thread(
        target=watch_link,
        args=(live, link),
        kwargs={"interval_s": interval_s, "stop": stop},
        name="influrec-watch",
        daemon=True,
    )
    watcher.start()
    return watcher
