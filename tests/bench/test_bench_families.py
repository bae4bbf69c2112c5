"""bench/families.py: the committed per-family configs and the RecBole data it writes (imported
as the bench scripts import it: bench/ is on pytest's python path)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from families import config_path, movielens_atomic
from influrec.config import load_config
from influrec.models.registry import MODELS


@pytest.mark.parametrize("dataset", ["ml-100k", "beauty", "ml-1m"])
def test_every_family_has_a_config_of_the_transformers_size_and_schedule(dataset: str) -> None:
    reference = load_config(config_path(dataset, "transformer"), [])
    for family in MODELS:
        config = load_config(config_path(dataset, family), [])
        assert config.model.architecture == family
        for key in ("d_model", "max_len", "dropout", "behavior_head"):
            assert getattr(config.model, key) == getattr(reference.model, key), (family, key)
        assert config.train == reference.train and config.eval == reference.eval


def test_movielens_files_become_recbole_atomic_rows_in_file_order(tmp_path: Path) -> None:
    tab = tmp_path / "u.data"
    tab.write_text("196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    movielens_atomic(tab, tmp_path / "a" / "ml-100k.inter")
    colons = tmp_path / "ratings.dat.gz"
    with gzip.open(colons, "wt") as out:
        out.write("1::1193::5::978300760\n\n1::661::3::978302109\n")
    movielens_atomic(colons, tmp_path / "b" / "ml-1m.inter")
    header = "user_id:token\titem_id:token\ttimestamp:float"
    assert (tmp_path / "a" / "ml-100k.inter").read_text().splitlines() == [
        header,
        "196\t242\t881250949",
        "186\t302\t891717742",
    ]
    assert (tmp_path / "b" / "ml-1m.inter").read_text().splitlines() == [
        header,
        "1\t1193\t978300760",
        "1\t661\t978302109",
    ]
