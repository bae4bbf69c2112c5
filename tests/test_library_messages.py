"""Library code speaks the library's terms: no string or comment outside the adapters (cli,
serving) names a command-line flag. An error about one setting names the setting and carries it
in ``InputError.setting``; the CLI adds its flag (tests/cli/test_data_cli.py checks that)."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "influrec"
ADAPTERS = ("cli", "serving")
FLAG = re.compile(r"(?<![\w-])--[A-Za-z][\w-]*")
# (module relative to src/influrec, flag) -> why the library may name it
ALLOWED = {
    ("config/reference.py", "--set"): "the generated configuration reference documents how "
    "the commands override a key",
}


def flags_in(source: str) -> list[tuple[int, str]]:
    """(line, flag) for each ``--flag`` in a string literal (f-strings and docstrings included)
    or a comment of ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found += [(node.lineno, flag) for flag in FLAG.findall(node.value)]
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            found += [(token.start[0], flag) for flag in FLAG.findall(token.string)]
    return found


def library_modules() -> list[Path]:
    modules = sorted(SRC.rglob("*.py"))
    return [path for path in modules if path.relative_to(SRC).parts[0] not in ADAPTERS]


def test_library_modules_name_no_command_line_flag() -> None:
    left = [
        f"{path.relative_to(SRC)}:{line}: {flag}"
        for path in library_modules()
        for line, flag in flags_in(path.read_text(encoding="utf-8"))
        if (path.relative_to(SRC).as_posix(), flag) not in ALLOWED
    ]
    assert not left, "library text names CLI flags (say the setting instead):\n" + "\n".join(left)


def test_every_allowed_flag_is_still_there() -> None:
    for module, flag in ALLOWED:
        assert flag in {f for _, f in flags_in((SRC / module).read_text(encoding="utf-8"))}


def test_the_library_scan_covers_data_and_influence() -> None:
    names = {path.relative_to(SRC).as_posix() for path in library_modules()}
    assert {"errors.py", "data/loaders.py", "influence/api.py", "run.py"} <= names
    assert not any(name.startswith(("cli/", "serving/")) for name in names)


@pytest.mark.parametrize(
    ("source", "flags"),
    [
        ('raise InputError("pass --time-unit s")\n', [(1, "--time-unit")]),
        ('x = f"{fmt} needs --map, e.g. --map a=b"\n', [(1, "--map"), (1, "--map")]),
        ('def f():\n    """Use ``--overwrite``."""\n', [(2, "--overwrite")]),
        ("x = 1  # see --history\n", [(1, "--history")]),
        ('x = "a -- b, x--y, ---, --3"\n', []),
        ("y = a--b\n", []),
    ],
)
def test_the_scan_finds_flags_and_only_flags(source: str, flags: list[tuple[int, str]]) -> None:
    assert sorted(flags_in(source)) == sorted(flags)
