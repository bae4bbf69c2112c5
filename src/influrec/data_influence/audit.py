"""Who pushes an item? Training users ranked by how much their data raises chosen items.

Fake profiles that promote an item (shilling) work by training: their interactions teach the
model to predict the item after the popular items they pair it with. TracIn measures exactly
that. For the chosen items, the *push* of a training interaction z is

    push(z) = Σ_c  w_c ⟨∇ℓ(z; θ_c), ∇L_X(θ_c)⟩,   L_X = mean over sampled real users u of
                                                     -log p(X | u's history)

(positive: training on z lowered L_X, so X rose for those users), summed over the run's
checkpoints as in :mod:`influrec.data_influence.tracin`. A user's push is the sum over their
training interactions. Users whose push stands out from everyone else's (a robust z-score:
distance from the median in median absolute deviations) are flagged, and the dataset can be
written without them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from influrec import run as run_folder
from influrec.data.dataset import EventDataset
from influrec.data_influence.cleaning import remove_events
from influrec.data_influence.gradients import Direction, gradients
from influrec.data_influence.tracin import DataInfluence
from influrec.errors import InputError
from influrec.progress import steps

FLAG_Z = 5.0  # robust z-score above which a user's push is flagged


@dataclass(frozen=True)
class Audit:
    items: list[str]  # the audited items
    users: np.ndarray  # (U,) user_idx of every training user, most pushing first
    push: np.ndarray  # (U,) each one's push (sum over their training interactions)
    z: np.ndarray  # (U,) robust z-score of the push
    interactions: np.ndarray  # (U,) training interactions of each
    flagged: np.ndarray  # (F,) user_idx of the users flagged (z > flag_z), most pushing first
    queried_users: int  # real users whose recommendations of the items were measured
    seconds: float


def item_direction(analysis: DataInfluence, items: Sequence[int], users: np.ndarray) -> Direction:
    """Mean last-layer gradient of -log p(item | user's history) over users x items, at the
    weights loaded now."""
    pairs = [(int(u), int(i)) for u in users for i in items]
    grads = gradients(analysis.model, analysis.query_activations(pairs))
    return grads.direction().scaled(1.0 / len(pairs))


def audit_items(
    analysis: DataInfluence,
    item_ids: Sequence[str],
    *,
    sample_users: int = 200,
    seed: int = 0,
    flag_z: float = FLAG_Z,
    progress: bool | None = None,
) -> Audit:
    """Rank the training users of `analysis`'s run by their push on `item_ids` (see the
    module's docstring), measured on `sample_users` random users (seeded)."""
    if not item_ids:
        raise InputError("name at least one item to audit", setting="item")
    started = time.perf_counter()
    items = [analysis.item_index(item) for item in item_ids]
    users = _sample_users(analysis, sample_users, seed)
    push = np.zeros(len(analysis.events))
    with steps(len(analysis.checkpoints), "auditing checkpoints", enabled=progress) as bar:
        for point in analysis.checkpoints:
            analysis.load_weights(point.weights)
            direction = item_direction(analysis, items, users)
            *_, dots, _ = analysis.pass_over_training(queries=None, directions=[direction])
            # the loss gradients' product: > 0 when training on z lowered L_X
            push += point.weight * dots[:, 0]
            bar.advance()
    analysis.load_weights(analysis.run_dir / run_folder.MODEL_FILE)
    owners = analysis.data.user[analysis.events]
    n_users = len(analysis.data.user_start)
    per_user = np.bincount(owners, weights=push, minlength=n_users)
    counts = np.bincount(owners, minlength=n_users)
    trained = np.flatnonzero(counts > 0)
    z = robust_z(per_user[trained])
    order = np.argsort(-per_user[trained], kind="stable")
    ranked = trained[order]
    return Audit(
        items=list(item_ids),
        users=ranked,
        push=per_user[ranked],
        z=z[order],
        interactions=counts[ranked],
        flagged=ranked[z[order] > flag_z],
        queried_users=len(users),
        seconds=time.perf_counter() - started,
    )


def robust_z(values: np.ndarray) -> np.ndarray:
    """(x - median) / (1.4826 MAD): a z-score that a few outliers cannot drag along."""
    median = np.median(values)
    mad = 1.4826 * np.median(np.abs(values - median))
    return (values - median) / (mad if mad > 0 else np.std(values) or 1.0)


def _sample_users(analysis: DataInfluence, size: int, seed: int) -> np.ndarray:
    """Random users (seeded) with at least one event, whose recommendations are measured."""
    lengths = analysis.data.user_end - analysis.data.user_start
    candidates = np.flatnonzero(lengths > 0)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(candidates, size=min(size, len(candidates)), replace=False))


def without_users(
    dataset: EventDataset, users: np.ndarray, *, note: dict[str, object]
) -> EventDataset:
    """The dataset without every event of `users` (user_idx)."""
    owners = dataset.events.column("user_idx").to_numpy()
    return remove_events(dataset, np.flatnonzero(np.isin(owners, users)), note=note)


def write_cleaned(
    analysis: DataInfluence, audit: Audit, out: Path, *, overwrite: bool = False
) -> Path:
    """Write the run's dataset without the flagged users' events to `out`."""
    note = {"audit": audit.items, "flagged_users": len(audit.flagged)}
    return without_users(analysis.dataset, audit.flagged, note=note).save(out, overwrite=overwrite)
