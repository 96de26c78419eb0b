"""Standalone export, inspection through .lower() with specs, and tracebacks into generated code."""
from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
import textwrap
import traceback
from pathlib import Path

import numpy as np
import pytest

import symgrad as sg
from symgrad.cli import export

# symgrad (and SymPy, jinja2) made unimportable: what a user of the exported module has.
WITHOUT_SYMGRAD = "import sys\nfor name in ('symgrad', 'sympy', 'jinja2'):\n" \
                  "    sys.modules[name] = None\n"


def loss(x, y, w, b):
    z = x @ w + b
    return np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))


def squared(inp, power):
    return ((inp + 1) ** power).T


SPECS = ["f64[4,5]", "f64[4,3]", "f64[5,3]", "f64[3]"]


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path / "cache"))


def _inputs():
    rng = np.random.default_rng(7)
    return (rng.normal(size=(4, 5)), (rng.random((4, 3)) > 0.5).astype(float),
            rng.normal(size=(5, 3)), rng.normal(size=3))


def _run_without_symgrad(directory: Path, code: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-c", WITHOUT_SYMGRAD + code], cwd=directory,
                          capture_output=True, text=True, env=env, timeout=120)


def test_exported_module_runs_with_numpy_alone(tmp_path):
    compiled = sg.value_and_grad(loss, wrt=("w", "b"))
    exported = export.export(compiled, SPECS, tmp_path / "out")
    assert exported.module == tmp_path / "out" / "loss_value_and_grad.py"
    args = _inputs()
    np.savez(tmp_path / "out" / "inputs.npz", *args)
    code = textwrap.dedent("""
        import json
        import numpy as np
        from loss_value_and_grad import loss_value_and_grad
        data = np.load("inputs.npz")
        value, (gw, gb) = loss_value_and_grad(*[data[f"arr_{i}"] for i in range(4)])
        print(json.dumps([float(value), gw.tolist(), gb.tolist(),
                          sorted(m for m in sys.modules if m.split(".")[0] in
                                 ("symgrad", "sympy", "jinja2") and sys.modules[m])]))
    """)
    result = _run_without_symgrad(tmp_path / "out", code)
    assert result.returncode == 0, result.stderr
    value, gw, gb, leaked = json.loads(result.stdout)
    expected_value, (expected_gw, expected_gb) = compiled(*args)
    assert value == float(expected_value) and leaked == []
    np.testing.assert_array_equal(gw, expected_gw)
    np.testing.assert_array_equal(gb, expected_gb)


def test_exported_function_keeps_the_user_signature(tmp_path):
    exported = export.export(sg.CompiledFunction(squared, "vjp", wrt="inp"), ["f64[2,3]", 3], tmp_path)
    namespace: dict = {}
    exec(compile(exported.module.read_text(), str(exported.module), "exec"), namespace)
    function = namespace[exported.function]
    assert exported.function == "squared_vjp"
    assert list(inspect.signature(function).parameters) == ["inp", "power", "cotangent"]
    inp, cotangent = np.ones((2, 3)), np.full((3, 2), 0.5)
    value, grad = function(inp, 3, cotangent)
    np.testing.assert_array_equal(value, np.full((3, 2), 8.0))
    np.testing.assert_array_equal(grad, np.full((2, 3), 6.0))


