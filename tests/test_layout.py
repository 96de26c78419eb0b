"""The layout's rules, checked: stage folders with no import cycle, no module over ~500 lines,
a cache key that sees every source file, in every folder, and tests that import symgrad only
through its public internal entry points."""
from __future__ import annotations

import ast
import importlib
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import symgrad
from symgrad.cache import key

PACKAGE = Path(symgrad.__file__).resolve().parent
ROOT = PACKAGE.parent


def _imports_tool():
    spec = importlib.util.spec_from_file_location("imports_tool", ROOT / "tools" / "imports.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_import_cycles():
    tool = _imports_tool()
    edges = tool.graph()
    assert len(edges) > 80 and "symgrad.ir.ops" in edges
    assert tool.cycles(edges) == []


def test_no_module_over_500_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 500}
    assert not long, long


def test_the_key_digests_every_module_of_every_stage_folder(tmp_path):
    assert key._PACKAGE_DIR == PACKAGE
    copy = tmp_path / "symgrad"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = key._digest_files([copy], (".py",))
    assert before == key._digest_files([PACKAGE], (".py",))
    ops = copy / "ir" / "ops.py"
    ops.write_text(ops.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    assert key._digest_files([copy], (".py",)) != before


# The public internal entry points: `symgrad` itself and one per stage. A test imports only
# these, and from each only the names of its `__all__` (or an entry point below it); what is
# inside a stage can move without touching the tests.
ENTRY_POINTS = ("symgrad", "symgrad.errors", "symgrad.specs", "symgrad.trace", "symgrad.ir",
                "symgrad.autodiff", "symgrad.symbolic", "symgrad.schedule", "symgrad.backends",
                "symgrad.backends.numpy", "symgrad.backends.c", "symgrad.backends.cuda",
                "symgrad.cache", "symgrad.transforms", "symgrad.tools", "symgrad.cli",
                "symgrad.distributed")
TESTS = Path(__file__).resolve().parent


def _symgrad_imports(tree: ast.AST) -> list[tuple[int, str, list[str]]]:
    """(line, module, imported names) of each symgrad import in `tree`, and in the code of its
    strings (the scripts a test runs in a subprocess; not the examples given to the rule)."""
    examples = {id(arg) for node in ast.walk(tree) if isinstance(node, ast.Call)
                and getattr(node.func, "id", "") == "_outside_entry_points" for arg in node.args}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and \
                (node.module or "").split(".")[0] == "symgrad":
            found.append((node.lineno, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name, []) for a in node.names
                      if a.name.split(".")[0] == "symgrad"]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                "symgrad" in node.value and id(node) not in examples:
            try:
                inner = ast.parse(node.value)
            except SyntaxError:
                continue
            found += [(node.lineno, module, names) for _, module, names in _symgrad_imports(inner)]
    return found


def _outside_entry_points(source: str) -> list[str]:
    """The imports of `source` that reach past symgrad's entry points."""
    bad = []
    for line, module, names in _symgrad_imports(ast.parse(source)):
        if module not in ENTRY_POINTS:
            bad.append(f"{line}: {module} is not an entry point")
            continue
        offered = importlib.import_module(module).__all__
        bad += [f"{line}: {module} does not offer {name}" for name in names
                if name not in offered and f"{module}.{name}" not in ENTRY_POINTS
                and not (name.startswith("__") and name.endswith("__"))]
    return bad


def test_tests_import_only_the_entry_points():
    """So do the benchmarks, the repository's tools and the examples."""
    files = [*TESTS.glob("*.py"), *(p for folder in ("benchmarks", "tools", "examples")
                                    for p in (ROOT / folder).rglob("*.py"))]
    assert len(files) > 80
    bad = {str(path.relative_to(ROOT)): found for path in sorted(files)
           if (found := _outside_entry_points(path.read_text(encoding="utf-8")))}
    assert not bad, f"import these through {ENTRY_POINTS}: {bad}"


def test_the_entry_point_rule_sees_each_way_past_it():
    assert _outside_entry_points("from symgrad.ir import OPS\nimport symgrad as sg\n") == []
    assert _outside_entry_points("from symgrad.ir.ops import OPS") == [
        "1: symgrad.ir.ops is not an entry point"]
    assert _outside_entry_points("def f():\n    import symgrad.backends.numpy.printer\n") == [
        "2: symgrad.backends.numpy.printer is not an entry point"]
    assert _outside_entry_points("from symgrad.ir import Builder") == [
        "1: symgrad.ir does not offer Builder"]
    assert _outside_entry_points("from symgrad.backends import cuda, numpy") == []
    assert _outside_entry_points(
        'CODE = "import sys; from symgrad.cache.store import DiskCache"') == [
        "1: symgrad.cache.store is not an entry point"]


def test_each_entry_point_states_and_offers_its_names():
    for module_name in ENTRY_POINTS:
        module = importlib.import_module(module_name)
        assert module.__all__ and len(set(module.__all__)) == len(module.__all__), module_name
        for name in module.__all__:
            assert getattr(module, name) is not None, (module_name, name)
            if hasattr(module, "__path__") and module_name != "symgrad":
                assert f"`{name}" in module.__doc__, f"{module_name}'s docstring omits {name}"


def test_importing_the_entry_points_imports_no_sympy():
    code = (f"import sys; import {', '.join(ENTRY_POINTS)}; "
            "print(sorted({'sympy', 'jinja2', 'dask'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[]"]


def test_the_shared_stages_know_no_backend():
    """Tracing, the graph, derivatives, SymPy and the schedule are every backend's: nothing in
    them imports a backend (a backend's choices live behind its own folder)."""
    edges = _imports_tool().graph()
    shared = ("symgrad.trace", "symgrad.ir", "symgrad.autodiff", "symgrad.symbolic",
              "symgrad.schedule")
    modules = [m for m in edges if m.startswith(shared)]
    assert len(modules) > 40 and "symgrad.schedule.schedule" in modules
    into_backends = sorted((m, t) for m in modules for t, _ in edges[m]
                           if t.startswith("symgrad.backends"))
    assert into_backends == []
