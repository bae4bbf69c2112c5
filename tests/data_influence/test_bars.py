"""TracIn, the influence function and evaluation draw the shared bar when asked, and it
reaches its total (checkpoints x batches of training windows; solve iterations + one pass;
targets per scorer)."""

from __future__ import annotations

from pathlib import Path

import pytest

from influrec.data_influence import DataInfluence
from influrec.evaluation.runs import evaluate_run
from tests_helpers import train_tiny_run


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    kept = ("train.keep_every=1", "train.keep_checkpoints=1", "train.batch_size=8")
    return train_tiny_run(tmp_path_factory.mktemp("bars"), epochs=2, extra=kept)


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """rich draws as on a terminal although pytest captures stderr (https://force-color.org)."""
    monkeypatch.setenv("FORCE_COLOR", "1")


def test_tracin_and_influence_function_bars_reach_their_totals(
    run: Path, terminal: None, capsys: pytest.CaptureFixture[str]
) -> None:
    analysis = DataInfluence(run, batch_size=16)
    per_pass = analysis.batches_per_pass
    assert len(analysis.checkpoints) == 2 and per_pass >= 2
    capsys.readouterr()
    analysis.tracin(validation=True, progress=True)
    err = capsys.readouterr().err
    assert "TracIn over 2 checkpoints" in err and f"{2 * per_pass}/{2 * per_pass}" in err
    query = (analysis.user_index("u1"), 1)
    analysis.influence_function([query], iterations=5, sample=50, progress=True)
    err = capsys.readouterr().err
    assert "influence function" in err and f"{5 + per_pass}/{5 + per_pass}" in err
    analysis.tracin(validation=False)  # stderr is no terminal under pytest: nothing drawn
    assert capsys.readouterr().err == ""


def test_evaluation_draws_one_bar_per_scorer(
    run: Path, terminal: None, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    report = evaluate_run(run, split="test", baselines=["popularity"], progress=True)
    err = capsys.readouterr().err
    done = f"{report.targets}/{report.targets}"
    model, between, baseline = err.partition("evaluating popularity on test")
    assert "evaluating model on test" in model and between and done in model and done in baseline
