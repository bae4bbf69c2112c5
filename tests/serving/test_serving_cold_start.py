"""One cold-start policy (``Recommender.cold_start_scores``: the popular items) for every
answer about a history with no events: the library, the CLI and the service alike."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from influrec.cli.main import main
from influrec.data.history import History
from influrec.inference import Recommender
from influrec.influence import api
from influrec.influence.counterfactual import Edit
from influrec.influence.engine import Scorer

READ = {"Authorization": "Bearer reader-key"}


@pytest.fixture(scope="module")
def rec(served_run: Path) -> Recommender:
    return Recommender.load(served_run)


def popular(rec: Recommender, k: int) -> list[str]:
    return [r.item_id for r in rec.popular(k=k)]


def one_event(rec: Recommender, item: str, behavior: str) -> History:
    return History(
        np.array([rec.item_index[item]]),
        np.array([rec.behavior_index[behavior]]),
        np.array([1]),
        np.zeros(1, np.float32),
    )


def test_the_policy_differs_from_the_model_on_an_empty_sequence(rec: Recommender) -> None:
    """Otherwise the tests below could not tell the two apart."""
    empty = Scorer(rec.model).scores(History.empty(), [np.arange(0)])[0]
    assert [r.item_id for r in rec.top_k(empty, k=5)] != popular(rec, 5)
    counts = rec.cold_start_scores()
    assert counts[0] == float("-inf") and bool((counts[1:] >= 0).all())
    assert [r.item_id for r in rec.recommend(History.empty(), k=5)] == popular(rec, 5)


def test_library_whatif_and_actions_start_from_the_popular_items(rec: Recommender) -> None:
    behavior = next(iter(rec.behavior_index))
    nothing = api.whatif(rec, History.empty(), [], k=5)
    assert nothing.before == nothing.after == popular(rec, 5)
    assert [nothing.rank_changes[i].before for i in nothing.before] == [1, 2, 3, 4, 5]
    edit = Edit("add", item=rec.item_index["i7"], behavior=rec.behavior_index[behavior])
    added = api.whatif(rec, History.empty(), [edit], k=5)
    assert added.before == popular(rec, 5)
    after = rec.recommend(one_event(rec, "i7", behavior), k=5)
    assert added.after == [r.item_id for r in after]  # as recommend: i7, now seen, left out
    # removing every event of a history ends in the cold start too
    emptied = api.whatif(rec, one_event(rec, "i7", behavior), [Edit("remove", position=0)], k=5)
    assert emptied.after == popular(rec, 5)
    actions = api.influential_actions(rec, History.empty(), candidates=3, k=4, top=100)
    assert {a.item for a in actions.actions} == set(popular(rec, 3))
    for a in actions.actions:
        after = rec.recommend(one_event(rec, a.item, a.behavior), k=4, exclude_seen=False)
        assert a.new_top == [r.item_id for r in after]
        overlap = len(set(a.new_top) & set(popular(rec, 4)))
        assert a.churn == pytest.approx(1 - overlap / (8 - overlap))


def test_service_whatif_and_actions_use_the_recommendations_cold_start(
    client: TestClient, rec: Recommender
) -> None:
    served = client.get("/v1/users/newcomer/recommendations?k=5", headers=READ).json()
    assert served["cold_start"] is True
    listed = [r["item"] for r in served["recommendations"]]
    assert listed == popular(rec, 5)
    whatif = client.post("/v1/whatif", json={"user": "newcomer", "k": 5}, headers=READ).json()
    assert whatif["cold_start"] is True and whatif["before"] == whatif["after"] == listed
    actions = client.get(
        "/v1/users/newcomer/influential-actions?k=5&candidates=2&top=50", headers=READ
    ).json()
    assert actions["cold_start"] is True
    assert {a["item"] for a in actions["actions"]} == set(listed[:2])


def test_cli_recommend_whatif_and_actions_use_the_same_policy(
    served_run: Path, rec: Recommender, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.json"
    empty.write_text("[]")

    def cli(*args: str) -> dict:
        capsys.readouterr()
        assert main([*args, "--json"]) == 0
        return json.loads(capsys.readouterr().out)

    run = str(served_run)
    unknown = cli("recommend", run, "--user", "nobody", "--cold-start", "popular", "--k", "5")
    assert unknown["cold_start"] is True
    assert [r["item_id"] for r in unknown["recommendations"]] == popular(rec, 5)
    listed = cli("recommend", run, "--history", str(empty), "--k", "5")
    assert [r["item_id"] for r in listed["recommendations"]] == popular(rec, 5)
    whatif = cli("whatif", run, "--history", str(empty), "--k", "5")
    assert whatif["before"] == whatif["after"] == popular(rec, 5)
    actions = cli("influential-actions", run, "--history", str(empty), "--candidates", "2")
    assert {a["item"] for a in actions["actions"]} == set(popular(rec, 2))
