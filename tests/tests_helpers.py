"""Small builders shared by tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from influrec.data.sequences import SequenceData


def make_data(lengths: list[int], seed: int = 0) -> SequenceData:
    rng = np.random.default_rng(seed)
    user = np.repeat(np.arange(1, len(lengths) + 1), lengths).astype(np.int64)
    counts = np.bincount(user, minlength=len(lengths) + 1)
    end = np.cumsum(counts)
    n = len(user)
    return SequenceData(
        item=rng.integers(1, 6, n),
        behavior=rng.integers(1, 3, n),
        timestamp=np.arange(n, dtype=np.int64) * 10,
        value=np.arange(n, dtype=np.float32),
        has_value=np.ones(n, bool),
        user=user,
        user_start=end - counts,
        user_end=end,
        n_items=5,
        n_behaviors=2,
    )


def train_tiny_run(
    root: Path,
    *,
    users: int = 40,
    items: int = 30,
    epochs: int = 1,
    max_len: int = 12,
    extra: tuple[str, ...] = (),
) -> Path:
    """Through the CLI: synthetic data in root/data, a tiny model trained into root/run."""
    from influrec.cli.main import main

    assert (
        main(
            [
                "data",
                "synth",
                "--out",
                str(root / "data"),
                "--users",
                str(users),
                "--items",
                str(items),
            ]
        )
        == 0
    )
    overrides = [
        f"model.max_len={max_len}",
        "model.d_model=16",
        "model.layers=1",
        f"train.epochs={epochs}",
        "train.batch_size=32",
        "eval.ks=[1,10]",
        *extra,
    ]
    settings = [part for o in overrides for part in ("--set", o)]
    assert (
        main(["train", str(root / "data"), "--out", str(root / "run"), "--no-progress", *settings])
        == 0
    )
    return root / "run"
