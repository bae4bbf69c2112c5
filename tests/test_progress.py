"""The shared progress bar: drawn on request with an ETA, silent by default off a terminal."""

from __future__ import annotations

import io
import sys

import pytest

from influrec.progress import steps


def test_disabled_bar_draws_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with steps(3, "nothing", enabled=False) as bar:
        for _ in range(3):
            bar.advance()
    assert capsys.readouterr().err == ""


def test_default_follows_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a terminal
    assert not steps(1, "x").enabled


def test_enabled_bar_counts_every_step() -> None:
    with steps(4, "counting", enabled=True) as bar:
        bar.advance(3)
        bar.advance()
        assert bar._progress is not None
        assert bar._progress.tasks[0].completed == 4
        assert bar._progress.tasks[0].total == 4
