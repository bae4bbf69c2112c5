"""Small builders shared by tests."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from influrec.data.dataset import EventDataset
from influrec.data.history import History
from influrec.data.sequences import SequenceData
from influrec.data.splits import leave_one_out_split
from influrec.inference import Recommender


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


ML100K = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "ml-100k"


def ml100k_slice_run(root: Path) -> Path:
    """Through the CLI: a tiny model (window of 20 events) trained on the first 4,000 ratings
    of ML-100k with u.item beside them, in root/run; skips the test when ml-100k is absent."""
    import shutil

    import pytest

    from influrec.cli.main import main

    if not (ML100K / "u.data").exists() or not (ML100K / "u.item").exists():
        pytest.skip("shared dataset ml-100k (u.data, u.item) not present")
    (root / "ml").mkdir()
    lines = (ML100K / "u.data").read_text().splitlines(keepends=True)[:4000]
    (root / "ml" / "u.data").write_text("".join(lines))
    shutil.copy(ML100K / "u.item", root / "ml" / "u.item")
    data, run = root / "data", root / "run"
    prepare = ["data", "prepare", str(root / "ml" / "u.data"), "--format", "movielens"]
    assert main([*prepare, "--out", str(data)]) == 0
    settings = ["model.max_len=20", "model.d_model=16", "model.layers=1", "train.epochs=1"]
    settings += ["eval.ks=[1,10]"]
    argv = ["train", str(data), "--out", str(run), "--no-progress"]
    assert main([*argv, *(p for s in settings for p in ("--set", s))]) == 0
    return run


def ml100k_titles() -> dict[str, str]:
    """ML-100k item id -> title, read straight from u.item (ISO-8859-1, ``|``-separated)."""
    text = (ML100K / "u.item").read_bytes().decode("latin-1")
    return {f[0]: f[1] for f in (line.split("|") for line in text.splitlines() if line)}


def held_out_events(ds: EventDataset) -> list[tuple[str, str, int]]:
    """(user, item, time) of every validation and test target under the leave-one-out split."""
    data = SequenceData.from_dataset(ds)
    split = leave_one_out_split(data.user)
    table = ds.events.take(np.sort(np.concatenate([split.valid, split.test])))
    return list(
        zip(
            table.column("user_id").to_pylist(),
            table.column("item_id").to_pylist(),
            table.column("timestamp").to_pylist(),
            strict=True,
        )
    )


def user_history(rec: Recommender, n: int | None = None) -> History:
    """The first ``n`` events (all when None) of the user with the longest stored history."""
    lengths = rec.data.user_end - rec.data.user_start
    longest = int(np.argmax(lengths))  # user_idx of the longest history
    h = rec.user_history(rec.dataset.users.column("user_id")[longest - 1].as_py())
    if n is None:
        return h
    return History(h.items[:n], h.behaviors[:n], h.timestamps[:n], h.values[:n])


def random_history(n: int, *, n_items: int, seed: int = 0) -> History:
    """``n`` random events over items 1..n_items and behaviours 1..3, times increasing."""
    rng = np.random.default_rng(seed)
    return History(
        rng.integers(1, n_items + 1, n),
        rng.integers(1, 4, n),
        np.cumsum(rng.integers(0, 100_000, n)),
        rng.random(n).astype(np.float32),
    )


def drop_events(history: History, positions: Sequence[int]) -> History:
    """The history with the events at ``positions`` really deleted (the later ones move up)."""
    index = np.asarray(positions, dtype=np.int64)
    return History(
        np.delete(history.items, index),
        np.delete(history.behaviors, index),
        np.delete(history.timestamps, index),
        np.delete(history.values, index),
    )


def rescore_without(rec: Recommender, history: History, positions: Sequence[int]) -> torch.Tensor:
    """(I + 1,) next-item scores after deleting ``positions``: one serving forward pass."""
    return rec.scores([drop_events(history, positions)])[0]


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run a block on one torch thread (tiny models on a shared machine), then restore."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def metric_samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Prometheus exposition text parsed: (sample name, labels) -> value."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
