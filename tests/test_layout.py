"""The layout's rules, checked: stage folders with no import cycle, no module over ~500 lines,
and a cache key that sees every source file, in every folder."""
from __future__ import annotations

import importlib.util
import shutil
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
