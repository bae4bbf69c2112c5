from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from influrec.cli.main import main
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
    assert "unknown user 'nobody'" in capsys.readouterr().err
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
