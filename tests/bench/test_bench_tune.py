"""bench/tune.py: its plain space loads against its plain base, and the seeds it asks for
change only the seed (and the time cap when one is given)."""

from __future__ import annotations

from influrec.config import load_config
from influrec.tuning.space import SearchSpace
from tune import PLAIN, SPACE, with_seed


def test_the_plain_space_is_valid_for_the_plain_base() -> None:
    space = SearchSpace.load(SPACE, load_config(None, PLAIN))
    keys = [d.key for d in space.dimensions]
    assert "train.lr" in keys and "model.d_model" in keys
    assert all(
        not d.key.startswith(("eval.", "data.")) for d in space.dimensions
    )  # the split and metrics stay fixed


def test_a_seeded_copy_changes_the_seed_and_cap_only() -> None:
    base = load_config(None, PLAIN)
    seeded = with_seed(base, 2, 3.0)
    assert seeded.train.seed == 2 and seeded.train.max_minutes == 3.0
    assert (
        seeded.model == base.model and seeded.train.replace(seed=0, max_minutes=4.0) == base.train
    )
    assert with_seed(base, 1, None).train.max_minutes == base.train.max_minutes
