from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from influrec.config import load_config
from influrec.data.dataset import EventDataset, prepare
from influrec.data.synthesize import synthesize_dataset
from influrec.data.synthetic import SynthConfig
from influrec.errors import DamagedRunError, InputError
from influrec.evaluation.runs import evaluate_run
from influrec.inference import Recommender
from influrec.run import list_checkpoints, load_model, saved_checkpoints
from influrec.training.loop import Trainer, epoch_batches, lr_factor, train

TINY = [
    "model.max_len=12",
    "model.d_model=16",
    "model.layers=1",
    "model.heads=2",
    "train.batch_size=32",
    "train.warmup_steps=2",
    "train.keep_checkpoints=10",
    "eval.ks=[1,5,10]",
]


@pytest.fixture(scope="module")
def dataset() -> EventDataset:
    return synthesize_dataset(SynthConfig(n_users=80, n_items=40, mean_events=12, seed=1))


def test_run_folder_is_self_describing(dataset: EventDataset, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = train(dataset, load_config(None, [*TINY, "train.epochs=2"]), run, progress=False)
    assert result.epochs_run == 2 and 1 <= result.best_epoch <= 2
    info = json.loads((run / "run.json").read_text())
    assert info["finished"] and info["n_items"] == dataset.n_items and info["parameters"] > 0
    assert info["config"]["model"]["d_model"] == 16
    assert (run / "config.toml").exists() and (run / "data" / "events.parquet").exists()
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    assert [p.name for p in list_checkpoints(run)] == ["epoch-0001", "epoch-0002"]


def test_runs_saved_before_the_value_head_was_removed_still_load(
    dataset: EventDataset, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    train(dataset, load_config(None, [*TINY, "train.epochs=1"]), run, progress=False)
    fresh, _ = load_model(run)
    info = json.loads((run / "run.json").read_text())
    info["config"]["model"]["value_head"] = "none"  # what older runs recorded
    info["config"]["train"]["value_weight"] = 0.0
    (run / "run.json").write_text(json.dumps(info))
    old, _ = load_model(run)
    assert old.state_dict().keys() == fresh.state_dict().keys()
    assert all(torch.equal(old.state_dict()[k], v) for k, v in fresh.state_dict().items())
    info["config"]["model"]["value_head"] = "mse"  # a run that trained the removed head
    (run / "run.json").write_text(json.dumps(info))
    with pytest.raises(InputError, match=r"model\.value_head: the value head was removed") as error:
        load_model(run)
    # an intact run of an older version: not reported as damaged, nor restored from a copy
    assert str(error.value).endswith("train it again") and "restore" not in str(error.value)
    assert not isinstance(error.value, DamagedRunError)


def test_saved_model_scores_equal_the_trained_model(dataset: EventDataset, tmp_path: Path) -> None:
    trainer = Trainer(
        dataset, load_config(None, [*TINY, "train.epochs=1"]), tmp_path / "run", progress=False
    )
    trainer.fit()
    loaded, _ = load_model(tmp_path / "run")
    trainer.model.eval()
    items = torch.from_numpy(trainer.data.item[:10])[None]
    behaviors = torch.from_numpy(trainer.data.behavior[:10])[None]
    torch.testing.assert_close(loaded(items, behaviors), trainer.model(items, behaviors))


def test_resume_continues_exactly(dataset: EventDataset, tmp_path: Path) -> None:
    config = load_config(None, [*TINY, "train.epochs=4"])
    full = tmp_path / "full"
    train(dataset, config, full, progress=False)
    resumed = tmp_path / "resumed"
    shutil.copytree(full, resumed)  # pretend the run was killed after epoch 2
    for late in ("epoch-0003", "epoch-0004"):
        shutil.rmtree(resumed / "checkpoints" / late)
    lines = (resumed / "metrics.jsonl").read_text().splitlines()
    (resumed / "metrics.jsonl").write_text("\n".join(lines[:2]) + "\n")
    result = train(dataset, config, resumed, resume=True, progress=False)
    assert result.epochs_run == 4
    a = load_file(str(full / "checkpoints" / "epoch-0004" / "model.safetensors"))
    b = load_file(str(resumed / "checkpoints" / "epoch-0004" / "model.safetensors"))
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=1e-5, atol=1e-6)
    assert len((resumed / "metrics.jsonl").read_text().splitlines()) == 4


def test_early_stopping_on_a_flat_validation_metric(dataset: EventDataset, tmp_path: Path) -> None:
    config = load_config(None, [*TINY, "train.epochs=10", "train.lr=1e-12", "train.patience=2"])
    result = train(dataset, config, tmp_path / "run", progress=False)
    assert result.epochs_run == 3 and result.best_epoch == 1  # no improvement in epochs 2 and 3


def test_existing_run_folder_is_refused(dataset: EventDataset, tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "x").write_text("keep me")
    with pytest.raises(InputError, match="already exists"):
        train(
            dataset, load_config(None, [*TINY, "train.epochs=1"]), tmp_path / "run", progress=False
        )


def test_model_learns_planted_structure_better_than_popularity(
    dataset: EventDataset, tmp_path: Path
) -> None:
    data = synthesize_dataset(SynthConfig(n_users=400, n_items=60, mean_events=20, seed=2))
    config = load_config(None, [*TINY, "train.epochs=8", "model.d_model=32", "train.lr=0.005"])
    train(data, config, tmp_path / "run", progress=False)
    report = evaluate_run(tmp_path / "run", split="valid", baselines=["popularity"])
    assert report.model.unmasked["NDCG@10"] > report.baselines["popularity"].unmasked["NDCG@10"]


def test_recommender_top_k_and_ad_hoc_history(dataset: EventDataset, tmp_path: Path) -> None:
    train(dataset, load_config(None, [*TINY, "train.epochs=1"]), tmp_path / "run", progress=False)
    rec = Recommender.load(tmp_path / "run")
    user = dataset.users.column("user_id")[0].as_py()
    history = rec.user_history(user)
    top = rec.recommend(history, k=5, exclude_seen=True)
    assert [r.rank for r in top] == [1, 2, 3, 4, 5]
    assert not set(r.item_idx for r in top) & set(history.items.tolist())
    scores = rec.scores([history])[0]
    assert [r.item_idx for r in rec.recommend(history, k=3, exclude_seen=False)] == torch.topk(
        scores, 3
    ).indices.tolist()
    records = [{"item": rec.item_ids[int(i) - 1]} for i in history.items] + [
        {"item": "no-such-item"}
    ]
    adhoc, unknown = rec.history_from_records(records)
    assert unknown == [f"event {len(records) - 1}: unknown item 'no-such-item'"]
    assert adhoc.items.tolist() == history.items.tolist()


def test_schedule_and_batches() -> None:
    assert lr_factor(0, warmup=4, total=10, min_ratio=0.1) == 0.25
    assert lr_factor(4, warmup=4, total=10, min_ratio=0.1) == 1.0
    assert np.isclose(lr_factor(10, warmup=4, total=10, min_ratio=0.1), 0.1)
    starts, ends = np.arange(100), np.arange(100) + np.arange(100) % 7 + 1
    batches = epoch_batches(starts, ends, batch_size=8, seed=0, epoch=0)
    assert sorted(np.concatenate(batches).tolist()) == list(range(100))
    again = epoch_batches(starts, ends, batch_size=8, seed=0, epoch=0)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))


