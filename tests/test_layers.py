"""The layers stay in order: read every module's imports (with ast, nothing is imported) and
check who may import whom, so a shortcut through a higher layer fails here instead of tangling
the code. From the bottom: errors, progress; config, folders; models, data; run (a run folder);
evaluation, inference; training, influence, data_influence; serving, report, cli."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "influrec"

# package (or top-level module) -> the influrec packages it may import besides itself
ALLOWED = {
    "errors": set(),
    "progress": set(),
    "config": {"errors"},
    "folders": {"errors"},
    "models": {"config", "errors"},
    "data": {"errors", "folders", "progress", "__init__"},
    "run": {"config", "errors", "folders", "models", "data", "__init__"},
}
# package -> packages it must never import (it sits below them, or beside them on purpose)
FORBIDDEN = {
    "evaluation": {"training", "influence", "data_influence", "serving", "cli", "report"},
    "inference": {"training", "evaluation", "influence", "serving", "cli", "report"},
    "influence": {"training", "data_influence", "serving", "cli", "report"},
    "data_influence": {"training", "influence", "serving", "cli", "report"},
    "training": {"influence", "data_influence", "serving", "cli", "report"},
    "serving": {"cli", "training", "report"},
    "report": {"cli", "training", "serving"},  # at the top, beside serving; only cli uses it
}
ADAPTERS = ("serving", "cli")  # import only public names of other packages


def imported_modules(path: Path) -> list[tuple[str, list[str]]]:
    """(dotted influrec module, names taken from it) for each import in ``path``;
    ``from influrec import run`` counts as importing the module ``influrec.run``."""
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [a.name for a in node.names]
            if node.module == "influrec":
                for name in names:
                    is_module = (SRC / f"{name}.py").exists() or (SRC / name).is_dir()
                    found.append((f"influrec.{name}", []) if is_module else ("influrec", [name]))
            elif node.module.startswith("influrec."):
                found.append((node.module, names))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names if a.name.startswith("influrec")]
    return found


def package_of(module: str) -> str:
    """``influrec.data.splits`` -> ``data``; ``influrec`` itself -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def influrec_imports(path: Path) -> set[str]:
    """The influrec packages (first name after ``influrec.``) that ``path`` imports."""
    return {package_of(module) for module, _ in imported_modules(path)}


def layer_of(path: Path) -> str:
    relative = path.relative_to(SRC)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def modules_of(layer: str) -> list[Path]:
    files = [p for p in SRC.rglob("*.py") if layer_of(p) == layer]
    assert files, f"no module of layer {layer!r}"
    return files


def package_graph() -> dict[str, set[str]]:
    """package -> the other packages it imports (the package ``__init__`` left out: it is the
    library's front door and may re-export from anywhere)."""
    graph: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        layer = layer_of(path)
        if layer != "__init__":
            graph.setdefault(layer, set()).update(influrec_imports(path) - {layer, "__init__"})
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of ``graph`` as [a, b, ..., a], or [] when there is none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str]:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], node, nxt] if nxt in path else [node, nxt]
            if nxt not in state and (cycle := visit(nxt, [*path, node])):
                return cycle
        state[node] = 2
        return []

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [])):
            return cycle
    return []


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_a_bottom_layer_imports_only_what_is_below_it(layer: str) -> None:
    wrong = {
        str(p.relative_to(SRC)): sorted(influrec_imports(p) - ALLOWED[layer] - {layer})
        for p in modules_of(layer)
    }
    assert not {k: v for k, v in wrong.items() if v}, wrong


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_never_imports_those_above_or_beside_it(layer: str) -> None:
    wrong = {
        str(p.relative_to(SRC)): sorted(influrec_imports(p) & FORBIDDEN[layer])
        for p in modules_of(layer)
    }
    assert not {k: v for k, v in wrong.items() if v}, wrong


@pytest.mark.parametrize("layer", ADAPTERS)
def test_adapters_import_only_public_names(layer: str) -> None:
    def private(name: str) -> bool:
        return name.startswith("_") and not name.startswith("__")

    wrong = [
        f"{p.relative_to(SRC)}: {module} {names}"
        for p in modules_of(layer)
        for module, names in imported_modules(p)
        if package_of(module) != layer
        and (any(private(part) for part in module.split(".")) or any(map(private, names)))
    ]
    assert not wrong, wrong


def test_only_the_cli_imports_the_report() -> None:
    users = sorted(
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        if "report" in influrec_imports(p) and layer_of(p) not in ("report", "cli")
    )
    assert users == [], users


def test_packages_import_each_other_without_cycles() -> None:
    graph = package_graph()
    assert {"data", "models", "run", "training", "influence", "serving", "report", "cli"} <= set(
        graph
    )
    assert find_cycle(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_the_import_reader_sees_a_violation(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from influrec.training.loop import train\nimport influrec.serving.app\n"
        "from influrec import __version__\nfrom influrec.data import schema\n"
        "from influrec import run as run_folder\nfrom influrec.influence.engine import _private\n"
    )
    expected = {"training", "serving", "__init__", "data", "run", "influence"}
    assert influrec_imports(module) == expected
    assert ("influrec.influence.engine", ["_private"]) in imported_modules(module)
