"""One user's events as plain columns: what a model is asked about and what influence edits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class History:
    """One user's events in time order (vocabulary indices).

    Also serves as the event columns a batch is gathered from (see
    :mod:`influrec.data.batching`): the flat arrays of a whole dataset fit it as well.
    """

    items: np.ndarray  # (L,) int64 item_idx
    behaviors: np.ndarray  # (L,) int64 behavior_idx
    timestamps: np.ndarray  # (L,) int64 seconds
    values: np.ndarray  # (L,) float32, 0 where unknown

    def __len__(self) -> int:
        return len(self.items)

    @classmethod
    def empty(cls) -> History:
        """No events: a cold start (see ``Recommender.cold_start_scores``)."""
        return cls(*(np.zeros(0, dtype) for dtype in (np.int64, np.int64, np.int64, np.float32)))
