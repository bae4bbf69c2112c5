"""Train/validation/test splits as pure functions over the time-ordered event table.

A split names *target* events: the model is trained to predict the ``train`` targets and is
evaluated on the ``valid`` and ``test`` targets, each time seeing only the user's events before
the target. Inputs are the ``user_idx`` and ``timestamp`` columns of a prepared dataset (sorted
by user, then time); outputs are event positions into those columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from influrec.data.sequences import SequenceData


@dataclass(frozen=True)
class Split:
    """Positions (int64, ascending) of the target events of each part."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    kind: str
    params: dict[str, Any] = field(default_factory=dict)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "valid": len(self.valid), "test": len(self.test)}


def _check_grouped(user: np.ndarray) -> None:
    if len(user) > 1 and np.any(user[1:] < user[:-1]):
        raise ValueError(
            "events must be sorted by user (as in a prepared dataset's events.parquet)"
        )


def leave_one_out_split(user: np.ndarray, *, min_events: int = 3) -> Split:
    """Each user's last event is a test target and the one before a validation target.

    Users with fewer than ``min_events`` (>= 3) events give training targets only. Note the
    known leak: a user's test event may be earlier in time than another user's training events;
    :func:`global_temporal_split` avoids it.
    """
    if min_events < 3:
        raise ValueError("min_events must be >= 3: a user needs a train, a valid and a test event")
    _check_grouped(user)
    n = len(user)
    is_last = np.r_[user[1:] != user[:-1], True] if n else np.zeros(0, bool)
    starts = np.r_[True, user[1:] != user[:-1]] if n else np.zeros(0, bool)
    lengths = np.diff(np.r_[np.flatnonzero(starts), n])
    long_enough = np.repeat(lengths >= min_events, lengths)
    test = np.flatnonzero(is_last & long_enough)
    valid = test - 1
    train_mask = np.ones(n, bool)
    train_mask[test] = train_mask[valid] = False
    return Split(
        train=np.flatnonzero(train_mask),
        valid=valid,
        test=test,
        kind="leave_one_out",
        params={"min_events": min_events},
    )


def global_temporal_split(
    timestamp: np.ndarray, *, test_cut: int, valid_cut: int | None = None
) -> Split:
    """One global cut time: events at or after ``test_cut`` are test targets, events in
    ``[valid_cut, test_cut)`` validation targets, everything earlier training targets.

    Nothing at or after a cut is ever a training target, so no information from after the cut
    reaches the model during training (the leak leave-one-out has across users).
    """
    valid_cut = test_cut if valid_cut is None else valid_cut
    if valid_cut > test_cut:
        raise ValueError(f"valid_cut ({valid_cut}) must not be after test_cut ({test_cut})")
    train = np.flatnonzero(timestamp < valid_cut)
    valid = np.flatnonzero((timestamp >= valid_cut) & (timestamp < test_cut))
    test = np.flatnonzero(timestamp >= test_cut)
    params = {"test_cut": int(test_cut), "valid_cut": int(valid_cut)}
    return Split(train=train, valid=valid, test=test, kind="global_temporal", params=params)


def temporal_cuts(
    timestamp: np.ndarray, *, test_fraction: float = 0.1, valid_fraction: float = 0.1
) -> tuple[int, int]:
    """(valid_cut, test_cut) times leaving about the given fractions of events after each cut."""
    if not 0 < test_fraction < 1 or not 0 <= valid_fraction < 1 - test_fraction:
        raise ValueError("fractions must satisfy 0 < test, 0 <= valid and valid + test < 1")
    if len(timestamp) == 0:
        raise ValueError("no events to split")
    ordered = np.sort(timestamp)
    test_cut = int(ordered[int(len(ordered) * (1 - test_fraction))])
    valid_cut = int(ordered[int(len(ordered) * (1 - test_fraction - valid_fraction))])
    return valid_cut, test_cut


class SplitSettings(Protocol):
    """The split settings of an experiment (``ExperimentConfig.data`` has them)."""

    @property
    def split(self) -> str: ...  # "leave_one_out" or "temporal"
    @property
    def valid_fraction(self) -> float: ...  # temporal: fraction of events after the valid cut
    @property
    def test_fraction(self) -> float: ...  # temporal: fraction of events after the test cut


def make_split(data: SequenceData, settings: SplitSettings) -> Split:
    """The split named by ``settings`` (e.g. ``config.data``) over the dataset's events.

    A temporal split keeps only targets with at least one earlier event of their user.
    """
    if settings.split == "leave_one_out":
        return leave_one_out_split(data.user)
    valid_cut, test_cut = temporal_cuts(
        data.timestamp,
        test_fraction=settings.test_fraction,
        valid_fraction=settings.valid_fraction,
    )
    split = global_temporal_split(data.timestamp, test_cut=test_cut, valid_cut=valid_cut)

    def with_history(targets: np.ndarray) -> np.ndarray:
        """A target needs at least one earlier event of its user to be predicted from."""
        return targets[targets > data.user_start[data.user[targets]]]

    parts = (with_history(split.train), with_history(split.valid), with_history(split.test))
    return Split(*parts, kind=split.kind, params=split.params)
