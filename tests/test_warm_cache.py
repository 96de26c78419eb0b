"""A warm disk cache serves a new process without importing SymPy or jinja2."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import symgrad as sg

    def loss(x, y, w, b):
        z = x @ w + b
        return np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))

    rng = np.random.default_rng(0)
    args = np.ones(5), np.zeros(3), rng.normal(size=(5, 3)), rng.normal(size=3)
    value, (gw, gb) = sg.value_and_grad(loss, wrt=("w", "b"))(*args)
    print(repr(float(value)), "sympy" in sys.modules, "jinja2" in sys.modules)
""")


def _run(tmp_path):
    script = tmp_path / "model.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "SYMGRAD_CACHE_DIR": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_warm_cache_skips_sympy_and_jinja(tmp_path):
    cold_value, cold_sympy, cold_jinja = _run(tmp_path)
    assert (cold_sympy, cold_jinja) == ("True", "True")
    warm_value, warm_sympy, warm_jinja = _run(tmp_path)
    assert (warm_sympy, warm_jinja) == ("False", "False")
    assert warm_value == cold_value


def test_changed_closure_constant_gives_new_key(tmp_path):
    import numpy as np

    import symgrad as sg

    scale = 2.0

    def f(x):
        return np.sum(x * scale)

    g = sg.grad(f)
    np.testing.assert_array_equal(g(np.ones(2)), [2.0, 2.0])
    scale = 3.0
    # A new compiled function over the same Python function sees the new closure value.
    np.testing.assert_array_equal(sg.grad(f)(np.ones(2)), [3.0, 3.0])
