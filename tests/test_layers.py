"""The bottom layers stay at the bottom: read every module's imports and check who may import
whom, so a shortcut through a higher layer fails here instead of tangling the code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "influrec"

# package (or top-level module) -> the influrec packages it may import besides itself
ALLOWED = {
    "errors": set(),
    "config": {"errors"},
    "folders": {"errors"},
    "models": {"config", "errors"},
    "data": {"errors", "folders", "__init__"},
}


def influrec_imports(path: Path) -> set[str]:
    """The influrec packages (first name after ``influrec.``) that ``path`` imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module if node.module != "influrec" else "influrec.__init__"]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "influrec":
                found.add(parts[1] if len(parts) > 1 else "__init__")
    return found


def layer_of(path: Path) -> str:
    relative = path.relative_to(SRC)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_a_bottom_layer_imports_only_what_is_below_it(layer: str) -> None:
    files = [p for p in SRC.rglob("*.py") if layer_of(p) == layer]
    assert files, f"no module of layer {layer!r}"
    wrong = {
        str(p.relative_to(SRC)): sorted(influrec_imports(p) - ALLOWED[layer] - {layer})
        for p in files
    }
    assert not {k: v for k, v in wrong.items() if v}, wrong


def test_the_import_reader_sees_a_violation(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from influrec.training.loop import train\nimport influrec.serving.app\n"
        "from influrec import __version__\nfrom influrec.data import schema\n"
    )
    assert influrec_imports(module) == {"training", "serving", "__init__", "data"}
