"""TracIn over a run's saved checkpoints: how much each logged training interaction shaped the
model.

A training interaction is one target the model learned to predict: event ``t`` of a user,
predicted from the earlier events of its training window (the interactions of
:func:`~influrec.data.sequences.training_windows`). TracIn-CP (Pruthi et al., NeurIPS'20)
approximates the effect of training on ``z`` on the loss of another example ``z'`` by summing,
over checkpoints, the learning rate spent since the previous checkpoint times the gradient
inner product::

    TracIn(z, z') = Σ_c  w_c ⟨∇ℓ(z; θ_c), ∇ℓ(z'; θ_c)⟩
    w_c = Σ_{steps since the previous checkpoint} lr / (training targets per step)

where the trainer records the learning rates summed up to each checkpoint in its
``state.json`` (``lr_sum``), so the weights follow whatever schedule actually ran, an
extended run included.

Positive values mean training on ``z`` lowered the loss of ``z'`` (a *proponent*), negative values
that it raised it (an *opponent*). Three questions are answered from one pass per checkpoint:

* ``self_influence``: TracIn(z, z), the squared gradient norm summed over training: the usual
  signal for mislabelled data in classification. With thousands of items almost every target
  has a small probability, the norm saturates near ``‖h‖²`` and says little about the target
  (see the README's measurements); the checkpoint-weighted ``loss`` is the stronger noise
  signal there;
* ``validation``: TracIn(z, validation loss), negative for interactions that hurt held-out
  predictions;
* ``queries``: TracIn(z, (user, item)) for recommendations to explain.

Beside TracIn, the same pass gives two model-based signals: ``loss``, the interaction's loss
averaged over the checkpoints, and ``context``, how much having the interaction in the context
raised the loss of the user's next training interaction: ``ℓ(t+1 | events ≤ t) - ℓ(t+1 |
events < t)``, the second read from the prediction made before ``t`` (its window's earlier
position). An interaction that does not belong where it was logged (an accidental click) is
both hard to predict and a poor context for what follows; ``loss + context`` judges it by its
neighbours on both sides.

Gradients are those of the last layer (output item embeddings and the final LayerNorm), in the
factored form of :mod:`influrec.data_influence.gradients`; the optimiser's preconditioning
(AdamW) is ignored, as in the TracIn paper's practical variant.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from influrec import run as run_folder
from influrec.config import ExperimentConfig
from influrec.data.sequences import SequenceData, history_windows, training_windows
from influrec.data.splits import make_split
from influrec.data_influence.gradients import (
    Direction,
    Gradients,
    LastLayer,
    gradients,
    history_activations,
    last_layer_params,
    products,
    window_activations,
)
from influrec.data_influence.influence_function import SolveInfo, inverse_hvp, sample_rows
from influrec.errors import InputError
from influrec.models.protocol import SequenceModel
from influrec.progress import Steps, steps

log = logging.getLogger(__name__)
VALID_CHUNK = 512  # validation targets per forward pass


@dataclass(frozen=True)
class CheckpointWeight:
    """A checkpoint TracIn reads, and the learning rate it stands for."""

    epoch: int
    step: int
    weights: Path  # its model.safetensors
    weight: float  # Σ lr over the steps since the previous checkpoint used / targets per step


@dataclass
class TracInScores:
    """TracIn scores of every training interaction (rows in event order)."""

    events: np.ndarray  # (N,) event index of each training interaction
    self_influence: np.ndarray  # (N,) TracIn(z, z)
    validation: np.ndarray  # (N,) TracIn(z, mean validation loss); < 0 hurts, or empty
    queries: np.ndarray  # (N, k) TracIn(z, query q)
    loss: np.ndarray  # (N,) the interaction's loss, averaged over checkpoints with their weights
    context: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # (N,) raise of the next training interaction's loss due to this one in its context,
    # averaged like ``loss``; NaN where the next event is not a training interaction
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def _steps_per_epoch(config: ExperimentConfig, n_windows: int) -> int:
    return math.ceil(n_windows / config.train.batch_size)


def tracin_checkpoints(
    run_dir: Path, config: ExperimentConfig, *, n_windows: int, n_targets: int, limit: int = 0
) -> list[CheckpointWeight]:
    """The run's saved checkpoints (at most ``limit``, evenly spread, the last always in),
    each weighted by the learning rate spent since the previous one."""
    saved = run_folder.saved_checkpoints(run_dir)
    if not saved:
        raise InputError(
            f"{run_dir}: no saved checkpoints; TracIn reads the per-epoch checkpoints of a run "
            "(train with train.keep_every=N to keep every Nth)"
        )
    if limit and len(saved) > limit:
        picks = np.unique(np.linspace(len(saved) - 1, 0, limit).round().astype(int))
        saved = [saved[i] for i in sorted(picks)]
    unrecorded = [c.folder for c in saved if c.lr_sum is None]
    if unrecorded:
        raise InputError(
            f"{unrecorded[0]}: its state.json records no learning-rate sum (lr_sum), which "
            "TracIn weighs each checkpoint by; runs trained by influrec before it was recorded "
            "(or resumed from such a run) lack it: train the run again"
        )
    targets_per_step = n_targets / _steps_per_epoch(config, n_windows)
    out, previous = [], 0.0
    for checkpoint in saved:
        lr_sum = float(checkpoint.lr_sum or 0.0)
        weight = (lr_sum - previous) / targets_per_step
        out.append(CheckpointWeight(checkpoint.epoch, checkpoint.step, checkpoint.weights, weight))
        previous = lr_sum
    return out


def _vocabulary_index(ids: Any, wanted: str, what: str) -> int:
    """1-based index of ``wanted`` in a vocabulary column (index 0 is padding)."""
    try:
        return ids.to_pylist().index(wanted) + 1
    except ValueError:
        raise InputError(f"{what} {wanted!r} is not in the run's dataset") from None


def window_targets(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Sorted event indices of every target of windows ``[s, e)``: events s + 1 .. e."""
    lengths = ends - starts
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.sort(np.repeat(starts + 1, lengths) + offsets)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two score vectors (tied scores share their mean rank)."""
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


class DataInfluence:
    """Training-data influence for a run folder: ``DataInfluence(run_dir).tracin(...)``."""

    def __init__(self, run_dir: Path, *, checkpoints: int = 0, batch_size: int = 128) -> None:
        self.run_dir = Path(run_dir)
        self.info = run_folder.read_run_info(self.run_dir)
        self.config = self.info.config
        if self.config.model.score_temperature > 0:
            raise InputError(
                f"{self.run_dir}: training-data influence needs dot-product scores; this model "
                f"scores by cosine (model.score_temperature="
                f"{self.config.model.score_temperature})"
            )
        self.dataset = run_folder.load_run_dataset(self.run_dir, self.info)
        self.data = SequenceData.from_dataset(self.dataset)
        self.split = make_split(self.data, self.config.data)
        self.windows = training_windows(
            self.data, self.split.train, max_len=self.config.model.max_len
        )
        self.events = window_targets(*self.windows)
        self.checkpoints = tracin_checkpoints(
            self.run_dir,
            self.config,
            n_windows=len(self.windows[0]),
            n_targets=len(self.events),
            limit=checkpoints,
        )
        self.batch_size = batch_size
        self.model, _ = run_folder.load_model(self.run_dir)

    # -- examples -------------------------------------------------------------------------
    def user_index(self, user_id: str) -> int:
        return _vocabulary_index(self.dataset.users.column("user_id"), user_id, "user")

    def item_index(self, item_id: str) -> int:
        return _vocabulary_index(self.dataset.items.column("item_id"), item_id, "item")

    def query_activations(self, pairs: Sequence[tuple[int, int]]) -> LastLayer:
        """Activations after each user's whole stored history, labelled with the item asked
        about: the loss of recommending ``item`` to ``user`` next."""
        users = np.array([u for u, _ in pairs], np.int64)
        ends = self.data.user_end[users]
        starts = np.maximum(self.data.user_start[users], ends - self.config.model.max_len)
        if np.any(ends <= starts):
            raise InputError("a queried user has no events")
        return history_activations(
            self.model, self.data, starts, ends, np.array([i for _, i in pairs], np.int64)
        )

    def validation_direction(self) -> tuple[Direction, float]:
        """Gradient of the mean validation loss (last layer) and that loss, current weights."""
        targets = self.split.valid
        if len(targets) == 0:
            raise InputError(f"{self.run_dir}: the split has no validation targets")
        total: Direction | None = None
        loss = 0.0
        for begin in range(0, len(targets), VALID_CHUNK):
            part = targets[begin : begin + VALID_CHUNK]
            starts, ends = history_windows(self.data, part, max_len=self.config.model.max_len)
            acts = history_activations(self.model, self.data, starts, ends, self.data.item[part])
            grads = gradients(self.model, acts)
            p_y = grads.probs[torch.arange(len(part)), grads.targets]
            loss += float(-torch.log(p_y.clamp_min(1e-30)).sum())
            d = grads.direction()
            total = (
                d
                if total is None
                else Direction(total.items + d.items, total.gain + d.gain, total.bias + d.bias)
            )
        assert total is not None
        return total.scaled(1.0 / len(targets)), loss / len(targets)

    def rows_of(self, events: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.events, events)

    def next_rows(self) -> np.ndarray:
        """Row of the training interaction that follows each one (the same user's next event),
        or -1 where that event is not a training interaction (a validation target)."""
        following = self.events + 1
        rows = np.minimum(np.searchsorted(self.events, following), len(self.events) - 1)
        # a user's first event is never a training target, so a match is the same user's
        return np.where(self.events[rows] == following, rows, -1)

    @property
    def batches_per_pass(self) -> int:
        """Batches of windows in one :meth:`pass_over_training` (what its bar counts)."""
        return math.ceil(len(self.windows[0]) / self.batch_size)

    def pass_over_training(
        self, *, queries: Gradients | None, directions: list[Direction], bar: Steps | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(loss, self, query dots, direction dots, context) of every training interaction,
        current weights, rows in event order (``context`` as in :class:`TracInScores`);
        ``bar`` advances once per batch of windows."""
        n, k = len(self.events), 0 if queries is None else len(queries.targets)
        loss, self_dot, skip = np.zeros(n), np.zeros(n), np.full(n, np.nan)
        query_dots, direction_dots = np.zeros((n, k)), np.zeros((n, len(directions)))
        next_rows = self.next_rows()
        for targets, acts in window_activations(
            self.model, self.data, *self.windows, batch_size=self.batch_size
        ):
            rows = self.rows_of(targets)
            # the item that follows each target, scored by the prediction made before it
            following = np.where(
                next_rows[rows] >= 0, self.data.item[np.minimum(targets + 1, len(self.data) - 1)], 0
            )
            out = products(
                self.model,
                acts,
                queries=queries,
                directions=directions,
                other=torch.from_numpy(following),
            )
            loss[rows], self_dot[rows], skip[rows] = out.loss, out.self_dot, out.other_loss
            query_dots[rows], direction_dots[rows] = out.query_dots, out.direction_dots
            if bar is not None:
                bar.advance()
        context = np.where(next_rows >= 0, loss[next_rows] - skip, np.nan)
        return loss, self_dot, query_dots, direction_dots, context

    def load_weights(self, weights: Path) -> SequenceModel:
        run_folder.load_weights(self.model, weights)
        self.model.eval()
        return self.model

    # -- TracIn ---------------------------------------------------------------------------
    def tracin(
        self,
        *,
        queries: Sequence[tuple[int, int]] = (),
        validation: bool = True,
        progress: bool | None = None,
    ) -> TracInScores:
        """TracIn self-influence, influence on the validation loss (when ``validation``) and on
        each (user_idx, item_idx) query, for every training interaction. ``progress``: a bar
        over the checkpoints' passes (``None``: only where stderr is a terminal)."""
        started = time.perf_counter()
        n, k = len(self.events), len(queries)
        scores = TracInScores(
            events=self.events,
            self_influence=np.zeros(n),
            validation=np.zeros(n if validation else 0),
            queries=np.zeros((n, k)),
            loss=np.zeros(n),
            context=np.zeros(n),
        )
        total = len(self.checkpoints) * self.batches_per_pass
        description = f"TracIn over {len(self.checkpoints)} checkpoints"
        with steps(total, description, enabled=progress) as bar:
            for point in self.checkpoints:
                scores.checkpoints.append(
                    self._add_checkpoint(scores, point, queries, bar, validation=validation)
                )
        total_weight = sum(point.weight for point in self.checkpoints)
        scores.loss /= total_weight
        scores.context /= total_weight
        self.load_weights(self.run_dir / run_folder.MODEL_FILE)
        scores.seconds = time.perf_counter() - started
        return scores

    def _add_checkpoint(
        self,
        scores: TracInScores,
        point: CheckpointWeight,
        queries: Sequence[tuple[int, int]],
        bar: Steps,
        *,
        validation: bool,
    ) -> dict[str, Any]:
        """Add one checkpoint's weighted terms to ``scores``; returns what it records."""
        self.load_weights(point.weights)
        grads = gradients(self.model, self.query_activations(queries)) if queries else None
        directions, record = [], {"epoch": point.epoch, "weight": point.weight}
        if validation:
            direction, record["validation_loss"] = self.validation_direction()
            directions.append(direction)
        loss, self_dot, query_dots, direction_dots, context = self.pass_over_training(
            queries=grads, directions=directions, bar=bar
        )
        scores.context += point.weight * context
        scores.self_influence += point.weight * self_dot
        scores.queries += point.weight * query_dots
        if validation:
            scores.validation += point.weight * direction_dots[:, 0]
        scores.loss += point.weight * loss
        return record

    # -- influence functions ---------------------------------------------------------------
    def training_sample(self, size: int, seed: int = 0) -> LastLayer:
        """Last-layer activations of a random sample of training interactions (best weights)."""
        rows = sample_rows(len(self.events), size, seed)
        wanted = np.zeros(len(self.events), bool)
        wanted[rows] = True
        starts, ends = self.windows
        order = np.argsort(starts, kind="stable")
        # window [s, e) predicts events s + 1 .. e: only the windows holding a sampled target run
        holding = order[np.searchsorted(starts[order], self.events[rows], side="left") - 1]
        used = np.unique(holding)
        parts = []
        for targets, acts in window_activations(
            self.model, self.data, starts[used], ends[used], batch_size=self.batch_size
        ):
            keep = torch.from_numpy(wanted[self.rows_of(targets)])
            parts.append(LastLayer(acts.hidden[keep], acts.normed[keep], acts.targets[keep]))
        return LastLayer.concat(parts)

    def influence_function(
        self,
        queries: Sequence[tuple[int, int]] = (),
        *,
        validation: bool = False,
        damping: float = 0.01,
        sample: int = 5000,
        iterations: int = 50,
        seed: int = 0,
        weights: Path | None = None,
        progress: bool | None = None,
    ) -> tuple[np.ndarray, list[SolveInfo]]:
        """Influence-function scores (N, k) of every training interaction on each
        (user_idx, item_idx) query, plus a last column for the mean validation loss when
        ``validation``; at the run's best weights unless ``weights``. Also each solve's
        convergence. ``progress``: a bar over the solves' iterations and the pass over the
        training interactions (``None``: only where stderr is a terminal)."""
        self.load_weights(weights or self.run_dir / run_folder.MODEL_FILE)
        acts = self.training_sample(sample, seed)
        params = last_layer_params(self.model)
        vectors = []
        if queries:
            grads = gradients(self.model, self.query_activations(queries))
            for q in range(len(queries)):
                weight = torch.zeros(len(queries))
                weight[q] = 1.0
                vectors.append(grads.direction(weight))
        if validation:
            vectors.append(self.validation_direction()[0])
        solutions, infos = [], []
        total = len(vectors) * iterations + self.batches_per_pass
        with steps(total, "influence function", enabled=progress) as bar:
            for vector in vectors:
                solution, info = inverse_hvp(
                    params, acts, vector, damping=damping, iterations=iterations
                )
                solutions.append(solution)
                infos.append(info)
                bar.advance(iterations)  # a solve that converged early skips the rest
            _, _, _, dots, _ = self.pass_over_training(queries=None, directions=solutions, bar=bar)
        self.load_weights(self.run_dir / run_folder.MODEL_FILE)
        return dots, infos

    # -- describing interactions -----------------------------------------------------------
    def describe(self, events: np.ndarray) -> list[dict[str, Any]]:
        """User, position in the user's sequence, item, behaviour and time of events."""
        table = self.dataset.events.take(events)
        users, items = table.column("user_id").to_pylist(), table.column("item_id").to_pylist()
        behaviors = table.column("behavior").to_pylist()
        times = table.column("timestamp").to_pylist()
        first = self.data.user_start[self.data.user[events]]
        return [
            {
                "event": int(e),
                "user": users[i],
                "position": int(e - first[i]),
                "item": items[i],
                "behavior": behaviors[i],
                "timestamp": int(times[i]),
            }
            for i, e in enumerate(events)
        ]
