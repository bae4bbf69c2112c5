"""Categorical item features (genres, categories, brand...) as a table of value ids per item.

``ItemFeatures.from_items(dataset.items, ["genres"], n_items)`` reads the named columns of a
prepared dataset's item table. A cell holds one value or several separated by ``|`` (the
MovieLens genres and S3-Rec attributes are written that way); empty cells and empty parts are
no value. Values are named ``column=value`` and numbered 1..V in sorted order, so the same
item table always gives the same ids (0 is "no value", the padding of each row).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from influrec.errors import InputError

SEPARATOR = "|"


@dataclass(frozen=True)
class ItemFeatures:
    table: np.ndarray  # (n_items + 1, width) int64 value ids; 0 pads, row 0 (padding) is all 0
    values: tuple[str, ...]  # value id k names values[k - 1], as "column=value"

    @property
    def width(self) -> int:
        return int(self.table.shape[1])

    @classmethod
    def from_items(cls, items: pa.Table, columns: Sequence[str], n_items: int) -> ItemFeatures:
        """The features of items 1..n_items from ``items`` (``item_idx`` plus metadata columns).

        InputError when a column is missing, names the columns there are. Items without a row
        or a value get none (their row is all padding)."""
        missing = [c for c in columns if c not in items.column_names]
        if missing:
            present = [c for c in items.column_names if c not in ("item_idx", "item_id")]
            raise InputError(
                f"model.item_features names {missing}, which the dataset's item table does "
                f"not have; its metadata columns are {present or 'none'}"
            )
        index = items.column("item_idx").to_numpy().astype(np.int64)
        per_item: list[list[str]] = [[] for _ in range(n_items + 1)]
        for column in columns:
            cells = items.column(column).cast(pa.string()).to_pylist()
            for item, cell in zip(index, cells, strict=True):
                if cell and 0 < item <= n_items:
                    parts = (p.strip() for p in cell.split(SEPARATOR))
                    per_item[item].extend(f"{column}={p}" for p in parts if p)
        values = tuple(sorted({v for row in per_item for v in row}))
        ids = {v: k for k, v in enumerate(values, start=1)}
        rows = [sorted({ids[v] for v in row}) for row in per_item]
        table = np.zeros((n_items + 1, max(1, max(map(len, rows)))), np.int64)
        for item, row_ids in enumerate(rows):
            table[item, : len(row_ids)] = row_ids
        return cls(table, values)
