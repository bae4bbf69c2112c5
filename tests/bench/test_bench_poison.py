"""bench/poison.py and the audit: injected fake users push their target, and the TracIn audit
ranks them above (nearly) every real user and flags them all."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from influrec.config import load_config
from influrec.data.synthesize import synthesize_dataset
from influrec.data.synthetic import SynthConfig
from influrec.data_influence.audit import audit_items, without_users
from influrec.data_influence.tracin import DataInfluence
from influrec.training.loop import train
from poison import inject_shilling, pick_target
from tests_helpers import one_torch_thread


def test_fake_profiles_are_appended_and_the_audit_finds_them(tmp_path: Path) -> None:
    clean = synthesize_dataset(SynthConfig(n_users=120, n_items=40, mean_events=20, seed=5))
    target = pick_target(clean, seed=0)
    poisoned = inject_shilling(
        clean, target=target, share=0.05, style="bandwagon", profile_len=24, seed=0
    )
    assert poisoned.dataset.n_users == 126 and poisoned.fakes.tolist() == list(range(121, 127))
    events = poisoned.dataset.events
    fake_rows = np.isin(events.column("user_idx").to_numpy(), poisoned.fakes)
    assert fake_rows.sum() == 6 * 24 and events.num_rows == clean.events.num_rows + 6 * 24
    fake_items = events.column("item_idx").to_numpy()[fake_rows]
    assert (fake_items == target).sum() == 6 * 6  # one in four events pushes the target

    overrides = ["model.max_len=16", "model.d_model=16", "model.layers=1", "train.epochs=3"]
    overrides += ["train.batch_size=32", "train.keep_checkpoints=3", "eval.ks=[10]"]
    with one_torch_thread():
        train(poisoned.dataset, load_config(None, overrides), tmp_path / "run", progress=False)
        analysis = DataInfluence(tmp_path / "run")
        item_id = str(clean.items.column("item_id")[target - 1])
        audit = audit_items(analysis, [item_id], sample_users=50)
    top = audit.users[:6]
    assert np.isin(top, poisoned.fakes).mean() >= 0.8  # the precision target
    assert np.isin(poisoned.fakes, audit.flagged).all()  # every fake flagged,
    assert np.isin(audit.flagged, poisoned.fakes).mean() >= 0.5  # and most flagged are fakes
    assert len(audit.users) == 126 and np.all(np.diff(audit.push) <= 0)
    cleaned = without_users(poisoned.dataset, audit.flagged, note={"test": True})
    assert cleaned.events.num_rows == poisoned.dataset.events.num_rows - int(
        np.isin(events.column("user_idx").to_numpy(), audit.flagged).sum()
    )


def test_audit_command_lists_flags_and_writes_the_cleaned_data(tmp_path: Path, capsys) -> None:
    import json

    from influrec.cli.main import main
    from influrec.data.dataset import EventDataset

    clean = synthesize_dataset(SynthConfig(n_users=60, n_items=30, mean_events=15, seed=2))
    target = pick_target(clean, seed=1)
    poisoned = inject_shilling(
        clean, target=target, share=0.05, style="random", profile_len=20, seed=1
    )
    poisoned.dataset.save(tmp_path / "data")
    settings = ["model.max_len=12", "model.d_model=16", "model.layers=1", "train.epochs=2"]
    argv = ["train", str(tmp_path / "data"), "--out", str(tmp_path / "run"), "--no-progress"]
    assert main([*argv, *(p for s in settings for p in ("--set", s))]) == 0
    item = str(clean.items.column("item_id")[target - 1])
    out = tmp_path / "cleaned"
    capsys.readouterr()
    assert main(["audit", str(tmp_path / "run"), "--item", item, "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["items"] == [item] and result["queried_users"] == 63
    flagged = [u["user"] for u in result["users"] if u["flagged"]]
    assert len(flagged) == min(result["flagged"], 20) > 0  # the top 20 are listed
    kept = set(EventDataset.load(out).events.column("user_id").to_pylist())
    assert not kept & set(flagged) and len(kept) == 63 - result["flagged"]
    assert main(["audit", str(tmp_path / "run"), "--item", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
