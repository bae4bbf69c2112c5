"""The long loops draw the shared bar (influrec.progress.steps) when asked, and it reaches its
total: one step per user for faithfulness, per item for explanations one item at a time; by
default (stderr not a terminal, as under pytest) they draw nothing."""

from __future__ import annotations

import pytest

from influrec.inference import Recommender
from influrec.influence import api
from influrec.influence.engine import Scorer
from influrec.influence.faithfulness import faithfulness
from tests_helpers import user_history


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """rich draws as on a terminal although pytest captures stderr (https://force-color.org)."""
    monkeypatch.setenv("FORCE_COLOR", "1")


def test_faithfulness_bar_counts_every_user(
    recommender: Recommender, terminal: None, capsys: pytest.CaptureFixture[str]
) -> None:
    histories = [user_history(recommender, 8 + i % 5) for i in range(7)]
    capsys.readouterr()
    faithfulness(Scorer(recommender.model), histories, ["random"], progress=True)
    err = capsys.readouterr().err
    assert "faithfulness over users" in err and "7/7" in err and "8/7" not in err
    faithfulness(Scorer(recommender.model), histories, ["random"])  # stderr is no terminal
    assert capsys.readouterr().err == ""


def test_explaining_item_by_item_counts_every_item(
    recommender: Recommender, terminal: None, capsys: pytest.CaptureFixture[str]
) -> None:
    history = user_history(recommender, 10)
    capsys.readouterr()
    api.explain(recommender, history, k=4, method="shapley", progress=True)
    err = capsys.readouterr().err
    assert "explaining by shapley" in err and "4/4" in err
    api.explain(recommender, history, k=4, method="shapley", progress=False)
    assert capsys.readouterr().err == ""
