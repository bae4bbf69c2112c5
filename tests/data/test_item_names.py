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
    plain = ItemNames.from_items(pa.table({"item_id": ["x"], "genres": ["Drama"]}))
    assert plain.title("x") is None and plain.label("x") == "x"


def test_readable_time_is_utc_to_the_minute() -> None:
    assert readable_time(881110763) == "1997-12-03 00:59"
    assert readable_time(0) == "1970-01-01 00:00"
