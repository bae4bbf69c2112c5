"""Each model family through the whole system: `influrec train` with model.architecture, the
saved model reloaded giving the scores training measured, resume, evaluate, recommend, explain
(every method; attention rollout refused with one clear line) and the HTTP service."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from influrec.cli.main import main
from influrec.evaluation.runs import evaluate_run
from influrec.inference import Recommender
from influrec.models.registry import MODELS
from influrec.run import read_run_info, saved_checkpoints
from influrec.serving.app import create_app
from influrec.serving.settings import ServiceSettings
from tests_helpers import train_tiny_run, user_history

ARCHITECTURES = ["gru", "cnn", "mlp"]


@pytest.fixture(scope="module", params=ARCHITECTURES)
def architecture(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def run(architecture: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny 2-epoch run of one family on synthetic data (users u1..u40)."""
    root = tmp_path_factory.mktemp(f"family-{architecture}")
    extra = (f"model.architecture={architecture}", "model.dilations=[1,2]", "train.patience=5")
    return train_tiny_run(root, epochs=2, extra=extra)


def json_out(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    capsys.readouterr()
    assert main(argv) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_the_saved_model_gives_the_scores_training_measured(run: Path, architecture: str) -> None:
    info = read_run_info(run)
    assert info.config.model.architecture == architecture
    assert info.finished and info.epochs_run == 2 and info.best_valid is not None
    report = evaluate_run(run, split="valid")  # the model rebuilt from run.json, weights loaded
    assert report.model.unmasked["NDCG@10"] == pytest.approx(info.best_valid["NDCG@10"], abs=1e-6)
    rec = Recommender.load(run)
    assert type(rec.model) is MODELS[architecture]
    history = user_history(rec)
    scores = rec.scores([history])
    assert scores.equal(Recommender.load(run).scores([history]))


def test_resume_extends_the_run_from_its_last_checkpoint(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    argv = ["train", str(run.parent / "data"), "--out", str(copy), "--resume", "--no-progress"]
    assert main([*argv, "--set", "train.epochs=3"]) == 0, capsys.readouterr().err
    assert read_run_info(copy).epochs_run == 3
    assert [c.epoch for c in saved_checkpoints(copy)] == [1, 2, 3]


def test_evaluate_recommend_and_explain_with_every_method(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    evaluation = json_out(capsys, ["evaluate", str(run), "--json"])
    assert 0 <= evaluation["NDCG@10"] <= 1 and evaluation["split"] == "test"
    top = json_out(capsys, ["recommend", str(run), "--user", "u2", "--k", "3", "--json"])
    assert len(top["recommendations"]) == 3
    for method in ("loo", "gxi", "ig", "shapley"):
        argv = ["explain", str(run), "--user", "u2", "--k", "2", "--method", method, "--json"]
        result = json_out(capsys, argv)
        assert result["method"] == method and len(result["recommendations"]) == 2
        assert result["recommendations"][0]["events"]
    assert main(["explain", str(run), "--user", "u2", "--method", "attention"]) == 2
    err = capsys.readouterr().err
    assert "attention rollout needs attention weights" in err and len(err.splitlines()) == 1


def test_the_service_recommends_and_explains(run: Path, tmp_path: Path) -> None:
    keys = {"reader": frozenset({"read"})}
    settings = ServiceSettings(run, store=tmp_path / "events.sqlite3", api_keys=keys)
    with TestClient(create_app(settings)) as client:
        headers = {"Authorization": "Bearer reader"}
        recs = client.get("/v1/users/u2/recommendations?k=3", headers=headers)
        assert recs.status_code == 200 and len(recs.json()["recommendations"]) == 3
        explained = client.get("/v1/users/u2/explanations?k=2", headers=headers)
        assert explained.status_code == 200 and len(explained.json()["recommendations"]) == 2


def test_counterfactual_whatif_faithfulness_and_training_data_influence(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    top = json_out(capsys, ["recommend", str(run), "--user", "u2", "--k", "1", "--json"])
    item = top["recommendations"][0]["item_id"]
    cf = json_out(capsys, ["counterfactual", str(run), "--user", "u2", "--item", item, "--json"])
    assert cf["size"] == len(cf["removed"])
    argv = ["whatif", str(run), "--user", "u2", "--add", "i3:buy", "--remove", "0", "--json"]
    whatif = json_out(capsys, argv)
    assert len(whatif["before"]) == 10 and 0 <= whatif["jaccard"] <= 1
    argv = ["faithfulness", str(run), "--users", "4", "--methods", "loo,ig,random", "--json"]
    assert set(json_out(capsys, argv)["metrics"]) == {"loo", "ig", "random"}
    argv = ["data-influence", str(run), "--user", "u2", "--item", item, "--top", "3", "--json"]
    assert len(json_out(capsys, argv)["supporting"]) == 3
