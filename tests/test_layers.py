"""Imports run only downward, and no modules import each other (ARCHITECTURE.md).

Every ``import``/``from`` inside the package is read from the source (function-level imports
included: a lazy import is still a dependency). A module may import its own layer and the layers
below; the import graph between modules has no cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "whipstudio_nb"

# Lowest first. A module belongs to the first entry that is it or a package above it.
LAYERS: list[tuple[str, ...]] = [
    ("_version", "errors", "config", "models", "series", "working_copy", "episode_file"),
    ("sandbox",),
    ("tasks",),
    ("grading",),
    ("tools",),
    ("turns", "env"),
    # front ends
    ("agent",),
    ("notebook", "course", "server", "demo", "cli", "__init__"),
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts) or "__init__"


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(name: str, path: Path, known: set[str], *, raw: bool = False) -> set[str]:
    """The package modules ``name`` imports (``from . import x`` names submodule x); with
    ``raw``, every target as written, whether it exists or not."""
    if name == "__init__":
        pkg = ""
    else:
        pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".") if pkg else []
                base = base[: len(base) - node.level + 1] if node.level > 1 else base
                target = ".".join([*base, node.module] if node.module else base)
            elif (node.module or "").startswith("whipstudio_nb"):
                target = (node.module or "").removeprefix("whipstudio_nb").lstrip(".")
            else:
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}" if target else alias.name
                out.add(sub if sub in known else (target or "__init__"))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("whipstudio_nb"):
                    mod = alias.name.removeprefix("whipstudio_nb").lstrip(".") or "__init__"
                    out.add(mod)
    out.discard(name)
    return out if raw else {m for m in out if m in known}


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node except those under ``if TYPE_CHECKING:`` (annotations only, never run)."""
    out: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                todo.extend(child.orelse)
                continue
            todo.append(child)
    return out


def _layer(name: str) -> int:
    for rank, prefixes in enumerate(LAYERS):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return rank
    raise AssertionError(f"module {name} is in no layer: add it to LAYERS")


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {name: _imports(name, path, set(mods)) for name, path in mods.items()}


def test_imports_only_go_down() -> None:
    upward = [
        f"{m} (layer {_layer(m)}) imports {d} (layer {_layer(d)})"
        for m, deps in sorted(_graph().items())
        for d in sorted(deps)
        if _layer(d) > _layer(m)
    ]
    assert not upward, "\n".join(upward)


def test_no_import_cycles() -> None:
    graph = _graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if dep.startswith(node + ".") and node in {m.rpartition(".")[0] for m in graph}:
                continue  # a package's __init__ re-exporting its own submodules
            if state.get(dep) == 1:
                cycles.append([*path[path.index(dep) :], dep] if dep in path else [node, dep])
            elif dep not in state:
                visit(dep, [*path, dep])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_every_internal_import_resolves() -> None:
    """A lazy import of a module that moved fails only when its function runs: catch it here."""
    mods = _modules()
    known = set(mods)
    missing = [
        f"{name} imports {target}"
        for name, path in sorted(mods.items())
        for target in sorted(_imports(name, path, known, raw=True))
        if target not in known
    ]
    assert not missing, "\n".join(missing)


def test_the_check_sees_a_violation(tmp_path: Path) -> None:
    """The checker itself can fail: a base module importing the env is reported."""
    fake = tmp_path / "models.py"
    fake.write_text("from .env import WhipEnv\n")
    assert _imports("models", fake, {"models", "env"}) == {"env"}
    assert _layer("env") > _layer("models")
