"""Behaviour codes are int16: logs with more than 127 behaviour types prepare, train and serve;
folders written with the former int8 codes still load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from influrec.config import load_config
from influrec.data import schema
from influrec.data.dataset import EventDataset, prepare
from influrec.data.loaders import ColumnMap, ReadOptions, read_log
from influrec.data.sequences import SequenceData
from influrec.errors import InputError
from influrec.inference import Recommender
from influrec.training.loop import train

N_BEHAVIORS = 200
MAP = ColumnMap.parse("user=uid,item=sku,behavior=event,time=ts")


def many_behaviors_log(path: Path) -> Path:
    rows = [
        f"u{u},s{(u * 7 + k) % 30},b{(u * 11 + k) % N_BEHAVIORS},{1600000000 + k}"
        for u in range(60)
        for k in range(8)
    ]
    path.write_text("uid,sku,event,ts\n" + "\n".join(rows) + "\n")
    return path


def test_more_than_127_behaviours_prepare_train_and_recommend(tmp_path: Path) -> None:
    path = many_behaviors_log(tmp_path / "log.csv")
    dataset = prepare(path, "csv", read_options=ReadOptions(column_map=MAP))
    dataset.save(tmp_path / "data")
    loaded = EventDataset.load(tmp_path / "data")
    assert len(loaded.behaviors) == N_BEHAVIORS + 1
    codes = loaded.column("behavior_idx")
    assert codes.dtype == np.int16 and codes.max() == N_BEHAVIORS
    names = loaded.events.column("behavior").to_pylist()
    assert [loaded.behaviors[c] for c in codes.tolist()] == names
    data = SequenceData.from_dataset(loaded)
    assert data.n_behaviors == N_BEHAVIORS and data.behavior.max() == N_BEHAVIORS
    overrides = ["model.max_len=8", "model.d_model=16", "model.layers=1", "model.heads=2"]
    config = load_config(None, [*overrides, "train.epochs=1", "train.batch_size=16"])
    train(loaded, config, tmp_path / "run", progress=False)
    recommender = Recommender.load(tmp_path / "run")
    history = recommender.user_history("u59")
    assert history.behaviors.max() > 127
    assert len(recommender.recommend(history, k=5)) == 5


def test_folders_written_with_int8_codes_still_load(tmp_path: Path) -> None:
    path = many_behaviors_log(tmp_path / "log.csv")
    path.write_text("\n".join(path.read_text().splitlines()[:40]) + "\n")  # few behaviours
    dataset = prepare(path, "csv", read_options=ReadOptions(column_map=MAP))
    dataset.save(tmp_path / "data")
    events = pq.read_table(tmp_path / "data" / schema.EVENTS_FILE)
    old = events.schema
    for name, kind in (
        ("behavior", pa.dictionary(pa.int8(), pa.string())),
        ("behavior_idx", pa.int8()),
    ):
        old = old.set(old.get_field_index(name), pa.field(name, kind, nullable=False))
    pq.write_table(events.cast(old), tmp_path / "data" / schema.EVENTS_FILE)
    loaded = EventDataset.load(tmp_path / "data")
    assert loaded.events.schema.field("behavior_idx").type == pa.int8()
    new, before = SequenceData.from_dataset(loaded), SequenceData.from_dataset(dataset)
    assert np.array_equal(new.behavior, before.behavior) and new.n_behaviors == 39


def test_more_behaviours_than_int16_holds_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("uid,sku,event,ts\n" + "".join(f"u,s,b{k},5\n" for k in range(32768)))
    with pytest.raises(InputError, match=r"32768 distinct behaviour values .* at most 32767"):
        read_log(path, "csv", ReadOptions(column_map=MAP))
