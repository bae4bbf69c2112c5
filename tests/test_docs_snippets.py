"""Every ```python block of the README and docs/ runs, so the worked examples cannot rot.

The blocks of a page run in order, in one namespace, in a temporary folder that holds
``demo-output/`` (a tiny demo: dataset and trained run, laid out as ``influrec demo`` writes
them) and, beside it, ``../shared`` linked to the real ``../shared`` when that exists. A block
that needs files the test cannot provide says so on the line before its fence::

    <!-- needs: ../shared/datasets/ml-100k/u.data runs/ml-100k -->

When one of them is absent, only the block's imports run (a renamed import still fails).
"""

from __future__ import annotations

import ast
import re
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest

from influrec import SynthConfig, load_config, run_pipeline

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NEEDS = re.compile(r"<!--\s*needs:\s*(.*?)\s*-->")
TINY = ["model.d_model=16", "model.layers=1", "model.max_len=8", "train.epochs=1"]


@dataclass(frozen=True)
class Snippet:
    page: Path
    line: int  # of the block's first line of code (1-based)
    code: str
    needs: tuple[str, ...]  # paths (relative to where it runs) it needs


def python_snippets(page: Path) -> list[Snippet]:
    """The page's ```python blocks, in order, with what the line before each says it needs."""
    lines = page.read_text().splitlines()
    found, i = [], 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
            marker = NEEDS.search(lines[i - 1]) if i else None
            needs = tuple(marker.group(1).split()) if marker else ()
            found.append(Snippet(page, i + 2, "\n".join(lines[i + 1 : end]) + "\n", needs))
            i = end
        i += 1
    return found


def imports_only(code: str) -> str:
    """The top-level import statements of ``code``."""
    body = [n for n in ast.parse(code).body if isinstance(n, ast.Import | ast.ImportFrom)]
    return ast.unparse(ast.Module(body=body, type_ignores=[]))


def run_snippet(snippet: Snippet, namespace: dict[str, object]) -> bool:
    """Run the block (its line numbers as on the page); False when it ran imports only."""
    missing = [p for p in snippet.needs if not Path(p).exists()]
    code = imports_only(snippet.code) if missing else snippet.code
    padded = "\n" * (snippet.line - 1) + code  # tracebacks name the page's own lines
    exec(compile(padded, str(snippet.page.relative_to(ROOT)), "exec"), namespace)
    return not missing


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a tiny demo-output/ (as `influrec demo` lays it out) and ../shared."""
    root = tmp_path_factory.mktemp("docs")
    if (ROOT.parent / "shared").is_dir():
        (root / "shared").symlink_to(ROOT.parent / "shared")
    work = root / "work"
    config = load_config(None, TINY)
    run_pipeline(SynthConfig(n_users=60, n_items=40), work / "demo-output", config=config)
    return work


PAGES_WITH_CODE = [p for p in PAGES if python_snippets(p)]


def test_the_docs_show_python() -> None:
    names = {p.name for p in PAGES_WITH_CODE}
    assert {"README.md", "python-api.md", "data.md"} <= names
    runnable = [s for s in python_snippets(ROOT / "docs" / "python-api.md") if not s.needs]
    assert len(runnable) >= 4  # the API page's examples always run in full


@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=lambda p: p.name)
def test_every_python_block_of_the_page_runs(
    page: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(workdir)
    namespace: dict[str, object] = {"__name__": f"docs:{page.name}"}
    ran = [run_snippet(s, namespace) for s in python_snippets(page)]
    assert any(ran) or all(s.needs for s in python_snippets(page))


def test_the_reader_finds_blocks_and_what_they_need(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "text\n```python\nx = 1\n```\n<!-- needs: a/b.csv runs/x -->\n```python\n"
        "import os\nfrom influrec import nothing_like_this\ny = x + 1\n```\n```bash\nls\n```\n"
    )
    first, second = python_snippets(page)
    assert (first.line, first.code, first.needs) == (3, "x = 1\n", ())
    assert second.line == 7 and second.needs == ("a/b.csv", "runs/x")
    assert imports_only(second.code) == "import os\nfrom influrec import nothing_like_this"


def test_a_block_with_missing_needs_still_runs_its_imports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    ok = Snippet(
        ROOT / "README.md", 5, "import json\nvalue = json.loads(open('absent'))\n", ("absent",)
    )
    namespace: dict[str, object] = {}
    assert run_snippet(ok, namespace) is False and "json" in namespace and "value" not in namespace
    bad = Snippet(ROOT / "README.md", 5, "from influrec import nothing_like_this\n", ("absent",))
    with pytest.raises(ImportError, match="nothing_like_this"):
        run_snippet(bad, {})


def test_a_failing_block_names_its_line_on_the_page() -> None:
    broken = Snippet(ROOT / "docs" / "python-api.md", 40, "x = 1\nraise ValueError('here')\n", ())
    with pytest.raises(ValueError, match="here") as caught:
        run_snippet(broken, {})
    where = traceback.extract_tb(caught.value.__traceback__)[-1]
    assert (where.filename, where.lineno) == ("docs/python-api.md", 41)
