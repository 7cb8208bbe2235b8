"""The package's shape: no import circles inside persona_index/.

Every import counts, function-level ones too (they run when the function
does), except those under ``if TYPE_CHECKING:``. ``from . import x`` means
module x when x is a module; importing ``pkg.sub`` also imports ``pkg``'s
``__init__`` unless ``pkg`` is a package the importing module lives in (its
``__init__`` has already started running by then, so no new import happens).
"""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "persona_index"


def _modules(root: Path = PKG) -> dict[str, Path]:
    out = {}
    for p in root.rglob("*.py"):
        parts = list(p.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    """Import nodes anywhere in the tree, skipping ``if TYPE_CHECKING`` bodies."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def import_graph(root: Path = PKG) -> dict[str, set[str]]:
    """Module -> the package modules it imports (as defined in the docstring)."""
    mods = _modules(root)
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        is_pkg = path.name == "__init__.py"
        here = name if is_pkg else name.rpartition(".")[0]  # the package relative imports start in
        ancestors = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
        if is_pkg:
            ancestors.add(name)
        targets = set()
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                wanted = [a.name for a in node.names]
            else:
                if node.level:
                    base = here.split(".")
                    base = base[:len(base) - (node.level - 1)]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                wanted = [mod] + [f"{mod}.{a.name}" for a in node.names]
            for w in wanted:
                if w not in mods:
                    continue
                parts = w.split(".")
                for i in range(1, len(parts) + 1):  # the module and each package above it
                    m = ".".join(parts[:i])
                    if m in mods and m not in ancestors:
                        targets.add(m)
        targets.discard(name)
        graph[name] = targets
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_reader_sees_function_level_and_package_imports(tmp_path):
    """The reader itself, on a planted package: a circle made only by a
    function-level import, one through a subpackage's __init__, and one under
    TYPE_CHECKING (which does not count)."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from .b import g\n")
    (pkg / "b.py").write_text("from . import a\n")
    (pkg / "sub" / "__init__.py").write_text("from .x import y\n")
    (pkg / "sub" / "x.py").write_text("y = 1\n")
    (pkg / "c.py").write_text("from .sub.x import y\n")
    (pkg / "sub" / "z.py").write_text("from ..c import q\n")
    (pkg / "d.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .e import t\n")
    (pkg / "e.py").write_text("from .d import s\n")
    g = import_graph(pkg)
    assert g["pkg.c"] == {"pkg.sub", "pkg.sub.x"}  # the subpackage's __init__ counts
    assert g["pkg.sub.z"] == {"pkg.c"}  # its own packages do not
    assert g["pkg.d"] == set()
    assert circles(g) == [["pkg.a", "pkg.b"]]
    (pkg / "sub" / "__init__.py").write_text("from .x import y\nfrom .z import w\n")
    assert ["pkg.c", "pkg.sub", "pkg.sub.z"] in circles(import_graph(pkg))


def test_no_import_circles_inside_the_package():
    found = circles(import_graph())
    assert found == [], f"import circles: {found}"
