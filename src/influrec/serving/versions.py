"""Which model answered: a version id for a loaded run, named in every answer.

The id is ``RUN@DIGEST``: the run folder's name (after following symbolic links, so a
``current`` link names the run it points to) and the first 12 hex digits of the SHA-256 of the
run's model file. Two runs with equal weights share a digest; a run retrained into the same
folder gets a new one.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

from influrec.run import MODEL_FILE

DIGEST_CHARS = 12


@dataclass(frozen=True)
class ModelVersion:
    run_dir: Path  # the run folder, symbolic links followed
    digest: str  # first DIGEST_CHARS hex digits of the model file's SHA-256
    loaded_at: float = field(default_factory=time.time)  # epoch seconds

    @property
    def id(self) -> str:
        return f"{self.run_dir.name}@{self.digest}"


def model_version(run_dir: Path) -> ModelVersion:
    """The version of the run in ``run_dir`` (a folder or a link to one); reads its model file
    once (OSError if it cannot be read)."""
    folder = Path(run_dir).resolve()
    digest = hashlib.sha256()
    with (folder / MODEL_FILE).open("rb") as weights:
        for block in iter(lambda: weights.read(1 << 20), b""):
            digest.update(block)
    return ModelVersion(folder, digest.hexdigest()[:DIGEST_CHARS])
