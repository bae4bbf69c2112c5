"""Score many edited versions of one history in a single batched forward pass.

An edited history is described by an index row into the (possibly extended) history's events:
deleting an event really removes it (the row skips it and everything after moves up), it is
not a zeroed embedding. Time-gap buckets are recomputed after every edit, since removing an
event changes the gap of the one that follows it. Only the last ``max_len`` events of a row
are seen by the model, exactly as at serving time.

Every model gets exact leave-one-out by re-scoring each deletion as its own row, in batches
(:meth:`Scorer.scores`). Models that declare the capabilities (``model.capabilities``) get it
faster, with the same numbers: leave-one-out deletions share the events before the deleted one,
at the same positions (every deletion row has the same length, so this holds for either
``model.positions``), and causal attention makes their hidden states independent of what
follows. :meth:`Scorer.leave_one_out_scores` then encodes those events once and computes each
deletion only from the deleted event on (:mod:`~influrec.influence.prefix_cache`), or shares
the first layer's attention between all deletions (:mod:`~influrec.influence.deletions`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

from influrec.data.batching import SequenceBatch, batch_rows
from influrec.data.history import History
from influrec.inference import check_finite
from influrec.influence import deletions, prefix_cache
from influrec.models.protocol import SequenceModel, last_hidden, score_last
from influrec.models.transformer import BehaviorTransformer


class Scorer:
    """Next-item scores of edited histories under one model, in bounded batches (no gradients).

    ``prefix_chunk_rows``: about how many leave-one-out deletions go in one batch when the
    prefix is reused (:meth:`leave_one_out_scores`): fewer recompute less of what the rows
    share, more run fewer batches (each has a fixed cost).
    """

    def __init__(
        self, model: SequenceModel, *, batch_size: int = 256, prefix_chunk_rows: int = 20
    ) -> None:
        self.model, self.batch_size = model.eval(), batch_size
        self.prefix_chunk_rows = prefix_chunk_rows

    @property
    def max_len(self) -> int:
        return self.model.config.max_len

    @torch.no_grad()
    def scores(self, history: History, rows: Sequence[np.ndarray]) -> torch.Tensor:
        """(len(rows), I + 1) scores after each edited history; padding column at -inf.

        Rows of equal length are batched together, so no batch needs padding and attention
        runs on the fused causal kernel.
        """
        check_finite(history)
        lengths = np.array([min(len(r), self.max_len) for r in rows])
        order = np.argsort(lengths, kind="stable")
        out = torch.empty(len(rows), self.model.n_items + 1)
        for length in np.unique(lengths):
            same = order[lengths[order] == length]
            for begin in range(0, len(same), self.batch_size):
                chunk = same[begin : begin + self.batch_size]
                out[torch.from_numpy(chunk)] = self._score([rows[i] for i in chunk], history)
        return out

    def _score(self, rows: list[np.ndarray], history: History) -> torch.Tensor:
        config = self.model.config
        batch = batch_rows(history, rows, max_len=config.max_len, time_buckets=config.time_buckets)
        return score_last(
            self.model, batch.items, batch.behaviors, batch.gaps, batch.values
        ).float()

    def window(self, history: History) -> np.ndarray:
        """Indices of the events the model sees (the last max_len)."""
        return np.arange(max(0, len(history) - self.max_len), len(history))

    def leave_one_out_scores(self, history: History) -> torch.Tensor:
        """(1 + W, I + 1) scores after the whole history, then after deleting each of the W
        events of :meth:`window`, in order.

        With more than ``prefix_chunk_rows`` events and a model that declares the capability,
        the first layer is shared by all deletions (models without time gaps,
        :meth:`deletion_scores_sharing_first_layer`) or the shared prefix of the deletions is
        reused (:meth:`deletion_scores_reusing_prefix`); otherwise every deletion is scored
        whole as its own row (:meth:`deletion_scores_rescoring`; a single batch is cheaper for
        short windows). All three give the same scores (to float rounding).
        """
        if len(self.window(history)) > self.prefix_chunk_rows:
            capabilities = self.model.capabilities
            if capabilities.shared_first_layer_deletions and self._shares_first_layer(history):
                return self.deletion_scores_sharing_first_layer(history)
            if capabilities.prefix_reuse:
                return self.deletion_scores_reusing_prefix(history)
        return self.deletion_scores_rescoring(history)

    def deletion_scores_rescoring(self, history: History) -> torch.Tensor:
        """:meth:`leave_one_out_scores` for any model: the whole history and each deletion
        re-scored whole, each as its own row, in batches (:meth:`scores`)."""
        n = len(history)
        rows = [np.arange(n)] + [without(n, [p]) for p in self.window(history)]
        return self.scores(history, rows)

    def _shares_first_layer(self, history: History) -> bool:
        """Whether the shared-first-layer kernel applies: no time gaps, and a working tensor
        of at most :data:`SHARED_FLOATS` floats."""
        model = self.model
        window = len(self.window(history))
        return model.config.time_buckets == 0 and window * window * model.config.d_model <= (
            SHARED_FLOATS
        )

    @torch.no_grad()
    def deletion_scores_sharing_first_layer(self, history: History) -> torch.Tensor:
        """:meth:`leave_one_out_scores` by :func:`~influrec.influence.deletions.encode_deletions`:
        the first layer's attention is shared by all deletions (models that declare
        ``shared_first_layer_deletions``, without time gaps; at least 2 events)."""
        model = self._transformer("shared_first_layer_deletions")
        base, deleted = self._deletion_rows(history)
        events = batch_rows(history, [base], max_len=len(base), time_buckets=0)
        values = events.values if model.value_embedding is not None else None
        hidden = [
            self._whole_hidden(history),
            deletions.encode_deletions(
                model, events.items, events.behaviors, values, torch.from_numpy(deleted)
            ),
        ]
        return self.model.item_scores(torch.cat(hidden)).float()

    @torch.no_grad()
    def deletion_scores_reusing_prefix(self, history: History) -> torch.Tensor:
        """:meth:`leave_one_out_scores` computed by encoding the events before each deletion
        once. Needs at least 2 events.

        Every deletion row keeps the last P = min(n - 1, max_len) events of ``base`` (the last
        P + 1 events of the history) but one, so the events before the deleted one sit at the
        same positions in every row (with ``"end"`` positions too, since all rows are P events
        long). Their keys and values come from one pass over base[:-1]; the deletions are
        scored in batches of about ``prefix_chunk_rows`` consecutive deletions, each batch
        recomputing from its earliest deletion on. For models that declare ``prefix_reuse``.
        """
        model = self._transformer("prefix_reuse")
        config = model.config
        base, deleted = self._deletion_rows(history)

        def batch(rows: Sequence[np.ndarray]) -> SequenceBatch:
            return batch_rows(
                history, rows, max_len=config.max_len, time_buckets=config.time_buckets
            )

        prefix = batch([base[:-1]])
        cache = prefix_cache.encode_prefix(
            model, prefix.items, prefix.behaviors, prefix.gaps, prefix.values
        )
        hidden = [self._whole_hidden(history)]
        rows_per_chunk = max(1, min(self.prefix_chunk_rows, self.batch_size))
        for chunk in np.array_split(deleted, -(-len(deleted) // rows_per_chunk)):
            # events before ``start`` are the same in every row: at least one is recomputed
            start = min(int(chunk[0]), len(base) - 2)
            rows = batch([np.delete(base, j) for j in chunk])
            suffix = (t[:, start:] for t in (rows.items, rows.behaviors, rows.gaps, rows.values))
            hidden.append(prefix_cache.encode_suffix(model, cache, *suffix, start=start))
        return self.model.item_scores(torch.cat(hidden)).float()

    def _deletion_rows(self, history: History) -> tuple[np.ndarray, np.ndarray]:
        """``base``: the last P + 1 events (P = min(n - 1, max_len)), each deletion row being
        base without one event; ``deleted``: the indices into base of the window's events."""
        n = len(history)
        base = np.arange(max(0, n - self.max_len - 1), n)
        return base, np.arange(len(base) - len(self.window(history)), len(base))

    def _whole_hidden(self, history: History) -> torch.Tensor:
        """Last hidden state (1, D) after the whole history (its last max_len events)."""
        config = self.model.config
        full = batch_rows(
            history,
            [np.arange(len(history))],
            max_len=config.max_len,
            time_buckets=config.time_buckets,
        )
        return last_hidden(self.model, full.items, full.behaviors, full.gaps, full.values)

    def _transformer(
        self, capability: Literal["prefix_reuse", "shared_first_layer_deletions"]
    ) -> BehaviorTransformer:
        """The model, for the exact-LOO kernels that read its Transformer layers; ValueError
        when its class does not declare ``capability`` (see
        :class:`~influrec.models.protocol.Capabilities`)."""
        name = type(self.model).__name__
        if not getattr(self.model.capabilities, capability):
            raise ValueError(f"{name} does not declare {capability}; use deletion_scores_rescoring")
        if not isinstance(self.model, BehaviorTransformer):  # a model class's own bug
            raise TypeError(f"{name} declares {capability} but is not a BehaviorTransformer")
        return self.model


SHARED_FLOATS = 2**25
"""Largest (window² x d_model) for which leave-one-out shares the first layer (its working
tensor holds that many floats, 128 MB); longer windows reuse the prefix instead."""


def without(n_events: int, removed: Sequence[int] | np.ndarray) -> np.ndarray:
    """Index row of a history of ``n_events`` with the ``removed`` positions deleted."""
    keep = np.ones(n_events, bool)
    keep[np.asarray(removed, dtype=np.int64)] = False
    return np.flatnonzero(keep)


def extend(history: History, events: Sequence[tuple[int, int, int, float]]) -> History:
    """A history with extra (item, behaviour, timestamp, value) events appended at the end."""
    if not events:
        return history
    items, behaviors, times, values = (np.array(c) for c in zip(*events, strict=True))
    return History(
        np.concatenate([history.items, items.astype(np.int64)]),
        np.concatenate([history.behaviors, behaviors.astype(np.int64)]),
        np.concatenate([history.timestamps, times.astype(np.int64)]),
        np.concatenate([history.values, values.astype(np.float32)]),
    )
