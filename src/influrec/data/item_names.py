"""Items as people name them: the title or name an item table gives, else the id.

``ItemNames.from_items(dataset.items)`` reads the first of the columns ``title`` and ``name``
that the prepared item table has (MovieLens titles are read into ``title`` by
``influrec data prepare``; an items file may bring either). Items without a (non-empty) name
are shown by their id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pyarrow as pa

NAME_COLUMNS = ("title", "name")
"""Item-table columns that name an item, in order of preference."""


@dataclass(frozen=True)
class ItemNames:
    """The title of each named item, by item id (the dataset's id, a string)."""

    titles: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_items(cls, items: pa.Table) -> ItemNames:
        """The names in ``items`` (``item_id`` plus metadata columns); none when no column of
        :data:`NAME_COLUMNS` is there."""
        column = next((c for c in NAME_COLUMNS if c in items.column_names), None)
        if column is None or "item_id" not in items.column_names:
            return cls()
        ids = items.column("item_id").cast(pa.string()).to_pylist()
        names = items.column(column).cast(pa.string()).to_pylist()
        titles = {str(i): n.strip() for i, n in zip(ids, names, strict=True) if n and n.strip()}
        return cls(titles)

    def title(self, item_id: str) -> str | None:
        """The item's title or name, ``None`` when it has none."""
        return self.titles.get(item_id)

    def label(self, item_id: str) -> str:
        """What to show for the item: its title (``Scream (1996)``), else its id."""
        return self.titles.get(item_id, item_id)