@pytest.mark.parametrize(
    "extra",
    [
        ["train.loss=sampled", "train.negatives=16"],
        ["train.loss=sampled", "train.sampler=uniform", "train.negatives=16"],
        ["train.loss=sampled", "train.negatives_per=sequence", "train.negatives=16"],
        ["train.label_smoothing=0.1", "train.mask_seen=true"],
        ["train.loss=bce", "train.negatives=4"],
        ["model.use_value=true", "model.time_buckets=8"],
        ["data.split=temporal"],
    ],
)
def test_other_losses_heads_and_the_temporal_split_train(
    dataset: EventDataset, tmp_path: Path, extra: list[str]
) -> None:
    result = train(
        dataset,
        load_config(None, [*TINY, "train.epochs=2", *extra]),
        tmp_path / "r",
        progress=False,
    )
    assert result.epochs_run == 2 and np.isfinite(result.history[-1]["loss"])
    report = evaluate_run(tmp_path / "r", split="test")
    assert 0.0 <= report.model.unmasked["NDCG@10"] <= 1.0 and report.targets > 0
    temporal = "data.split=temporal" in extra
    assert report.split_kind == ("global_temporal" if temporal else "leave_one_out")


def test_average_best_keeps_the_mean_of_the_best_epochs_only_when_validation_improves(
    dataset: EventDataset, tmp_path: Path
) -> None:
    run = tmp_path / "avg"
    config = load_config(
        None, [*TINY, "train.epochs=6", "train.average_best=3", "train.keep_checkpoints=1"]
    )
    result = train(dataset, config, run, progress=False)
    info = json.loads((run / "run.json").read_text())
    averaged = info["averaged"]
    metric = {r["epoch"]: r["valid"]["NDCG@10"] for r in result.history}
    best = sorted(metric, key=lambda e: (-metric[e], e))[:3]
    assert averaged["epochs"] == sorted(best)
    kept = [c.epoch for c in saved_checkpoints(run)]
    assert set(best) <= set(kept)  # the best 3 survived pruning (keep_checkpoints=1)
    states = [load_file(run / "checkpoints" / f"epoch-{e:04d}" / "model.safetensors") for e in best]
    model = load_file(run / "model.safetensors")
    # the mean is kept exactly when it validates better than the best epoch alone
    assert averaged["kept"] == (averaged["valid"] > result.best_metric)
    best_state = load_file(
        run / "checkpoints" / f"epoch-{result.best_epoch:04d}" / "model.safetensors"
    )
    for name, value in model.items():
        mean = sum(s[name] for s in states) / 3
        torch.testing.assert_close(value, mean if averaged["kept"] else best_state[name])
    # the saved model is what evaluation reads: its validation metric is the one recorded
    valid = evaluate_run(run, split="valid")
    expected = averaged["valid"] if averaged["kept"] else result.best_metric
    assert valid.model.unmasked["NDCG@10"] == pytest.approx(expected, abs=1e-6)


