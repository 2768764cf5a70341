"""Packages meet only through their public surface: no module of one llmrec subpackage imports
a private module (``_name``) of another, and the subpackages' imports form no circle."""

from __future__ import annotations

import ast
from pathlib import Path

import llmrec

ROOT = Path(llmrec.__file__).parent


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(name: str, path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every ``import``/``from ... import`` in the file, functions
    included; ``from X import y`` also yields ``X.y`` (y may be a module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{a.name}") for a in node.names]
    return [(line, m) for line, m in found if m.startswith("llmrec.")]


def _subpackage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and not parts[1].startswith("_")) \
        else None


def test_no_cross_package_import_of_a_private_module():
    bad = set()
    for name, path in _modules().items():
        mine = _subpackage(name)
        for line, target in _imports(name, path):
            other = _subpackage(target)
            if other is None or other == mine:
                continue                      # llmrec._io and friends, or the same package
            parts = target.split(".")
            for i in range(2, len(parts)):
                if parts[i].startswith("_") and not parts[i].startswith("__"):
                    bad.add(f"{path.relative_to(ROOT.parent)}:{line}: imports "
                            f"{'.'.join(parts[:i + 1])}")
                    break
    assert not bad, "private names reached across packages:\n" + "\n".join(sorted(bad))


def test_no_import_circle_between_modules():
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = set()
        for _, target in _imports(name, path):
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                deps.add(target)
        graph[name] = deps
    # Tarjan's strongly connected components; a package __init__ re-exporting its own modules
    # is not a circle (the package imports its parts, the parts never import the package)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    import sys
    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    assert not circles, "import circles: " + "; ".join(" <-> ".join(c) for c in circles)
