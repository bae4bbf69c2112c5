"""Item metadata (title, genres, category, attributes, free text) read from beside the events
when present.

The result is a table with a string ``item_id`` column plus whatever the source has; the
prepared dataset stores it in ``items.parquet`` next to each item's index.
"""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from influrec.data.parsing import EncodedColumns
from influrec.errors import InputError

ML100K_GENRES = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
]


def _read_text(path: Path) -> str:
    try:
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (EOFError, OSError, zlib.error) as exc:
        raise InputError(f"{path}: cannot read ({exc}); the file is truncated or corrupt") from exc
    return data.decode("latin-1")  # the MovieLens item files are ISO-8859-1


def _movielens_items(folder: Path) -> pa.Table | None:
    """``u.item`` (ml-100k), ``movies.dat`` (ml-1m, ml-10m) or ``movies.csv`` (ml-20m and later)."""
    if (folder / "u.item").exists():
        ids, titles, genres = [], [], []
        for line in _read_text(folder / "u.item").splitlines():
            fields = line.split("|")
            if len(fields) < 5 + len(ML100K_GENRES):
                continue
            flags = fields[5 : 5 + len(ML100K_GENRES)]
            ids.append(fields[0])
            titles.append(fields[1])
            genres.append(
                "|".join(g for g, f in zip(ML100K_GENRES, flags, strict=True) if f == "1")
            )
        return pa.table({"item_id": ids, "title": titles, "genres": genres})
    if (folder / "movies.dat").exists():
        rows = [line.split("::") for line in _read_text(folder / "movies.dat").splitlines()]
        rows = [r for r in rows if len(r) == 3]
        return pa.table(
            {
                "item_id": [r[0] for r in rows],
                "title": [r[1] for r in rows],
                "genres": [r[2] for r in rows],
            }
        )
    if (folder / "movies.csv").exists():
        table = pa_csv.read_csv(
            folder / "movies.csv",
            convert_options=pa_csv.ConvertOptions(column_types={"movieId": pa.string()}),
        )
        return table.select(["movieId", "title", "genres"]).rename_columns(
            ["item_id", "title", "genres"]
        )
    return None


def _s3rec_items(path: Path) -> pa.Table | None:
    """``<Name>_item2attributes.json`` beside ``<Name>.txt`` (``{"item": [attribute, ...]}``)
    as an ``attributes`` column of ``|``-joined attribute ids."""
    stem = path.name.split(".")[0]
    attributes = path.parent / f"{stem}_item2attributes.json"
    if not attributes.exists():
        return None
    try:
        raw = json.loads(attributes.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{attributes}: not valid JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise InputError(f"{attributes}: expected an object of item id -> attribute list")
    ids, joined = [], []
    for item, values in raw.items():
        if not isinstance(values, list) or not all(isinstance(v, int | str) for v in values):
            raise InputError(
                f"{attributes}: item {item!r}: expected a list of attribute ids, got {values!r}"
            )
        ids.append(str(item))
        joined.append("|".join(str(v) for v in values))
    return pa.table({"item_id": ids, "attributes": joined})


def read_items_file(path: Path) -> pa.Table:
    """A user-given item file (CSV with a header, or Parquet) with an ``item_id`` column."""
    if not path.is_file():
        raise InputError(f"{path}: no such item metadata file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the item metadata file is empty; it needs an item_id column")
    try:
        table = pq.read_table(path) if path.suffix == ".parquet" else pa_csv.read_csv(path)
        names = table.column_names  # pyarrow decodes the names here
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError, UnicodeDecodeError) as exc:
        kind = "Parquet" if path.suffix == ".parquet" else "CSV with a header row (UTF-8)"
        raise InputError(
            f"{path}: cannot read the item metadata file ({str(exc)[:150]}); expected {kind} "
            "with an item_id column"
        ) from exc
    if "item_id" not in names:
        raise InputError(f"{path}: item metadata needs an item_id column; it has {names}")
    return table.set_column(
        names.index("item_id"), "item_id", table.column("item_id").cast(pa.string())
    )


def read_item_metadata(
    path: Path, fmt: str, columns: EncodedColumns, *, items_file: Path | None = None
) -> pa.Table | None:
    """Item metadata for a log: an explicit ``items_file``, the format's own files, or the
    per-item attributes seen in the events (Taobao's category)."""
    if items_file is not None:
        return read_items_file(Path(items_file))
    if fmt == "movielens":
        return _movielens_items(path.parent)
    if fmt == "s3rec":
        return _s3rec_items(path)
    if columns.item_attrs:
        codes = sorted(next(iter(columns.item_attrs.values())))
        data: dict[str, list[str | None]] = {"item_id": [columns.items[c] for c in codes]}
        for name, values in columns.item_attrs.items():
            data[name] = [values.get(c) for c in codes]
        return pa.table(data)
    return None
