"""TracIn's factored last-layer gradients against autograd, and what its scores mean."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from influrec import run as run_folder
from influrec.cli.main import main
from influrec.config import TrainConfig
from influrec.data_influence import DataInfluence
from influrec.data_influence.gradients import (
    Direction,
    LastLayer,
    gradients,
    products,
    window_activations,
)
from influrec.errors import InputError
from tests_helpers import train_tiny_run


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tracin")
    schedule = ("train.warmup_steps=3", "train.min_lr_ratio=0.1")  # a short warm-up, a floor
    kept = ("train.keep_every=1", "train.keep_checkpoints=1")
    return train_tiny_run(root, epochs=3, extra=(*kept, *schedule))


def _loss(params: tuple[torch.Tensor, ...], acts: LastLayer, row: int) -> torch.Tensor:
    items, gain, bias = params
    h = acts.normed[row] * gain + bias
    scores = (h @ items.T).masked_fill(torch.arange(items.shape[0]) == 0, float("-inf"))
    return F.cross_entropy(scores[None], acts.targets[row : row + 1])


def _autograd(model: torch.nn.Module, acts: LastLayer, row: int) -> torch.Tensor:
    params = tuple(
        t.detach().clone().requires_grad_(True)
        for t in (model.item_table(), model.ln_final.weight, model.ln_final.bias)
    )
    grads = torch.autograd.grad(_loss(params, acts, row), params)
    return torch.cat([g.ravel() for g in grads])


def test_factored_products_equal_autograd(run: Path) -> None:
    _check_products_against_autograd(run)


def test_with_item_features_the_item_table_is_the_output_layer(tmp_path: Path) -> None:
    run = train_tiny_run(tmp_path, epochs=1, extra=('model.item_features=["category"]',))
    _check_products_against_autograd(run)


def _check_products_against_autograd(run: Path) -> None:
    analysis = DataInfluence(run)
    model = analysis.model
    targets, acts = next(window_activations(model, analysis.data, *analysis.windows, batch_size=4))
    gamma, beta = model.ln_final.weight.detach(), model.ln_final.bias.detach()
    torch.testing.assert_close(acts.hidden, acts.normed * gamma + beta)  # the hook saw ln_final
    assert np.array_equal(acts.targets.numpy(), analysis.data.item[targets])
    rows = list(range(min(6, len(acts))))
    exact = torch.stack([_autograd(model, acts, r) for r in rows])  # (n, P)
    queries = gradients(model, acts.rows(0, 2))
    generator = torch.Generator().manual_seed(0)
    direction = Direction(
        torch.randn(model.item_table().shape, generator=generator),
        torch.randn(gamma.shape, generator=generator),
        torch.randn(beta.shape, generator=generator),
    )
    out = products(model, acts.rows(0, len(rows)), queries=queries, directions=[direction])
    np.testing.assert_allclose(out.self_dot, (exact * exact).sum(1).numpy(), rtol=1e-4)
    np.testing.assert_allclose(out.query_dots, (exact @ exact[:2].T).numpy(), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(
        out.direction_dots[:, 0], (exact @ direction.flat()).numpy(), rtol=1e-4, atol=1e-6
    )
    dense = queries.direction().flat()  # sum of the two query gradients
    torch.testing.assert_close(dense, exact[:2].sum(0), rtol=1e-4, atol=1e-6)


def test_gradient_step_changes_query_loss_as_predicted(run: Path) -> None:
    """One SGD step on interaction z changes the loss of query q by about -lr <∇ℓz, ∇ℓq>."""
    analysis = DataInfluence(run)
    model = analysis.model
    _, acts = next(window_activations(model, analysis.data, *analysis.windows, batch_size=8))
    z, q, lr = 0, len(acts) - 1, 1e-2
    params = (model.item_embedding.weight, model.ln_final.weight, model.ln_final.bias)
    step = _autograd(model, acts, z)
    dot = float(step @ _autograd(model, acts, q))
    before = float(_loss(tuple(p.detach() for p in params), acts, q))
    sizes = [p.numel() for p in params]
    moved = tuple(
        (p.detach() - lr * g.view_as(p))
        for p, g in zip(params, torch.split(step, sizes), strict=True)
    )
    after = float(_loss(moved, acts, q))
    assert after - before == pytest.approx(-lr * dot, rel=0.05, abs=1e-6)


def written_out_lr(step: int, train: TrainConfig, total: int) -> float:
    """The learning rate of optimizer step ``step`` (0-based): linear warm-up to ``lr`` over
    ``warmup_steps`` steps, then half a cosine from ``lr`` down to ``lr * min_lr_ratio`` at
    step ``total``."""
    if step < train.warmup_steps:
        return train.lr * (step + 1) / train.warmup_steps
    done = (step - train.warmup_steps) / (total - train.warmup_steps)
    floor = train.lr * train.min_lr_ratio
    return floor + (train.lr - floor) * (1 + math.cos(math.pi * done)) / 2


def test_checkpoint_weights_spread_the_learning_rate(run: Path) -> None:
    """Each checkpoint weighs the learning rate spent since the previous one, per target of a
    step: sums of the warm-up + cosine schedule written out here, which must also be the rate
    the trainer logged after each epoch (metrics.jsonl)."""
    analysis = DataInfluence(run)
    info = run_folder.read_run_info(run)
    train = analysis.config.train
    per_epoch = math.ceil(info.training_windows / train.batch_size)
    total = per_epoch * train.epochs
    assert train.warmup_steps < per_epoch < total  # warm-up, cosine and floor all reached
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged] == [per_epoch * e for e in (1, 2, 3)]
    for record in logged:  # the rate of the next step, the last epoch's at the floor
        assert record["lr"] == pytest.approx(written_out_lr(record["step"], train, total))
    assert logged[-1]["lr"] == pytest.approx(train.lr * train.min_lr_ratio)

    def weight(first: int, last: int) -> float:
        spent = sum(written_out_lr(s, train, total) for s in range(first, last))
        return spent / (len(analysis.events) / per_epoch)  # per target of a step

    assert [(c.epoch, c.step) for c in analysis.checkpoints] == [
        (e, per_epoch * e) for e in (1, 2, 3)
    ]
    expected = [weight(s - per_epoch, s) for s in (per_epoch, 2 * per_epoch, total)]
    assert [c.weight for c in analysis.checkpoints] == pytest.approx(expected, rel=1e-9)
    assert info.training_windows == len(analysis.windows[0])
    limited = DataInfluence(run, checkpoints=2)
    assert [c.epoch for c in limited.checkpoints] == [1, 3]  # evenly spread, the last kept
    expected = [weight(0, per_epoch), weight(per_epoch, total)]  # the last takes epochs 2-3
    assert [c.weight for c in limited.checkpoints] == pytest.approx(expected, rel=1e-9)


def test_tracin_scores_every_training_target_once(run: Path) -> None:
    analysis = DataInfluence(run)
    split = analysis.split
    data = analysis.data
    expected = np.sort(split.train[split.train > data.user_start[data.user[split.train]]])
    assert np.array_equal(analysis.events, expected)
    scores = analysis.tracin(queries=[(1, 2)], validation=True)
    assert scores.self_influence.shape == scores.validation.shape == (len(expected),)
    assert np.all(scores.self_influence > 0)
    assert scores.queries.shape == (len(expected), 1)
    assert len(scores.checkpoints) == 3
    # self-influence sums weight x squared gradient norm; loss is the weighted mean loss
    self_sum, loss_sum = np.zeros(len(expected)), np.zeros(len(expected))
    for point in analysis.checkpoints:
        analysis.load_weights(point.weights)
        loss, self_dot, _, _, _ = analysis.pass_over_training(queries=None, directions=[])
        self_sum += point.weight * self_dot
        loss_sum += point.weight * loss
    np.testing.assert_allclose(scores.self_influence, self_sum, rtol=1e-6)
    weights = sum(point.weight for point in analysis.checkpoints)
    np.testing.assert_allclose(scores.loss, loss_sum / weights, rtol=1e-6)


def test_tracin_needs_checkpoints(tmp_path: Path) -> None:
    run = train_tiny_run(tmp_path, epochs=1)
    for folder in run_folder.list_checkpoints(run):
        (folder / "state.json").unlink()
    with pytest.raises(Exception, match="no saved checkpoints"):
        DataInfluence(run)


def test_cosine_scored_runs_are_refused(tmp_path: Path) -> None:
    run = train_tiny_run(tmp_path, epochs=1, extra=("model.score_temperature=0.1",))
    with pytest.raises(InputError, match="needs dot-product scores"):
        DataInfluence(run)


def test_data_influence_cli(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    user = "u1"
    items = DataInfluence(run).dataset.items.column("item_id").to_pylist()
    assert (
        main(
            [
                "data-influence",
                str(run),
                "--user",
                user,
                "--item",
                items[0],
                "--top",
                "3",
                "--influence-function",
                "--json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert len(result["supporting"]) == len(result["opposing"]) == 3
    first = result["supporting"][0]
    assert set(first) >= {"user", "position", "item", "behavior", "timestamp", "tracin"}
    assert first["tracin"] >= result["supporting"][-1]["tracin"]
    assert result["opposing"][0]["tracin"] <= result["opposing"][-1]["tracin"]
    text_argv = ["data-influence", str(run), "--user", user, "--item", items[0], "--top", "3"]
    assert main([*text_argv, "--influence-function"]) == 0
    text = capsys.readouterr().out
    assert "TracIn vs influence function: Spearman" in text and "time (UTC)" in text
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", text)  # times as dates, not epochs
    assert -1 <= result["influence_function"]["spearman_with_tracin"] <= 1
    assert main(["data-influence", str(run), "--user", "nobody", "--item", items[0]]) == 2
    assert "nobody" in capsys.readouterr().err


def test_context_is_the_next_interactions_loss_with_minus_without_this_one(
    tmp_path: Path,
) -> None:
    # "start" positions: a prefix of a window is encoded as that prefix alone would be
    run = train_tiny_run(tmp_path, epochs=2, max_len=16, extra=("model.positions=start",))
    analysis = DataInfluence(run)
    data, events = analysis.data, analysis.events
    starts, ends = analysis.windows
    model = analysis.load_weights(run / run_folder.MODEL_FILE)
    loss, _, _, _, context = analysis.pass_over_training(queries=None, directions=[])
    next_rows = analysis.next_rows()
    last = np.flatnonzero(next_rows < 0)
    # the rows without a next training interaction are exactly each user's last one
    assert len(last) == len(np.unique(data.user[events]))
    assert np.array_equal(np.unique(data.user[events[last]]), np.unique(data.user[events]))
    assert np.all(np.isnan(context[last])) and np.all(np.isfinite(np.delete(context, last)))

    def window_start(target: int) -> int:
        (w,) = np.flatnonzero((starts < target) & (target <= ends))
        return int(starts[w])

    def loss_of(item: int, first: int, last: int) -> float:
        """Cross-entropy of ``item`` after events first..last."""
        span = slice(first, last + 1)
        items = torch.from_numpy(data.item[span])[None]
        behaviors = torch.from_numpy(data.behavior[span])[None]
        with torch.no_grad():
            hidden = model(items, behaviors, last_only=True)[:, -1]
        return float(F.cross_entropy(model.item_scores(hidden), torch.tensor([item])))

    checked = np.flatnonzero(next_rows >= 0)[::7][:30]
    crossing = 0
    for row in checked:
        t = int(events[row])
        following = int(data.item[t + 1])
        with_t = loss_of(following, window_start(t + 1), t)
        without_t = loss_of(following, window_start(t), t - 1)
        assert loss[next_rows[row]] == pytest.approx(with_t, rel=1e-4, abs=1e-5)
        assert context[row] == pytest.approx(with_t - without_t, rel=1e-4, abs=1e-5)
        crossing += window_start(t + 1) != window_start(t)
    assert len(checked) == 30 and crossing >= 1  # also across a window boundary


def test_spearman_gives_tied_scores_their_mean_rank() -> None:
    from influrec.data_influence import spearman

    # ranks (1.5, 1.5, 3) against (1, 2, 3): covariance 1.5, variances 1.5 and 2
    assert spearman(np.array([1.0, 1.0, 2.0]), np.array([1.0, 2.0, 3.0])) == pytest.approx(
        1.5 / np.sqrt(1.5 * 2.0)
    )
    assert spearman(np.arange(5.0), -np.arange(5.0)) == pytest.approx(-1.0)


def test_an_extended_run_weighs_checkpoints_by_the_rates_it_used(tmp_path: Path) -> None:
    """Two epochs, then `--resume --set train.epochs=4`: the first two checkpoints spent the
    two-epoch schedule, the last two the four-epoch one from step 2P on, and TracIn's weights
    follow what ran (recorded by the trainer), not today's config alone."""
    schedule = ("train.warmup_steps=3", "train.min_lr_ratio=0.1", "train.keep_every=1")
    run = train_tiny_run(tmp_path, epochs=2, extra=schedule)
    extend = ["train", str(tmp_path / "data"), "--out", str(run), "--resume", "--no-progress"]
    assert main([*extend, "--set", "train.epochs=4"]) == 0
    analysis = DataInfluence(run)
    train = analysis.config.train
    assert train.epochs == 4
    per_epoch = math.ceil(run_folder.read_run_info(run).training_windows / train.batch_size)
    rates = [written_out_lr(s, train, 2 * per_epoch) for s in range(2 * per_epoch)]
    rates += [written_out_lr(s, train, 4 * per_epoch) for s in range(2 * per_epoch, 4 * per_epoch)]
    per_target = len(analysis.events) / per_epoch
    expected = [sum(rates[e * per_epoch : (e + 1) * per_epoch]) / per_target for e in range(4)]
    assert [c.epoch for c in analysis.checkpoints] == [1, 2, 3, 4]
    assert [c.weight for c in analysis.checkpoints] == pytest.approx(expected, rel=1e-9)
    stretched = [written_out_lr(s, train, 4 * per_epoch) for s in range(2 * per_epoch)]
    assert sum(stretched) / per_target > expected[0] + expected[1]  # today's config alone differs
