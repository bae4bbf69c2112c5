from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from influrec.data.dataset import prepare
from influrec.data.item_features import ItemFeatures
from influrec.data.preprocess import PrepareConfig
from influrec.errors import InputError


def items_table() -> pa.Table:
    return pa.table(
        {
            "item_idx": pa.array([1, 2, 3, 4], pa.int32()),
            "item_id": ["a", "b", "c", "d"],
            "genres": ["Drama|Comedy", "Comedy", None, "Drama||Drama"],
            "brand": ["x", "", "y", "x"],
        }
    )


def test_values_are_named_numbered_in_sorted_order_and_padded() -> None:
    features = ItemFeatures.from_items(items_table(), ["genres", "brand"], n_items=5)
    assert features.values == ("brand=x", "brand=y", "genres=Comedy", "genres=Drama")
    assert features.width == 3  # item a: Comedy, Drama, x
    expected = [
        [0, 0, 0],  # padding
        [1, 3, 4],  # a: x, Comedy, Drama
        [3, 0, 0],  # b: Comedy (an empty brand is no value)
        [2, 0, 0],  # c: y (no genres)
        [1, 4, 0],  # d: x, Drama once (empty and repeated parts dropped)
        [0, 0, 0],  # item 5 has no row
    ]
    np.testing.assert_array_equal(features.table, expected)


def test_the_same_items_give_the_same_ids() -> None:
    table = items_table()
    a = ItemFeatures.from_items(table, ["genres"], n_items=4)
    b = ItemFeatures.from_items(table.take([3, 1, 0, 2]), ["genres"], n_items=4)
    assert a.values == b.values
    np.testing.assert_array_equal(a.table, b.table)


def test_a_missing_column_names_the_columns_there_are() -> None:
    with pytest.raises(InputError, match=r"\['category'\].*\['genres', 'brand'\]"):
        ItemFeatures.from_items(items_table(), ["genres", "category"], n_items=4)


def write_s3rec(folder: Path, attributes: object) -> Path:
    path = folder / "Beauty.txt"
    path.write_text("1 1 2 3\n2 2 3 1\n3 3 1 2\n")
    (folder / "Beauty_item2attributes.json").write_text(json.dumps(attributes))
    return path


def test_s3rec_attributes_become_an_item_metadata_column(tmp_path: Path) -> None:
    path = write_s3rec(tmp_path, {"1": [5, 7], "2": [7], "3": [], "9": [1]})
    dataset = prepare(path, "s3rec", config=PrepareConfig(min_user_events=1, min_item_events=1))
    rows = {r["item_id"]: r["attributes"] for r in dataset.items.to_pylist()}
    assert rows == {"1": "5|7", "2": "7", "3": ""}  # item 9 has no events
    features = ItemFeatures.from_items(dataset.items, ["attributes"], dataset.n_items)
    assert features.values == ("attributes=5", "attributes=7")


def test_a_bad_s3rec_attribute_file_names_itself(tmp_path: Path) -> None:
    path = write_s3rec(tmp_path, {"1": "5"})
    with pytest.raises(InputError, match=r"Beauty_item2attributes\.json: item '1'.*list"):
        prepare(path, "s3rec")
    (tmp_path / "Beauty_item2attributes.json").write_text("{not json")
    with pytest.raises(InputError, match=r"Beauty_item2attributes\.json: not valid JSON"):
        prepare(path, "s3rec")
