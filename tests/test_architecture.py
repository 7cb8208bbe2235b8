"""The package's shape: no import circles inside persona_index/, and the
house size limits (issue #19): every module in persona_index/ and cli/ under
700 lines, every function there under 80 code lines.

Every import counts, function-level ones too (they run when the function
does), except those under ``if TYPE_CHECKING:``. ``from . import x`` means
module x when x is a module; importing ``pkg.sub`` also imports ``pkg``'s
``__init__`` unless ``pkg`` is a package the importing module lives in (its
``__init__`` has already started running by then, so no new import happens).
"""

from __future__ import annotations

import ast
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "persona_index"


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


# -- size limits -----------------------------------------------------------------
MODULE_LINES = 700  # a module has fewer lines than this
FUNCTION_CODE_LINES = 80  # a function has fewer code lines than this


def code_lines(source: str, node: ast.AST) -> int:
    """The code lines of a function: its lines that are neither blank nor a
    comment, less its docstring (nested functions count in their outer one)."""
    doc = set()
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        doc = set(range(body[0].lineno, body[0].end_lineno + 1))
    lines = source.splitlines()[node.lineno - 1:node.end_lineno]
    return sum(1 for n, line in enumerate(lines, node.lineno)
               if line.strip() and not line.strip().startswith("#") and n not in doc)


def oversized(roots=(ROOT / "persona_index", ROOT / "cli")) -> list[str]:
    """'path: N lines' for each module at or over MODULE_LINES and
    'path:function: N code lines' for each function at or over FUNCTION_CODE_LINES."""
    out = []
    for root in roots:
        for path in sorted(Path(root).rglob("*.py")):
            source = path.read_text(encoding="utf-8")
            name = path.relative_to(Path(root).parent).as_posix()
            n = len(source.splitlines())
            if n >= MODULE_LINES:
                out.append(f"{name}: {n} lines")
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    c = code_lines(source, node)
                    if c >= FUNCTION_CODE_LINES:
                        out.append(f"{name}:{node.name}: {c} code lines")
    return out


def test_the_size_reader_counts_code_lines_without_docstring_and_comments(tmp_path):
    """The counter itself, on planted modules: blank lines, comments and the
    docstring do not count; code lines of a nested function count in both."""
    body = "\n".join(f"    x{i} = {i}" for i in range(78))
    src = (f'def f():\n    """Doc\n    string."""\n\n    # a comment\n{body}\n'
           "    def g():\n        return 1\n")
    tree = ast.parse(src)
    f, g = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
    assert (f.name, code_lines(src, f)) == ("f", 1 + 78 + 2)  # def line, 78 lines, g
    assert code_lines(src, g) == 2
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "small.py").write_text("def h():\n    return 1\n")
    (pkg / "big.py").write_text(src + "\n" * (MODULE_LINES - src.count("\n")))
    assert oversized([pkg]) == ["pkg/big.py: 700 lines", "pkg/big.py:f: 81 code lines"]
    (pkg / "big.py").write_text(src.replace("    x76 = 76\n    x77 = 77\n", ""))
    assert oversized([pkg]) == []


def test_every_module_and_function_is_under_the_size_limits():
    found = oversized()
    assert found == [], f"over the house size limits (issue #19): {found}"
