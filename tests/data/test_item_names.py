from __future__ import annotations

import pyarrow as pa

from influrec.data.item_names import ItemNames
from influrec.data.times import readable_time


def test_titles_then_names_then_ids() -> None:
    items = pa.table(
        {
            "item_idx": [1, 2, 3],
            "item_id": ["a", "b", "c"],
            "name": ["Apple", "  ", None],
            "title": ["Scream (1996)", "", "Fargo (1996)"],
        }
    )
    names = ItemNames.from_items(items)  # title is preferred over name
    assert names.label("a") == "Scream (1996)" and names.title("c") == "Fargo (1996)"
    assert names.title("b") is None and names.label("b") == "b"  # a blank title is no title
    assert names.label("unknown") == "unknown"


def test_a_name_column_and_no_column() -> None:
    named = ItemNames.from_items(pa.table({"item_id": [7, 8], "name": ["shoe", None]}))
    assert named.label("7") == "shoe" and named.label("8") == "8"  # ids read as strings
    plain = ItemNames.from_items(pa.table({"item_id": ["x"], "price": ["3"]}))
    assert plain.title("x") is None and plain.label("x") == "x"
    genres = ItemNames.from_items(pa.table({"item_id": ["x", "y"], "genres": ["Drama", "A|B"]}))
    assert genres.title("x") is None and genres.label("x") == "item x (genre Drama)"
    assert genres.label("y") == "item y (genres A, B)"


def test_items_without_names_are_shown_by_id_and_category() -> None:
    items = pa.table({"item_id": ["2313", "77", "9"], "category": ["4501", None, "12"]})
    names = ItemNames.from_items(items)  # a Taobao item table: id and category only
    assert names.label("2313") == "item 2313 (category 4501)"
    assert names.title("2313") is None  # a category is no title: JSON keeps title absent
    assert names.label("77") == "77" and names.label("unknown") == "unknown"
    titled = ItemNames.from_items(items.append_column("title", pa.array(["Lamp", None, None])))
    assert titled.label("2313") == "Lamp" and titled.label("9") == "item 9 (category 12)"
    several = ItemNames.from_items(pa.table({"item_id": ["a"], "categories": [["x", "y"]]}))
    assert several.label("a") == "item a (categories x, y)"


def test_readable_time_is_utc_to_the_minute() -> None:
    assert readable_time(881110763) == "1997-12-03 00:59"
    assert readable_time(0) == "1970-01-01 00:00"
