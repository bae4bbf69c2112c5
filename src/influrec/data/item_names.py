"""Items as people name them: the title or name an item table gives, else id and category.

``ItemNames.from_items(dataset.items)`` reads the first of the columns ``title`` and ``name``
that the prepared item table has (MovieLens titles are read into ``title`` by
``influrec data prepare``; an items file may bring either). An item without a (non-empty) name
but with a category (the first of :data:`CATEGORY_COLUMNS` the table has: Taobao's
``category``, the synthetic data's taste cluster) is shown by its id and category,
``item 2313 (category 4501)``; any other item by its id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pyarrow as pa

NAME_COLUMNS = ("title", "name")
"""Item-table columns that name an item, in order of preference."""

CATEGORY_COLUMNS = ("category", "categories", "genres", "genre")
"""Item-table columns that give an item's category, in order of preference: the one list for
labels here and for grouping events by category (``influence.api.item_categories``). A cell
may hold several values (a list, or text separated by ``|``)."""


def _titles(items: pa.Table) -> dict[str, str]:
    """item id -> its stripped title, from the first of NAME_COLUMNS the table has."""
    column = next((c for c in NAME_COLUMNS if c in items.column_names), None)
    if column is None or "item_id" not in items.column_names:
        return {}
    ids = items.column("item_id").cast(pa.string()).to_pylist()
    names = items.column(column).cast(pa.string()).to_pylist()
    return {str(i): n.strip() for i, n in zip(ids, names, strict=True) if n and n.strip()}


def _values(cell: object) -> list[str]:
    """The non-empty stripped values of one cell (a list, ``a|b`` text, a scalar or None)."""
    parts = cell if isinstance(cell, list) else str(cell).split("|") if cell is not None else []
    return [text for p in parts if p is not None and (text := str(p).strip())]


def _category_values(items: pa.Table) -> tuple[str | None, dict[str, list[str]]]:
    """The first of CATEGORY_COLUMNS the table has, and item id -> the values of its cell."""
    column = next((c for c in CATEGORY_COLUMNS if c in items.column_names), None)
    if column is None or "item_id" not in items.column_names:
        return None, {}
    ids = items.column("item_id").cast(pa.string()).to_pylist()
    cells = items.column(column).to_pylist()
    return column, {str(i): v for i, c in zip(ids, cells, strict=True) if (v := _values(c))}


def _categories(items: pa.Table) -> dict[str, str]:
    """item id -> ``category 4501`` (``categories x, y``, ``genres Action, Comedy``...)."""
    column, values = _category_values(items)
    word = "genre" if column is not None and column.startswith("genre") else "category"
    plural = "genres" if word == "genre" else "categories"
    return {i: f"{word if len(v) == 1 else plural} {', '.join(v)}" for i, v in values.items()}


@dataclass(frozen=True)
class ItemNames:
    """The title of each named item and the category of each categorised item, by item id
    (the dataset's id, a string)."""

    titles: Mapping[str, str] = field(default_factory=dict)
    categories: Mapping[str, str] = field(default_factory=dict)  # id -> "category 4501"

    @classmethod
    def from_items(cls, items: pa.Table) -> ItemNames:
        """The names and categories in ``items`` (``item_id`` plus metadata columns); none when
        no column of :data:`NAME_COLUMNS` (:data:`CATEGORY_COLUMNS`) is there."""
        return cls(_titles(items), _categories(items))

    def title(self, item_id: str) -> str | None:
        """The item's title or name, ``None`` when it has none."""
        return self.titles.get(item_id)

    def label(self, item_id: str) -> str:
        """What to show for the item: its title (``Scream (1996)``), else its id and category
        (``item 2313 (category 4501)``), else its id."""
        title = self.titles.get(item_id)
        if title is not None:
            return title
        category = self.categories.get(item_id)
        return item_id if category is None else f"item {item_id} ({category})"