@pytest.mark.parametrize("kind, specs", [
    ("value_and_grad", SPECS),
    ("grad", ["f32[4,5]", "f32[4,3]", "f32[5,3]", "f32[3]"]),
    ("vjp", ["f64[2,3]", 2]),
])
def test_exported_pytest_file_passes_and_can_fail(tmp_path, kind, specs):
    fn = squared if kind == "vjp" else loss
    wrt = "inp" if kind == "vjp" else ("w", "b")
    exported = export.export(sg.CompiledFunction(fn, kind, wrt=wrt), specs, tmp_path / "out", test=True)
    assert exported.test is not None and exported.test.name.startswith("test_")
    assert (exported.forward is not None) == (kind == "grad")
    run = f"import pytest\nsys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', " \
          f"{exported.test.name!r}]))"
    result = _run_without_symgrad(tmp_path / "out", run)
    assert result.returncode == 0, result.stdout + result.stderr
    # A wrong derivative (scaled by 1.1) must make the exported test fail.
    source = exported.module.read_text()
    returns = source.rstrip().splitlines()[-1]
    assert returns.lstrip().startswith("return ")
    broken = source.rstrip()[: -len(returns)] + returns.replace("return ", "return _scale((") \
        + "))\n\n\ndef _scale(result):\n    value, grads = (None, result) if " \
          f"{kind == 'grad'} else result\n    grads = tuple(g * 1.1 for g in grads) if " \
          "isinstance(grads, tuple) else grads * 1.1\n    return grads if value is None " \
          "else (value, grads)\n"
    exported.module.write_text(broken)
    result = _run_without_symgrad(tmp_path / "out", run)
    assert result.returncode != 0 and "central difference" in result.stdout


def test_lower_accepts_specs_and_gives_every_stage():
    compiled = sg.value_and_grad(loss, wrt=("w", "b"))
    from_arrays = compiled.lower(*_inputs())
    from_strings = compiled.lower(*SPECS)
    from_specs = compiled.lower(*(sg.spec(s) for s in SPECS))
    assert from_arrays.source == from_strings.source == from_specs.source
    lowered = from_specs
    assert lowered.path is not None and lowered.path.read_text() == lowered.source
    assert lowered.signature == "x=f64[4,5], y=f64[4,3], w=f64[5,3], b=f64[3]"
    assert "matmul x w" in lowered.graph.pretty()
    assert "softplus" in " ".join(lowered.rewrites)
    assert set(lowered.op_counts) >= {"before_cse", "after_cse"}
    assert "w_bar" in lowered.pretty() and r"\operatorname{sigmoid}" in lowered.latex()
    assert "ew expr" in lowered.derivative_graph
    assert callable(lowered.function) and lowered.function.__name__ == "loss_value_and_grad"
    with pytest.raises(sg.ArgumentError, match="specs describe arguments for .lower"):
        compiled(sg.spec("f64[4,5]"), *_inputs()[1:])
    with pytest.raises(sg.ArgumentError, match="bad signature 'f64\\[4,5'"):
        compiled.lower("f64[4,5", *SPECS[1:])


def test_lower_from_a_warm_cache_derives_the_math_on_demand():
    first = sg.value_and_grad(loss, wrt=("w", "b")).lower(*SPECS)
    again = sg.value_and_grad(loss, wrt=("w", "b")).lower(*SPECS)
    assert again.from_cache and again.source == first.source
    assert again.pretty() == first.pretty() and again.rewrites == first.rewrites


def test_error_inside_generated_code_points_at_its_real_line(tmp_path):
    module = tmp_path / "user_model.py"
    module.write_text("import numpy as np\n\n\ndef f(x):\n    y = x * 3\n"
                      "    return np.sum(np.log(y))\n")
    namespace: dict = {}
    exec(compile(module.read_text(), str(module), "exec"), namespace)
    g = sg.grad(namespace["f"])
    g(np.ones(3))  # compiled and cached
    lowered = g.lower(np.ones(3))
    with np.errstate(divide="raise"), pytest.raises(FloatingPointError) as caught:
        g(np.zeros(3))
    frame = traceback.extract_tb(caught.value.__traceback__)[-1]
    assert frame.filename == str(lowered.path)
    lines = lowered.source.splitlines()
    assert frame.line == lines[frame.lineno - 1].strip() and "1/y" in frame.line  # y_bar
    comment = next(line for line in reversed(lines[: frame.lineno - 1])
                   if line.strip().startswith("#"))
    match = re.search(r"# user_model\.py:(\d+)  (.+)$", comment)
    assert match, comment  # the comment quotes the user's line that the statement came from
    assert module.read_text().splitlines()[int(match[1]) - 1].strip() == match[2]
