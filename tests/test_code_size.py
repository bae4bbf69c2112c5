"""Size limits of the library code: no file in src/ over 450 lines and no function or method
over 60 lines (from ``def`` to its last line, decorators aside), so every unit can be read at
once. Today's exceptions are listed below, each one being split up; an entry that no longer
exceeds its limit fails too, so the list can only shrink."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
MAX_FILE_LINES = 450
MAX_FUNCTION_LINES = 60

# Known violations, "path relative to src/" or "path::qualified.function.name". Remove an entry
# once the code is split; never add one without a reason written beside it.
ALLOWED_LONG_FILES: set[str] = set()
ALLOWED_LONG_FUNCTIONS: set[str] = set()


def function_lengths(path: Path) -> dict[str, int]:
    """``qualified.name`` -> lines (end_lineno - lineno + 1) of every function and method in
    ``path``, nested ones included (``outer.inner``)."""
    lengths: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    lengths[name] = (child.end_lineno or child.lineno) - child.lineno + 1
                visit(child, f"{name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(path.read_text(encoding="utf-8")), "")
    return lengths


def long_files(root: Path) -> dict[str, int]:
    """Path (relative to ``root``) -> line count of every ``.py`` file over the limit."""
    counts = {
        p.relative_to(root).as_posix(): len(p.read_text(encoding="utf-8").splitlines())
        for p in sorted(root.rglob("*.py"))
    }
    return {name: n for name, n in counts.items() if n > MAX_FILE_LINES}


def long_functions(root: Path) -> dict[str, int]:
    """``path::qualified.name`` -> lines of every function over the limit under ``root``."""
    return {
        f"{p.relative_to(root).as_posix()}::{name}": n
        for p in sorted(root.rglob("*.py"))
        for name, n in function_lengths(p).items()
        if n > MAX_FUNCTION_LINES
    }


def test_no_file_in_src_is_over_the_line_limit() -> None:
    found = long_files(SRC)
    assert set(found) - ALLOWED_LONG_FILES == set(), f"over {MAX_FILE_LINES} lines: {found}"
    fixed = ALLOWED_LONG_FILES - set(found)
    assert not fixed, f"no longer over the limit, remove from ALLOWED_LONG_FILES: {fixed}"


def test_no_function_in_src_is_over_the_line_limit() -> None:
    found = long_functions(SRC)
    assert set(found) - ALLOWED_LONG_FUNCTIONS == set(), f"over {MAX_FUNCTION_LINES}: {found}"
    fixed = ALLOWED_LONG_FUNCTIONS - set(found)
    assert not fixed, f"no longer over the limit, remove from ALLOWED_LONG_FUNCTIONS: {fixed}"


def test_the_size_reader_counts_files_methods_and_nested_functions(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))  # def + 60 = 61
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "m.py").write_text(
        f"class A:\n    @staticmethod\n    def long():\n{body.replace('    ', '        ')}\n"
        f"def outer():\n    def inner():\n{body.replace('    ', '        ')}\n"
        "def short():\n    return 1\n"
    )
    (tmp_path / "pkg" / "small.py").write_text("x = 1\n")
    assert function_lengths(tmp_path / "pkg" / "m.py") == {
        "A.long": MAX_FUNCTION_LINES + 1,
        "outer": MAX_FUNCTION_LINES + 2,
        "outer.inner": MAX_FUNCTION_LINES + 1,
        "short": 2,
    }
    assert long_functions(tmp_path) == {
        "pkg/m.py::A.long": 61,
        "pkg/m.py::outer": 62,
        "pkg/m.py::outer.inner": 61,
    }
    assert long_files(tmp_path) == {}
    (tmp_path / "pkg" / "small.py").write_text("\n" * (MAX_FILE_LINES - 1) + "x = 1\n")
    assert long_files(tmp_path) == {}  # exactly at the limit
    (tmp_path / "pkg" / "m.py").write_text("\n" * MAX_FILE_LINES + "x = 1\n")
    assert long_files(tmp_path) == {"pkg/m.py": MAX_FILE_LINES + 1}
