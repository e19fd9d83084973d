"""The import graph of `server/`, `translation/` and `media/`, read from the source (ast; nothing
is imported): no cycle between packages, and the engines know nothing of the server.

A node of the graph is a subpackage (`server.cluster`, `translation.engines`: every module in
it) or a module directly in a top package (`server.app`, `server.tokens`, `translation.service`).
Every import counts: module level, inside a function, under `TYPE_CHECKING`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("server", "translation", "media")
ENGINE_PACKAGES = ("translation", "media")
NOT_FOR_ENGINES = ("server", "socketio", "redis")

Edges = dict[str, set[tuple[str, str]]]  # node -> {(imported node, "module -> module")}


def module_files(packages: Iterable[str] = PACKAGES) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the packages."""
    found = {}
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def imported_names(module: str, path: Path) -> set[str]:
    """Every dotted name an import statement of the file names (a `from x import y` names both
    `x` and `x.y`, which may be a submodule)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def node_of(module: str, files: dict[str, Path]) -> str:
    """The graph node a module belongs to: its subpackage, or itself when it sits directly in a
    top package (or is one)."""
    parts = module.split(".")
    if len(parts) >= 2 and (ROOT / parts[0] / parts[1]).is_dir():
        return ".".join(parts[:2])
    return module


def package_edges(files: dict[str, Path]) -> Edges:
    """Node -> the nodes its modules import (with one module-level edge each, for the message)."""
    edges: Edges = {}
    for module, path in files.items():
        source = node_of(module, files)
        for name in imported_names(module, path):
            if name not in files or name == module:
                continue
            target = node_of(name, files)
            if target != source:
                edges.setdefault(source, set()).add((target, f"{module} -> {name}"))
    return edges


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_detector_finds_a_cycle_and_passes_a_chain() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_relative_and_submodule_imports_are_read(tmp_path: Path) -> None:
    package = tmp_path / "pkg" / "sub"
    package.mkdir(parents=True)
    source = package / "mod.py"
    source.write_text(
        "from . import sibling\nfrom ..other import thing\ndef f():\n    import server.app\n"
    )
    names = imported_names("pkg.sub.mod", source)
    assert {"pkg.sub.sibling", "pkg.other.thing", "server.app"} <= names


def test_no_cycle_between_packages() -> None:
    files = module_files()
    edges = package_edges(files)
    graph = {node: {target for target, _ in out} for node, out in edges.items()}
    found = cycles(graph)
    detail = [
        f"{' <-> '.join(component)}: "
        + "; ".join(
            why
            for node in component
            for target, why in sorted(edges.get(node, ()))
            if target in component
        )
        for component in found
    ]
    assert not found, "import cycles between packages:\n" + "\n".join(detail)


def test_engines_import_nothing_of_the_server() -> None:
    files = module_files()
    bad = [
        f"{module} imports {name}"
        for module, path in files.items()
        if module.split(".")[0] in ENGINE_PACKAGES
        for name in sorted(imported_names(module, path))
        if name.split(".")[0] in NOT_FOR_ENGINES
    ]
    assert not bad, "translation/ and media/ must not know the server, Socket.IO or Redis:\n" + (
        "\n".join(bad)
    )
