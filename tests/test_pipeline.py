"""run_pipeline: each stage's result is the one the stage's own function gives, in the folders
``influrec demo`` uses, and an output folder that is not a pipeline's is refused before work."""

from __future__ import annotations

from pathlib import Path

import pytest

from influrec import (
    EventDataset,
    InputError,
    PipelineResult,
    Recommender,
    SynthConfig,
    evaluate_run,
    explain,
    load_config,
    run_pipeline,
    synthesize_dataset,
)
from influrec.pipeline import load_events

TINY = ["model.d_model=16", "model.layers=1", "model.max_len=8", "train.epochs=1"]
SMALL = SynthConfig(n_users=40, n_items=30)


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> PipelineResult:
    out = tmp_path_factory.mktemp("pipeline") / "out"
    return run_pipeline(SMALL, out, config=load_config(None, TINY), k=4, user_id="u3")


def test_each_stage_is_its_own_function(result: PipelineResult) -> None:
    out = result.run_dir.parent
    assert result.run_dir == out / "run" and (out / "run" / "run.json").exists()
    saved = EventDataset.load(out / "data")
    assert (
        saved.stats["events"]
        == result.dataset.stats["events"]
        == synthesize_dataset(SMALL).stats["events"]
    )
    assert saved.ground_truth is not None
    assert result.training.epochs_run == 1 and result.training.run_dir == result.run_dir
    again = evaluate_run(result.run_dir, split="test", baselines=["popularity"])
    assert again == result.evaluation and "popularity" in result.evaluation.baselines
    rec = Recommender.load(result.run_dir)
    history = rec.user_history("u3")
    assert result.user_id == "u3"
    assert result.explanation == explain(rec, history, k=4, method="loo", measure="margin")
    top = [r.item_id for r in rec.recommend(history, k=4)]
    assert [r.item for r in result.explanation.recommendations] == top


def test_the_first_user_is_explained_by_default(tmp_path: Path) -> None:
    dataset = synthesize_dataset(SynthConfig(n_users=12, n_items=20))
    done = run_pipeline(dataset, tmp_path / "p", config=load_config(None, TINY), k=2)
    assert done.dataset is dataset and done.user_id == dataset.users.column("user_id")[0].as_py()
    assert len(done.explanation.recommendations) == 2


def test_an_output_folder_is_checked_before_any_work(
    result: PipelineResult, tmp_path: Path
) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(InputError, match="not an influrec demo folder"):
        run_pipeline(SMALL, mine, overwrite=True)
    with pytest.raises(InputError, match="not empty"):
        run_pipeline(SMALL, result.run_dir.parent)  # an earlier pipeline's, without overwrite
    assert (mine / "notes.txt").read_text() == "keep" and sorted(mine.iterdir()) == [
        mine / "notes.txt"
    ]


def test_the_data_argument_takes_every_form(result: PipelineResult, tmp_path: Path) -> None:
    folder = result.run_dir.parent / "data"
    assert load_events(folder).stats["events"] == result.dataset.stats["events"]
    assert load_events(result.dataset) is result.dataset
    log = tmp_path / "u.data"
    log.write_text("1\t10\t5\t100\n1\t11\t4\t200\n2\t10\t3\t300\n")
    assert load_events(log, fmt="movielens").n_users == 2
    assert load_events(str(log), fmt="movielens").n_items == 2
    with pytest.raises(InputError, match="needs its format"):
        load_events(log)
