from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


@pytest.fixture
def shared_file():
    """Path of a file under ../shared/datasets, skipping the test when it is absent."""

    def get(relative: str) -> Path:
        path = SHARED / relative
        if not path.exists():
            pytest.skip(f"shared dataset file {relative} not present")
        return path

    return get
