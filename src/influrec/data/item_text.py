"""Item text as vectors: one sentence-encoder vector per item, stored beside a prepared dataset.

`embed_item_text(folder, ["title", "description"], encoder)` joins each item's text columns
into one document ("Toy Story (1995). Animation, Children's, Comedy"), encodes the documents
in batches and writes

    item_text.safetensors   vectors (n_items + 1, dim) float32, unit length; row 0 (padding)
                            and items without any text are zero
    item_text.json          the encoder's name and version, the columns, the dimension, and a
                            content hash per item id

A re-run with the same encoder and columns encodes only the items whose text changed (or that
are new): the others' vectors are taken from the stored file by item id and content hash.

A model uses the vectors when `model.item_features` lists `"text"`: a
learned projection of each item's frozen vector is added to its embedding.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from influrec.data import dataset_files as files
from influrec.data import schema
from influrec.errors import InputError
from influrec.progress import steps

TEXT_FILE, TEXT_INFO_FILE = "item_text.safetensors", "item_text.json"
LIST_SEPARATOR = "|"  # multi-valued cells (genres) read as "a, b, c"


class Encoder(Protocol):
    """A sentence encoder: texts -> unit-length vectors (N, dim)."""

    name: str
    version: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class ItemText:
    vectors: np.ndarray  # (n_items + 1, dim) float32; zero rows: padding, items without text
    has_text: np.ndarray  # (n_items + 1,) bool
    encoder: str
    encoder_version: str
    columns: tuple[str, ...]
    info: dict[str, Any]  # item_text.json as read (item ids and content hashes included)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])


@dataclass(frozen=True)
class EmbedReport:
    items: int
    encoded: int  # encoded now
    reused: int  # taken from the stored file (same text, same encoder)
    without_text: int
    seconds: float
    path: Path


def item_documents(
    items: pa.Table, columns: Sequence[str], extra: Mapping[str, str] | None = None
) -> list[str | None]:
    """Each item's text (indexed by item_idx, entry 0 is padding): its non-empty cells of
    `columns` joined by ". ", multi-valued cells as "a, b", then its entry of `extra` (item id
    -> text, e.g. an abstract); None for an item with none."""
    missing = [c for c in columns if c not in items.column_names]
    if missing or not columns:
        present = [c for c in items.column_names if c not in ("item_idx", "item_id")]
        raise InputError(
            f"the item table has no column {', '.join(missing) or '(none given)'}; its "
            f"columns are {', '.join(present) or 'none'} (bring text columns with the items "
            "file when preparing the data)",
            setting="columns",
        )
    index = items.column("item_idx").to_numpy().astype(np.int64)
    parts: list[list[str]] = [[] for _ in range(items.num_rows + 1)]
    for column in columns:
        cells = items.column(column).cast(pa.string()).to_pylist()
        for item, cell in zip(index, cells, strict=True):
            if cell and cell.strip():
                words = (p.strip() for p in cell.split(LIST_SEPARATOR))
                parts[item].append(", ".join(w for w in words if w))
    if extra:
        ids = items.column("item_id").cast(pa.string()).to_pylist()
        for item, item_id in zip(index, ids, strict=True):
            text = extra.get(str(item_id), "")
            if isinstance(text, str) and text.strip():
                parts[item].append(text.strip())
    return [". ".join(p) if p else None for p in parts]


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def embed_item_text(
    folder: Path,
    columns: Sequence[str],
    encoder: Encoder,
    *,
    extra: Mapping[str, str] | None = None,
    batch_size: int = 64,
    progress: bool | None = None,
) -> EmbedReport:
    """Encode the text of every item of the prepared dataset in `folder` and store the vectors
    beside it (see the module's docstring); items whose text and encoder are unchanged since
    the last run are not encoded again. `extra` adds text by item id (see item_documents)."""
    started = time.perf_counter()
    folder = Path(folder)
    items = files.read_table(
        folder / schema.ITEMS_FILE, ["item_idx", "item_id"], files.DATASET_REMEDY
    )
    documents = item_documents(items, columns, extra)
    ids = [""] + [str(i) for i in items.sort_by("item_idx").column("item_id").to_pylist()]
    hashes = [content_hash(d) if d is not None else None for d in documents]
    vectors = np.zeros((len(documents), encoder.dim), np.float32)
    reused = _reuse(folder, encoder, columns, ids, hashes, vectors)
    todo = [i for i, d in enumerate(documents) if d is not None and i not in reused]
    with steps(len(todo), f"encoding item text ({encoder.name})", enabled=progress) as bar:
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            vectors[batch] = encoder.encode([documents[i] or "" for i in batch])
            bar.advance(len(batch))
    info = {
        "item_ids": ids,
        "encoder": encoder.name,
        "encoder_version": encoder.version,
        "columns": list(columns),
        "dim": encoder.dim,
        "hashes": {item: h for item, h in zip(ids[1:], hashes[1:], strict=True) if h},
    }
    write_item_text(folder, vectors, info)
    return EmbedReport(
        items=len(documents) - 1,
        encoded=len(todo),
        reused=len(reused),
        without_text=sum(d is None for d in documents[1:]),
        seconds=time.perf_counter() - started,
        path=folder / TEXT_FILE,
    )


def _reuse(
    folder: Path,
    encoder: Encoder,
    columns: Sequence[str],
    ids: list[str],
    hashes: list[str | None],
    vectors: np.ndarray,
) -> set[int]:
    """Fill `vectors` from the stored file where an item's id and text hash match and the
    encoder and columns are the same; the item indices filled."""
    stored = read_item_text(folder)
    if stored is None:
        return set()
    old, info = stored
    same = (info["encoder"], info["encoder_version"], info["columns"]) == (
        encoder.name,
        encoder.version,
        list(columns),
    )
    if not same or old.shape[1] != encoder.dim:
        return set()
    old_hashes: dict[str, str] = info["hashes"]
    old_rows = {item: row for row, item in enumerate(info.get("item_ids", []))}
    filled = set()
    for index, (item, digest) in enumerate(zip(ids, hashes, strict=True)):
        row = old_rows.get(item)
        if digest is not None and row is not None and old_hashes.get(item) == digest:
            vectors[index] = old[row]
            filled.add(index)
    return filled


def write_item_text(folder: Path, vectors: np.ndarray, info: dict[str, Any]) -> None:
    """Write both files through temporary names, so a killed run leaves the old pair."""
    from safetensors.numpy import save_file

    tmp_vectors, tmp_info = folder / f".{TEXT_FILE}.tmp", folder / f".{TEXT_INFO_FILE}.tmp"
    save_file({"vectors": vectors}, str(tmp_vectors))
    tmp_info.write_text(json.dumps(info, indent=1, sort_keys=True))
    tmp_vectors.replace(folder / TEXT_FILE)
    tmp_info.replace(folder / TEXT_INFO_FILE)


def read_item_text(folder: Path) -> tuple[np.ndarray, dict[str, Any]] | None:
    """The stored vectors and their description, None when the dataset has none."""
    path, info_path = Path(folder) / TEXT_FILE, Path(folder) / TEXT_INFO_FILE
    if not path.exists() or not info_path.exists():
        return None
    from safetensors.numpy import load_file

    try:
        vectors = load_file(str(path))["vectors"]
        info = json.loads(info_path.read_text())
        info["encoder"], info["encoder_version"], info["columns"], info["hashes"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(
            f"{path}: damaged item text vectors ({exc}); run `influrec data embed-text` again"
        ) from exc
    return vectors, info


def load_item_text(folder: Path, n_items: int) -> ItemText | None:
    """The item text vectors of the prepared dataset in `folder` (None when it has none)."""
    stored = read_item_text(folder)
    if stored is None:
        return None
    vectors, info = stored
    if vectors.shape[0] != n_items + 1:
        raise InputError(
            f"{Path(folder) / TEXT_FILE}: vectors for {vectors.shape[0] - 1} items, the dataset "
            f"has {n_items}; run `influrec data embed-text` again"
        )
    return ItemText(
        vectors=vectors.astype(np.float32, copy=False),
        has_text=np.abs(vectors).sum(axis=1) > 0,
        encoder=str(info["encoder"]),
        encoder_version=str(info["encoder_version"]),
        columns=tuple(info["columns"]),
        info=info,
    )
