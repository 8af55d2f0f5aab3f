"""The engine's imports: it never imports streamlit, and no module of catdnn/ imports one that imports
it back (directly or through others; imports inside functions count too)."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "catdnn"


def test_import_catdnn_does_not_import_streamlit():
    code = (
        "import sys, catdnn, catdnn.cli, catdnn.data, catdnn.train, catdnn.model_io, catdnn.images; "
        "import pkgutil, importlib; "
        "[importlib.import_module('catdnn.' + m.name) for m in pkgutil.iter_modules(catdnn.__path__) "
        " if m.name != '__main__']; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('streamlit', 'plotly', 'torch')); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def engine_imports(package: Path = PACKAGE) -> dict:
    """``{module: {catdnn modules it imports}}`` for every ``catdnn/*.py``, read with ``ast``: every
    ``import``/``from ... import`` anywhere in the file (functions included), relative or absolute;
    ``from . import x`` counts as importing ``x`` when ``x`` is a module of the package."""
    modules = {p.stem for p in package.glob("*.py")}
    graph = {}
    for path in sorted(package.glob("*.py")):
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    parts = alias.name.split(".")
                    if parts[0] == "catdnn" and len(parts) > 1:
                        deps.add(parts[1])
            elif isinstance(node, ast.ImportFrom):
                if node.level == 0 and not (node.module or "").startswith("catdnn"):
                    continue
                parts = (node.module or "").split(".")[0 if node.level else 1:]
                if parts and parts[0]:
                    deps.add(parts[0])
                else:  # from . import x, y (or from catdnn import x): the names may be modules
                    deps.update(alias.name for alias in node.names if alias.name in modules)
        graph[path.stem] = {d for d in deps if d in modules and d != path.stem} - {"__init__"}
    return graph


def find_cycle(graph: dict) -> list:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or [] when there is none (depth-first search)."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return []

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


def test_no_module_of_the_engine_imports_one_that_imports_it_back():
    graph = engine_imports()
    assert {"train", "solvers", "cnn", "arch", "config"} <= set(graph)
    cycle = find_cycle(graph)
    assert cycle == [], "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_sees_cycles_through_functions_and_packages(tmp_path):
    (tmp_path / "a.py").write_text("from .b import f\n")
    (tmp_path / "b.py").write_text("def f():\n    from . import c\n")
    (tmp_path / "c.py").write_text("import catdnn.a\n")
    (tmp_path / "d.py").write_text("from catdnn import a\n")
    graph = engine_imports(tmp_path)
    assert graph == {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    (tmp_path / "c.py").write_text("import numpy\n")
    assert find_cycle(engine_imports(tmp_path)) == []
