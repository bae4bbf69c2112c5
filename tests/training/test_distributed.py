"""Training on two real CPU processes (gloo, one thread each) against one process.

Each module fixture spawns two ranks once (tests/ddp_workers.py) and the tests compare what
they wrote with a single-process Trainer doing the same work here.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ddp_workers import (
    ODD_BATCH,
    STEPS,
    runs_worker,
    spawn,
    steps_worker,
    tiny_config,
    tiny_dataset,
)
from influrec.config import ExperimentConfig
from influrec.data.dataset import EventDataset
from influrec.data.sequences import SequenceData, training_windows
from influrec.data.splits import make_split
from influrec.evaluation.protocol import TargetRanks
from influrec.run import load_model, read_run_info
from influrec.training.distributed import rank_share, unused_parameters, window_targets
from influrec.training.loop import Trainer, train
from influrec.training.ranks import Ranks
from influrec.training.schedule import epoch_batches


@pytest.fixture(scope="module")
def dataset() -> EventDataset:
    return tiny_dataset()


@pytest.fixture(scope="module")
def config() -> ExperimentConfig:
    return tiny_config()


@pytest.fixture(scope="module")
def stepped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ddp-steps")
    spawn(steps_worker, folder)
    return folder


def _single_trainer(dataset: EventDataset, config: ExperimentConfig, tmp: Path) -> Trainer:
    torch.set_num_threads(1)
    return Trainer(dataset, config, tmp / "single", progress=False)


def test_one_step_on_two_ranks_is_one_step_on_the_whole_batch(
    stepped: Path, dataset: EventDataset, config: ExperimentConfig, tmp_path: Path
) -> None:
    trainer = _single_trainer(dataset, config, tmp_path)
    batch = epoch_batches(*trainer.windows, batch_size=32, seed=config.train.seed, epoch=0)[0]
    batch = batch[:ODD_BATCH]
    shares = [rank_share(batch, Ranks(r, 2)) for r in range(2)]
    sizes = [window_targets(trainer.windows, s, "windows") for s in shares]
    assert sizes[0] != sizes[1]  # the mean over the batch is not the mean of the two means
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    loss, targets = trainer.train_step(batch)
    for rank in range(2):
        ddp = torch.load(stepped / f"step1-rank{rank}.pt")
        assert ddp["targets"] == targets == sum(sizes)
        assert ddp["loss"] == pytest.approx(loss, rel=1e-6)
        moved = 0.0
        for name, parameter in trainer.model.named_parameters():
            torch.testing.assert_close(ddp["parameters"][name], parameter, rtol=0, atol=1e-6)
            moved = max(moved, float((parameter.detach() - before[name]).abs().max()))
        assert moved > 1e-4  # the step changed the weights well beyond the tolerance


def test_ranks_hold_identical_parameters_after_several_steps(stepped: Path) -> None:
    ranks = [torch.load(stepped / f"steps-rank{r}.pt") for r in range(2)]
    first = torch.load(stepped / "step1-rank0.pt")["parameters"]
    assert ranks[0].keys() == ranks[1].keys()
    for name in ranks[0]:
        assert torch.equal(ranks[0][name], ranks[1][name]), name
    assert any(not torch.equal(ranks[0][n], first[n]) for n in first)  # STEPS steps moved them
    assert STEPS > 1


def test_gathered_validation_metrics_equal_one_process(
    stepped: Path, dataset: EventDataset, config: ExperimentConfig, tmp_path: Path
) -> None:
    """Rank 0's weights after the steps, evaluated here by one process, score what the two
    ranks measured together (each ranked half of the targets)."""
    trainer = _single_trainer(dataset, config, tmp_path)
    trainer.model.load_state_dict(torch.load(stepped / "steps-rank0.pt"), strict=False)
    single = trainer.evaluate(trainer.split.valid)
    for rank in range(2):
        ddp = json.loads((stepped / f"valid-rank{rank}.json").read_text())
        assert ddp["metrics"] == single.metrics.to_dict()
        assert ddp["seen"] == single.targets_seen
    assert single.metrics.unmasked["HR@10"] > 0


@pytest.mark.parametrize("world", [2, 3])
def test_rank_shares_are_disjoint_and_cover_every_target_once_per_epoch(
    dataset: EventDataset, config: ExperimentConfig, world: int
) -> None:
    data = SequenceData.from_dataset(dataset)
    split = make_split(data, config.data)
    starts, ends = training_windows(data, split.train, max_len=config.model.max_len)
    every = np.concatenate([np.arange(s + 1, e + 1) for s, e in zip(starts, ends, strict=True)])
    assert np.isin(every, split.train).all() and len(np.unique(every)) == len(every)
    for epoch in range(2):
        batches = epoch_batches(starts, ends, batch_size=7, seed=0, epoch=epoch)
        per_rank = []
        for rank in range(world):
            shares = [rank_share(batch, Ranks(rank, world)) for batch in batches]
            windows = np.concatenate(shares)
            per_rank.append(
                np.concatenate([np.arange(starts[w] + 1, ends[w] + 1) for w in windows])
            )
        together = np.concatenate(per_rank)
        assert len(np.unique(together)) == len(together)  # disjoint: no target twice
        assert np.array_equal(np.sort(together), np.sort(every))  # every target once
        assert all(len(t) > len(every) / world / 2 for t in per_rank)  # balanced enough


def test_parameters_the_loss_does_not_reach_are_found(
    dataset: EventDataset, tmp_path: Path
) -> None:
    """DDP must be told of them (find_unused_parameters), else it waits for their gradients."""
    trainer = _single_trainer(dataset, tiny_config(), tmp_path)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    assert unused_parameters(trainer) == []
    for name, parameter in trainer.model.named_parameters():  # the probe changed nothing
        assert parameter.grad is None and torch.equal(parameter, before[name])
    idle_head = tiny_config("model.behavior_head=true", "train.behavior_weight=0")
    found = unused_parameters(_single_trainer(dataset, idle_head, tmp_path / "b"))
    assert found and all(name.startswith("behavior_head.") for name in found)


def test_joined_ranks_put_each_target_back_in_place() -> None:
    parts = [
        TargetRanks(np.array([0, 2]), np.array([0, 1]), np.array([False, True]), None),
        TargetRanks(np.array([5]), np.array([4]), np.array([True]), None),
    ]
    joined = TargetRanks.join(parts, np.array([0, 2, 1]))
    assert joined.unmasked.tolist() == [0, 5, 2]
    assert joined.masked.tolist() == [0, 4, 1]
    assert joined.seen.tolist() == [False, True, True]


def _stopped_after_epoch_1(run: Path, copy: Path) -> None:
    """``copy``: ``run`` as it was left by a crash in its second epoch."""
    shutil.copytree(run, copy)
    shutil.rmtree(copy / "checkpoints" / "epoch-0002")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, dataset: EventDataset) -> Path:
    """``straight``: 2 epochs in one process; ``ddp``: the same on two ranks; ``resumed``:
    ``straight`` cut after epoch 1, resumed on two ranks; ``ddp-resumed``: ``ddp`` cut after
    epoch 1, resumed in one process."""
    folder = tmp_path_factory.mktemp("ddp-runs")
    torch.set_num_threads(1)
    config = tiny_config("train.epochs=2")
    train(dataset, config, folder / "straight", progress=False)
    _stopped_after_epoch_1(folder / "straight", folder / "resumed")
    spawn(runs_worker, folder)
    _stopped_after_epoch_1(folder / "ddp", folder / "ddp-resumed")
    train(dataset, config, folder / "ddp-resumed", resume=True, progress=False)
    shutil.copytree(folder / "budget", folder / "budget-cut")  # as the ranks left it
    train(dataset, config, folder / "budget", resume=True, progress=False)  # no budget now
    return folder


def test_a_run_trained_on_two_ranks_reloads_in_one_process(
    runs: Path, dataset: EventDataset, config: ExperimentConfig, tmp_path: Path
) -> None:
    run = runs / "ddp"
    info = read_run_info(run)
    assert info.finished and info.epochs_run == 2
    assert [r["epoch"] for r in _history(run)] == [1, 2]  # written once, by rank 0
    model, _ = load_model(run)
    trainer = _single_trainer(dataset, config, tmp_path)
    trainer.model.load_state_dict(model.state_dict())
    single = trainer.evaluate(trainer.split.valid)
    monitor = config.train.monitor
    assert info.best_valid is not None
    assert single.metrics.headline(mask_seen=config.eval.mask_seen)[monitor] == pytest.approx(
        info.best_valid[monitor], abs=1e-9
    )
    _assert_same_weights(run, runs / "straight")  # two ranks trained what one process did


CUT_RUNS = [("resumed", "straight"), ("ddp-resumed", "ddp")]  # (resumed run, uninterrupted run)


@pytest.mark.parametrize(("resumed", "reference"), CUT_RUNS)
def test_a_run_resumes_on_a_different_number_of_processes(
    runs: Path, resumed: str, reference: str
) -> None:
    """Epoch 1 in one process and epoch 2 on two ranks, or the other way round: the weights
    of the uninterrupted run, up to float rounding."""
    info = read_run_info(runs / resumed)
    assert info.finished and info.epochs_run == 2
    history, alone = _history(runs / resumed), _history(runs / reference)
    assert [r["epoch"] for r in history] == [1, 2]
    assert history[-1]["step"] == alone[-1]["step"]
    assert history[-1]["loss"] == pytest.approx(alone[-1]["loss"], rel=1e-6)
    _assert_same_weights(runs / resumed, runs / reference)


def test_the_ranks_stop_together_when_the_time_budget_is_up(runs: Path) -> None:
    """Rank 0's clock decides for both ranks: the run stops after the first batch (a rank
    going on alone would hang in its next step), and one process finishes the cut epoch
    as an uninterrupted run trains it."""
    cut = read_run_info(runs / "budget-cut")
    assert cut.stopped is not None and cut.stopped["reason"] == "max_minutes"
    assert cut.stopped["batch"] == 1 and cut.stopped["step"] == 1
    assert [r["partial"]["batches"] for r in _history(runs / "budget-cut")] == [1]
    assert read_run_info(runs / "budget").epochs_run == 2
    _assert_same_weights(runs / "budget", runs / "straight")


def _assert_same_weights(run: Path, other: Path) -> None:
    a, _ = load_model(run)
    b, _ = load_model(other)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=1e-6, msg=name)


def _history(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
