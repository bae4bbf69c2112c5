"""Batch jobs over every user: shards and resumed runs give the same file as one plain run."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from influrec.batch import Shard, parts_folder, run_batch
from influrec.errors import InputError
from influrec.inference import Recommender
from influrec.influence.api import explain
from tests_helpers import train_tiny_run


@pytest.fixture(scope="module")
def rec(tmp_path_factory: pytest.TempPathFactory) -> Recommender:
    return Recommender.load(train_tiny_run(tmp_path_factory.mktemp("batch"), users=23))


def test_recommend_for_every_user_in_the_datasets_order(rec: Recommender, tmp_path: Path) -> None:
    report = run_batch(rec, "recommend", tmp_path / "recs.parquet", k=3, chunk_users=5)
    table = pq.read_table(tmp_path / "recs.parquet")
    assert report.merged == tmp_path / "recs.parquet" and report.users == 23
    assert table.num_rows == 23 * 3 and "user_index" not in table.column_names
    users = table.column("user").to_pylist()
    assert users[::3] == list(rec.user_index)  # the dataset's order
    first = rec.recommend(rec.user_history(users[0]), k=3, exclude_seen=True)
    assert table.column("item").to_pylist()[:3] == [r.item_id for r in first]


def test_shards_and_a_resumed_run_give_the_single_run_file(
    rec: Recommender, tmp_path: Path
) -> None:
    single = tmp_path / "one.parquet"
    run_batch(rec, "recommend", single, k=4, chunk_users=4)
    split = tmp_path / "two.parquet"
    first = run_batch(rec, "recommend", split, shard=Shard(0, 2), k=4, chunk_users=4)
    assert first.merged is None and not split.exists()  # shard 1 has not run yet
    second = run_batch(rec, "recommend", split, shard=Shard(1, 2), k=4, chunk_users=4)
    assert second.merged == split
    assert pq.read_table(split).equals(pq.read_table(single))

    chunk = parts_folder(split) / "shard-1-of-2" / "chunk-000001.parquet"
    chunk.unlink()  # as if killed before this chunk was written
    split.unlink()
    again = run_batch(rec, "recommend", split, shard=Shard(1, 2), k=4, chunk_users=4)
    assert again.resumed_chunks == 2 and again.rows == 4 * 4  # one chunk of 4 users redone
    assert pq.read_table(split).equals(pq.read_table(single))


def test_explain_rows_are_every_events_effect(rec: Recommender, tmp_path: Path) -> None:
    out = tmp_path / "effects.parquet"
    run_batch(rec, "explain", out, k=2, method="loo", measure="margin", chunk_users=10)
    table = pq.read_table(out).to_pylist()
    user = next(iter(rec.user_index))
    expected = explain(rec, rec.user_history(user), k=2, method="loo", measure="margin")
    mine = [row for row in table if row["user"] == user]
    assert [(r["rank"], r["position"], r["effect"]) for r in mine] == [
        (item.rank, event.position, event.effect)
        for item in expected.recommendations
        for event in item.events
    ]


def test_other_options_do_not_resume_old_parts(rec: Recommender, tmp_path: Path) -> None:
    out = tmp_path / "recs.parquet"
    run_batch(rec, "recommend", out, k=2, chunk_users=50)
    with pytest.raises(InputError, match="another batch job") as caught:
        run_batch(rec, "recommend", out, k=5, chunk_users=50)
    assert caught.value.setting == "out"
    with pytest.raises(InputError, match=r"index must be in 0\.\.1"):
        Shard(2, 2)
    assert Shard.from_environment({"RANK": "1", "WORLD_SIZE": "3"}) == Shard(1, 3)
