from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from influrec.config import SECTIONS, ExperimentConfig
from influrec.config.reference import COMMAND, reference_markdown

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "configuration.md"


def test_committed_reference_is_up_to_date() -> None:
    assert DOC.read_text(encoding="utf-8") == reference_markdown(), (
        f"docs/configuration.md is out of date with the config models; run: {COMMAND}"
    )


def test_reference_has_a_row_for_every_key_with_its_default_and_range() -> None:
    text = reference_markdown()
    defaults = ExperimentConfig().to_dict()
    for name, section in SECTIONS.items():
        table = text.split(f"## `[{name}]`")[1].split("\n## ")[0]
        rows = [line for line in table.splitlines() if line.startswith("| `")]
        assert [row.split("`")[1] for row in rows] == list(section.model_fields)
        for row, info in zip(rows, section.model_fields.values(), strict=True):
            assert info.description and info.description.replace("|", "\\|") in row
    assert "| `layers` | int | `2` | positive |" in text
    assert '| `loss` | str | `"ce"` | `"ce"`, `"sampled"`, `"bce"` |' in text
    assert "| `dropout` | float | `0.2` | in [0, 1) |" in text
    assert "| `ks` | list of int | `[1, 5, 10, 20, 50]` | each positive; non-empty |" in text
    assert defaults["model"]["max_len"] == 50 and "| `max_len` | int | `50` |" in text
    assert "- `model.value_head`: the value head was removed" in text


def test_the_module_prints_the_reference() -> None:
    paths = [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in paths if path)}
    command = [sys.executable, "-m", "influrec.config"]
    printed = subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout
    assert printed == reference_markdown()