def test_item_features_train_save_and_load(tmp_path: Path) -> None:
    path = tmp_path / "Beauty.txt"
    rng = np.random.default_rng(0)
    path.write_text(
        "".join(f"{u} {' '.join(map(str, rng.integers(1, 30, 10)))}\n" for u in range(60))
    )
    (tmp_path / "Beauty_item2attributes.json").write_text(
        json.dumps({str(i): [i % 4, 10 + i % 3] for i in range(1, 30)})
    )
    dataset = prepare(path, "s3rec")
    config = load_config(None, [*TINY, "train.epochs=2", 'model.item_features=["attributes"]'])
    trainer = Trainer(dataset, config, tmp_path / "run", progress=False)
    trainer.fit()
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert (info["feature_values"], info["feature_width"]) == (7, 2)
    last = list_checkpoints(tmp_path / "run")[-1] / "model.safetensors"
    loaded, _ = load_model(tmp_path / "run", weights=last)  # the trainer's model: the last epoch
    torch.testing.assert_close(loaded.item_features, trainer.model.item_features)
    trainer.model.eval()
    items = torch.from_numpy(trainer.data.item[:10])[None]
    behaviors = torch.from_numpy(trainer.data.behavior[:10])[None]
    torch.testing.assert_close(loaded(items, behaviors), trainer.model(items, behaviors))
    epochs = [load_file(str(p / "model.safetensors")) for p in list_checkpoints(tmp_path / "run")]
    assert not torch.equal(
        epochs[0]["feature_embedding.weight"], epochs[1]["feature_embedding.weight"]
    )


def test_user_fixable_training_problems_are_input_errors(tmp_path: Path) -> None:
    """The trainer says InputError itself (the CLI no longer turns every ValueError into one)."""

    def log_with(events_per_user: int) -> EventDataset:
        path = tmp_path / f"u{events_per_user}.data"
        rows = [f"{u}\t{10 + t}\t5\t{t}\n" for u in (1, 2) for t in range(events_per_user)]
        path.write_text("".join(rows))
        return prepare(path, "movielens")

    config = load_config(None, [*TINY, "train.epochs=1"])
    with pytest.raises(InputError, match="no training targets"):
        train(log_with(1), config, tmp_path / "run", progress=False)
    with pytest.raises(InputError, match="no validation targets"):  # was a ValueError bug
        train(log_with(2), config, tmp_path / "run", progress=False)
    if not torch.cuda.is_available():
        cuda = load_config(None, [*TINY, "train.device=cuda"])
        with pytest.raises(InputError, match="no CUDA device"):
            train(log_with(3), cuda, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("mask_seen", [False, True])
def test_prefix_samples_take_the_loss_at_each_windows_last_position_only(
    dataset: EventDataset, tmp_path: Path, mask_seen: bool
) -> None:
    overrides = [*TINY, "train.samples=prefixes", "train.behavior_weight=0"]
    config = load_config(None, [*overrides, f"train.mask_seen={str(mask_seen).lower()}"])
    trainer = Trainer(dataset, config, tmp_path / "r", progress=False)
    model, data = trainer.model.eval(), trainer.data
    index = np.arange(0, len(trainer.windows[0]), 7)[:20]
    with torch.no_grad():
        loss, n_targets = trainer.loss(index)
        expected = []
        for start, end in zip(trainer.windows[0][index], trainer.windows[1][index], strict=True):
            items = torch.from_numpy(data.item[start:end])[None]  # the events before the target
            behaviors = torch.from_numpy(data.behavior[start:end])[None]
            scores = model.item_scores(model.encode(items, behaviors)[:, -1])  # (1, I + 1)
            target = int(data.item[end])
            if mask_seen:  # items seen in the window leave the softmax, the target stays
                seen = [i for i in data.item[start:end].tolist() if i != target]
                scores[0, seen] = float("-inf")
            expected.append(F.cross_entropy(scores, torch.tensor([target])))
    assert n_targets == len(index)
    torch.testing.assert_close(loss, torch.stack(expected).mean(), rtol=1e-5, atol=1e-6)


def test_prefix_samples_train_one_sample_per_training_target(
    dataset: EventDataset, tmp_path: Path
) -> None:
    config = load_config(None, [*TINY, "train.samples=prefixes", "train.epochs=3"])
    result = train(dataset, config, tmp_path / "r", progress=False)
    windows = Trainer(dataset, config, tmp_path / "other", progress=False).windows
    train_targets = json.loads((tmp_path / "r" / "run.json").read_text())["training_windows"]
    assert train_targets == len(windows[0]) == dataset.stats["events"] - 3 * dataset.n_users
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert 0.0 < evaluate_run(tmp_path / "r", split="test").model.unmasked["NDCG@10"] <= 1.0
