"""The cache key is computed from named components, and a miss says which one differed."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

import symgrad as sg
from symgrad.cache import COMPONENTS, installed_version, key_parts, toolchain_components
from symgrad.specs import ArgSpec
from symgrad.trace import trace_function

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path / "cache"))


def test_versions_read_without_importing_the_packages():
    assert installed_version("sympy") == metadata.version("sympy")
    assert installed_version("jinja2") == metadata.version("jinja2")
    parts = toolchain_components()
    assert parts["numpy"] == np.__version__ and parts["symgrad"] == sg.__version__
    assert len(parts["templates"]) == len(parts["symgrad_source"]) == 64


def _parts(fn, shapes, transform="grad"):
    specs = [ArgSpec(f"a{i}", shape, "float64") for i, shape in enumerate(shapes)]
    graph, _ = trace_function(fn, specs)
    return key_parts(graph, transform, "numpy")


def test_each_component_changes_the_key():
    scale = 2.0

    def f(x):
        return np.sum(x * scale)

    base = _parts(f, [(3,)])
    scale = 3.0
    closure = _parts(f, [(3,)])
    assert "constants" in base.differences(closure.components)
    assert base.key != closure.key
    scale = 2.0
    assert _parts(f, [(3,)]).key == base.key  # same value, same key

    shape = _parts(f, [(4,)])
    assert base.differences(shape.components)[0] == "inputs"
    other = _parts(f, [(3,)], transform="value_and_grad")
    assert base.differences(other.components) == ["transform"]
    for name in COMPONENTS:
        changed = dict(base.components, **{name: "something else"})
        assert type(base)(changed).key != base.key, name


def test_global_value_change_gives_new_key(tmp_path):
    module = tmp_path / "model_with_global.py"
    module.write_text("import numpy as np\nFACTOR = 2.0\n\ndef f(x):\n"
                      "    return np.sum(np.exp(x) * FACTOR)\n")
    sys.path.insert(0, str(tmp_path))
    try:
        import model_with_global as m

        x = np.zeros(2)
        np.testing.assert_array_equal(sg.grad(m.f)(x), [2.0, 2.0])
        m.FACTOR = 5.0
        # A compiled function traces once per signature (like jax.jit); a new one sees 5.0 ...
        g = sg.grad(m.f)
        assert "constants" in g.explain_miss(x)
        np.testing.assert_array_equal(g(x), [5.0, 5.0])
        assert g.explain_miss(x).startswith("hit")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("model_with_global", None)


def test_explain_miss_names_the_differing_component():
    def loss(x, w):
        return np.sum(np.tanh(x @ w))

    g = sg.value_and_grad(loss, wrt="w")
    x, w = np.ones((2, 3)), np.ones((3, 4))
    assert g.explain_miss(x, w).startswith("miss: no entry of ")
    g(x, w)
    assert g.explain_miss(x, w).startswith("hit: entry ")
    assert "already loaded in this process" in g.explain_miss(x, w)
    why = g.explain_miss("f64[5,3]", sg.spec("f64[3,4]"))
    assert why.startswith("miss: the nearest entry of ")
    # One real difference, in user terms (not also the operations the new shape changed).
    assert why.splitlines()[1:] == ["  argument x: its shape or dtype: was f64[2,3], now f64[5,3]"]
    why = sg.value_and_grad(loss, wrt="x").explain_miss(x, w)
    assert why.splitlines()[1:] == ["  transform: what is differentiated (the transform or wrt): "
                                    "was value_and_grad, wrt=(w), now value_and_grad, wrt=(x)"]
    assert "Transform(" not in why


def test_unchanged_function_in_a_new_process_hits(tmp_path):
    script = tmp_path / "model.py"
    script.write_text(textwrap.dedent("""
        import sys
        import numpy as np
        import symgrad as sg

        def loss(x, w):
            return np.mean(np.logaddexp(0, x @ w))

        g = sg.value_and_grad(loss, wrt="w")
        args = np.ones((4, 3)), np.linspace(-1, 1, 6).reshape(3, 2)
        before = g.explain_miss(*args).split(":")[0]
        low = g.lower(*args)
        print(before, low.from_cache, "sympy" in sys.modules, "jinja2" in sys.modules,
              "importlib.metadata" in sys.modules)
    """))
    env = {**os.environ, "SYMGRAD_CACHE_DIR": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO),
                                                       os.environ.get("PYTHONPATH")]))}

    def run():
        result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                                env=env, timeout=120)
        assert result.returncode == 0, result.stderr
        return result.stdout.split()

    assert run() == ["miss", "False", "True", "True", "False"]
    assert run() == ["hit", "True", "False", "False", "False"]


def test_source_digest_covers_modules_in_subfolders(tmp_path):
    from symgrad.cache import key

    (tmp_path / "stage").mkdir()
    (tmp_path / "top.py").write_text("A = 1\n")
    (tmp_path / "stage" / "inner.py").write_text("B = 1\n")
    before = key._digest_files([tmp_path], (".py",))
    (tmp_path / "stage" / "inner.py").write_text("B = 2\n")
    edited = key._digest_files([tmp_path], (".py",))
    (tmp_path / "stage" / "inner.py").rename(tmp_path / "inner.py")
    (tmp_path / "inner.py").write_text("B = 2\n")
    moved = key._digest_files([tmp_path], (".py",))
    assert len({before, edited, moved}) == 3
