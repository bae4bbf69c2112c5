from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from influrec.cli.main import main
from influrec.cli.model import baseline_warnings
from influrec.evaluation.protocol import Metrics
from influrec.evaluation.runs import RunEvaluation
from tests_helpers import train_tiny_run


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_run(tmp_path_factory.mktemp("cli"), users=60, epochs=2, max_len=10)


def test_evaluate_json_labels_masking(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["evaluate", str(run), "--json", "--baselines", "popularity"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["seen_items_masked"] is False and report["masked"]["seen_items_masked"] is True
    assert {"HR@10", "NDCG@10", "MRR@10"} <= set(report) and report["split"] == "test"
    assert report["targets"] == 60 and "popularity" in report["baselines"]
    assert main(["evaluate", str(run), "--split", "valid"]) == 0
    assert "seen items masked" in capsys.readouterr().out


def test_recommend_user_history_and_cold_start(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["recommend", str(run), "--user", "u3", "--k", "4", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert [r["rank"] for r in payload["recommendations"]] == [1, 2, 3, 4] and not payload[
        "cold_start"
    ]
    assert main(["recommend", str(run), "--user", "nobody"]) == 2
    assert "unknown user 'nobody'" in (err := capsys.readouterr().err)
    assert "--history, or pass --cold-start popular" in err
    assert (
        main(["recommend", str(run), "--user", "nobody", "--cold-start", "popular", "--json"]) == 0
    )
    assert json.loads(capsys.readouterr().out)["cold_start"] is True
    history = tmp_path / "h.json"
    history.write_text(json.dumps([{"item": "i1", "behavior": "buy"}, {"item": "zzz"}]))
    assert main(["recommend", str(run), "--history", str(history), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["unknown"] == ["event 1: unknown item 'zzz'"]


def test_bad_inputs_are_one_clear_line(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = run.parent / "data"
    assert main(["train", str(data), "--out", str(tmp_path / "r"), "--set", "model.layer=3"]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'model.layer'" in err and "[model]" in err and "layers" in err
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in ("run.json", "config.toml"):
        (broken / f).write_bytes((run / f).read_bytes())
    shutil.copytree(run / "data", broken / "data")
    (broken / "model.safetensors").write_bytes(b"garbage")
    assert main(["recommend", str(broken), "--user", "u1"]) == 2
    assert "cannot read the model weights" in capsys.readouterr().err
    info = json.loads((run / "run.json").read_text())
    info["format_version"] = 99
    (broken / "run.json").write_text(json.dumps(info))
    assert main(["evaluate", str(broken)]) == 2
    assert "format version 99" in capsys.readouterr().err


def test_evaluate_ks_overrides_the_runs_cutoffs(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["evaluate", str(run), "--json", "--ks", "3,20"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert "HR@3" in report and "NDCG@20" in report and "HR@10" not in report
    assert main(["evaluate", str(run), "--ks", "ten"]) == 2


def test_evaluate_text_shows_every_cutoff_and_the_seen_share(
    run: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    capsys.readouterr()
    argv = ["evaluate", str(run), "--ks", "1,3,5,10,20", "--baselines", "popularity"]
    assert main([*argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert main(argv) == 0
    text = capsys.readouterr().out
    for k in (3, 5, 10, 20):  # more cut-offs than fit as columns: one row per metric
        assert all(f"{m}@{k} " in text for m in ("HR", "NDCG", "MRR"))
    assert text.count(f"({report['targets_seen']:.1%} already seen by their user)") == 2
    if "behavior" in report:
        assert "next behaviour (the behaviour head): accuracy" in text and "macro-F1" in text
    beaten = report["baselines"]["popularity"]["NDCG@10"] > report["NDCG@10"]
    assert ("popularity beats the model on NDCG@10 (seen items NOT masked)" in text) == beaten


def test_a_baseline_ahead_on_the_monitored_metric_is_warned_about() -> None:
    def metrics(ndcg: float, masked: float) -> Metrics:
        return Metrics(unmasked={"NDCG@10": ndcg, "HR@10": 0.9}, masked={"NDCG@10": masked})

    report = RunEvaluation(
        run="r",
        split="test",
        split_kind="leave_one_out",
        protocol="full ranking over all items",
        targets=10,
        targets_seen=0.0,
        model=metrics(0.30, 0.40),
        baselines={"markov": metrics(0.35, 0.20), "popularity": metrics(0.10, 0.10)},
        monitor="NDCG@10",
    )
    assert baseline_warnings(report, masked=False) == [
        "markov beats the model on NDCG@10 (seen items NOT masked): under-trained?"
    ]
    assert baseline_warnings(report, masked=True) == []
    ahead_on_hr = RunEvaluation(**{**report.__dict__, "monitor": "HR@10"})
    assert baseline_warnings(ahead_on_hr, masked=False) == []  # ties and lower are no warning


def test_recommend_robust_equals_the_library_and_refuses_bad_options(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from influrec.inference import Recommender
    from influrec.influence.robust import robust_recommend

    capsys.readouterr()
    argv = ["recommend", str(run), "--user", "u3", "--k", "5", "--json", "--robust"]
    assert main([*argv, "--low-intent", "view", "--recent", "4"]) == 0
    got = [r["item_id"] for r in json.loads(capsys.readouterr().out)["recommendations"]]
    rec = Recommender.load(run)
    want = robust_recommend(rec, rec.user_history("u3"), k=5, low_intent=["view"], recent=4)
    assert got == [r.item_id for r in want]
    assert main([*argv, "--low-intent", "click"]) == 2
    assert "unknown low-intent behaviour 'click'" in capsys.readouterr().err
    assert main(["recommend", str(run), "--all-users", "--out", "x.parquet", "--robust"]) == 2
    assert "drop --all-users" in capsys.readouterr().err
