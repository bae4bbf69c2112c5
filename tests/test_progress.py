"""The shared progress bar: drawn on a terminal with an ETA, silent by default elsewhere, one
plain line at the end when asked for off a terminal."""

from __future__ import annotations

import io
import re
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


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_enabled_bar_counts_every_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", Terminal())
    with steps(4, "counting", enabled=True) as bar:
        bar.advance(3)
        bar.advance()
        assert bar._progress is not None
        assert bar._progress.tasks[0].completed == 4
        assert bar._progress.tasks[0].total == 4


def test_enabled_off_a_terminal_writes_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with steps(5, "explain", enabled=True) as bar:
        bar.advance(2)
        bar.advance(note="loss 1.0")
        assert bar._progress is None  # no bar where nothing redraws it
    assert re.fullmatch(r"explain: 3/5 in \d+\.\d s\n", capsys.readouterr().err)
