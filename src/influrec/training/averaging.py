"""``train.average_best``: the mean weights of a run's best epochs, kept only when they score
higher on validation than the best epoch alone."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from influrec import run as run_folder

if TYPE_CHECKING:
    from influrec.training.loop import Trainer

log = logging.getLogger(__name__)


def best_epochs(history: list[dict[str, Any]], monitor: str, count: int) -> list[int]:
    """The ``count`` epochs of ``history`` with the highest validation ``monitor`` (earliest
    first on ties)."""
    ranked = sorted(history, key=lambda r: (-r["valid"][monitor], r["epoch"]))
    return [r["epoch"] for r in ranked[:count]]


def average_best(trainer: Trainer, count: int) -> None:
    """Replace the run's model by the mean weights of its ``count`` best epochs when that
    scores higher on validation than the best epoch alone (recorded in ``trainer.averaged``)."""
    monitor = trainer.config.train.monitor
    epochs = best_epochs(trainer.history, monitor, count)
    if len(epochs) < 2:
        return
    folders = {c.epoch: c.folder for c in run_folder.saved_checkpoints(trainer.run_dir)}
    states = [run_folder.read_weights(folders[e] / run_folder.MODEL_FILE) for e in epochs]
    mean = {  # weights averaged; integer buffers (item feature ids) are the same in all
        name: sum(s[name] for s in states) / len(states) if tensor.is_floating_point() else tensor
        for name, tensor in states[0].items()
    }
    trainer.model.load_state_dict(mean)
    valid = trainer.evaluate(trainer.split.valid)
    metric = float(valid.metrics.headline(mask_seen=trainer.config.eval.mask_seen)[monitor])
    kept = metric > trainer.best_metric
    trainer.averaged = {"epochs": sorted(epochs), "valid": metric, "kept": kept}
    log.info(
        "average of epochs %s: valid %.4f (%s)",
        sorted(epochs),
        metric,
        "kept" if kept else "not kept",
    )
    if kept and trainer.ranks.writes:
        run_folder.save_weights(trainer.model, trainer.run_dir / run_folder.MODEL_FILE)
