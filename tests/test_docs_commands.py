"""Every ``influrec ...`` command shown in the README and docs/ is one the CLI accepts: the
docs cannot drift from the command's real flags and choices."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from influrec.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
OPTIONAL = re.compile(r"\s\[--[^\]]*\]")  # "[--json]": optional flags shown in brackets


def shell_commands(page: Path) -> list[tuple[int, str]]:
    """(line, command) of each ``influrec`` call in the page's bash blocks, continuations joined."""
    found: list[tuple[int, str]] = []
    in_bash, pending, start = False, "", 0
    for number, line in enumerate(page.read_text().splitlines(), start=1):
        if line.startswith("```"):
            in_bash = line.strip() == "```bash"
            continue
        if not in_bash:
            continue
        text = (pending + " " + line.strip()) if pending else line.strip()
        start = start if pending else number
        if text.endswith("\\"):
            pending = text[:-1]
            continue
        pending = ""
        command = text.split(" #")[0].strip().rstrip("&").strip()
        command = re.sub(r"^(\w+=\S+\s+)+", "", command)  # VAR=value prefixes
        if command.startswith("influrec "):
            found.append((start, OPTIONAL.sub("", command)))
    return found


CASES = [
    pytest.param(cmd, id=f"{page.name}:{line}")
    for page in PAGES
    for line, cmd in shell_commands(page)
]


def test_the_docs_show_commands() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("command", CASES)
def test_documented_command_parses(command: str) -> None:
    args = build_parser().parse_args(shlex.split(command)[1:])
    assert callable(args.handler)
