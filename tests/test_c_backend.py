"""backend="c" against the numpy backend: every elementwise case (broadcasting shapes), every
structural case, every zoo model (float64 to 1e-12 of the terms' magnitudes, float32 to its
own tolerance), the transforms; the same bits with 1 and 2 OpenMP threads; and one clear
error where there is no C compiler."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import symgrad as sg
from elementwise_cases import CASE_IDS, CASES as ELEMENTWISE, DOMAINS
from models_zoo import MODELS
from structural_cases import CASES as STRUCTURAL
from symgrad.backends.c import backend as c_backend
from symgrad.errors import ArgumentError, CompilerError

try:
    c_backend.toolchain()
    NO_COMPILER = None
except CompilerError as error:  # pragma: no cover - CI installs gcc
    NO_COMPILER = str(error)

needs_compiler = pytest.mark.skipif(NO_COMPILER is not None, reason=f"{NO_COMPILER}")


def assert_same(c_result, numpy_result, dtype=np.float64, path="result"):
    """Equal structure; arrays equal to 1e-12 (float64) of the larger of their own magnitude
    and the result's largest magnitude (what its terms were summed at), or float32's
    tolerance."""
    if isinstance(numpy_result, (tuple, list)):
        assert isinstance(c_result, (tuple, list)) and len(c_result) == len(numpy_result), path
        for k, (c, n) in enumerate(zip(c_result, numpy_result)):
            assert_same(c, n, dtype, f"{path}[{k}]")
        return
    c_array, n_array = np.asarray(c_result), np.asarray(numpy_result)
    assert c_array.shape == n_array.shape and c_array.dtype == n_array.dtype, (
        path, c_array.shape, n_array.shape, c_array.dtype, n_array.dtype)
    if n_array.dtype.kind != "f":
        np.testing.assert_array_equal(c_array, n_array, err_msg=path)
        return
    scale = np.max(np.abs(n_array[np.isfinite(n_array)]), initial=1.0)
    rtol, atol = (1e-12, 1e-12 * scale) if n_array.dtype == np.float64 else (2e-5, 2e-6 * scale)
    np.testing.assert_allclose(c_array, n_array, rtol=rtol, atol=atol, equal_nan=True,
                               err_msg=path)


def both(transform, fn, *args, **options):
    c = transform(fn, backend="c", **options)(*args)
    n = transform(fn, **options)(*args)
    return c, n


def _named(fn, arity):
    return {1: lambda a: fn(a), 2: lambda a, b: fn(a, b), 3: lambda a, b, c: fn(a, b, c)}[arity]


def _shapes(rng, arity):
    full = tuple(int(d) for d in rng.integers(2, 5, size=rng.integers(1, 4)))
    shapes = []
    for _ in range(arity):
        shape = [d if rng.random() < 0.6 else 1 for d in full]
        shapes.append(tuple(shape[rng.integers(0, len(full) + 1):]))
    return shapes


@needs_compiler
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", ELEMENTWISE, ids=CASE_IDS)
def test_elementwise_case_matches_numpy_backend(case, dtype):
    rng = np.random.default_rng([7, CASE_IDS.index(case.id)])
    shapes = _shapes(rng, case.arity)
    args = [DOMAINS[d](rng, s).astype(dtype) for d, s in zip(case.domains, shapes)]
    weights = rng.normal(size=np.broadcast_shapes(*shapes)).astype(dtype)
    loss = _named(lambda *a: np.sum(case.numpy(*a) * weights), case.arity)
    c, n = both(sg.value_and_grad, loss, *args, wrt=tuple(range(case.arity)))
    assert_same(c, n, dtype)


@needs_compiler
@pytest.mark.parametrize("case", STRUCTURAL, ids=[c.name for c in STRUCTURAL])
def test_structural_case_matches_numpy_backend(case):
    from symgrad.backends import C_NOT_YET

    args = case.make_args()
    try:
        c, n = both(sg.value_and_grad, case.f, *args, wrt=case.wrt)
    except sg.GeneratedCodeError as error:  # ops the C backend refuses, by name, for now
        refused = str(error).split("does not support ")[1].split(" yet")[0]
        assert refused in C_NOT_YET, str(error)
        return
    assert_same(c, n)


@needs_compiler
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("model", MODELS, ids=[m.name for m in MODELS])
def test_zoo_model_matches_numpy_backend(model, dtype):
    args = model.make_args(np.random.default_rng(20240611), dtype)
    c = sg.value_and_grad(model.numpy_fn, wrt=model.wrt, backend="c")(**args)
    n = sg.value_and_grad(model.numpy_fn, wrt=model.wrt)(**args)
    assert_same(c, n, dtype)


def _bce(x, y, w, b):
    z = x @ w + b
    return np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))


def _bce_args(n=300, d=7):
    rng = np.random.default_rng(3)
    return (rng.normal(size=(n, d)), (rng.random(n) > 0.5).astype(np.float64),
            rng.normal(size=d), np.asarray(0.2))


@needs_compiler
def test_transforms_and_compositions_match_numpy_backend():
    x, y, w, b = _bce_args()
    assert_same(*both(sg.jit, _bce, x, y, w, b))
    assert_same(*both(sg.grad, _bce, x, y, w, b, wrt=(2, 3)))
    c_out, c_pull = sg.vjp(lambda w: np.tanh(x @ w) * 2, w, backend="c")
    n_out, n_pull = sg.vjp(lambda w: np.tanh(x @ w) * 2, w)
    assert_same(c_out, n_out)
    assert_same(c_pull(y), n_pull(y))
    assert_same(sg.jvp(lambda w: np.sin(x @ w), (w,), (np.ones_like(w),), backend="c"),
                sg.jvp(lambda w: np.sin(x @ w), (w,), (np.ones_like(w),)))
    loss = lambda w: _bce(x, y, w, b)  # noqa: E731
    assert_same(sg.hvp(loss, backend="c")(w, np.arange(7.0)),
                sg.hvp(loss)(w, np.arange(7.0)))
    inner = sg.grad(loss, backend="c")
    assert_same(sg.grad(lambda w: np.sum(inner(w) ** 2), backend="c")(w),
                sg.grad(lambda w: np.sum(sg.grad(loss)(w) ** 2))(w))


@needs_compiler
def test_reductions_over_any_axes_and_strided_views():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(6, 5, 300))
    view = rng.normal(size=(300, 5))[::2].T  # not contiguous: copied before the kernel

    def f(x, v):
        return (np.sum(np.exp(np.sin(x)).max(axis=(0, 2))) + np.sum(np.min(x * 2, axis=1))
                + np.sum(np.cos(x).sum(axis=0) * v.T[None, :, :1].sum())
                + np.sum(np.tanh(v) ** 2))

    assert_same(*both(sg.value_and_grad, f, x, view, wrt=(0, 1)))


@needs_compiler
def test_large_elementwise_runs_fused_in_one_kernel_and_matches():
    rng = np.random.default_rng(11)
    x, y = rng.normal(size=70_001), rng.normal(size=70_001)

    def w4(x, y):
        return np.sum(np.log1p(np.exp(np.sin(x) * y)) + np.sqrt(x * x + y * y + 1))

    f = sg.value_and_grad(w4, wrt=(0, 1), backend="c")
    assert_same(f(x, y), sg.value_and_grad(w4, wrt=(0, 1))(x, y))
    text = _c_text(f, x, y)
    # forward, backward and the sum: one loop nest (and its variant for views)
    assert text.count("int kernel_") == 2 and text.count("int kernel_0_strided(") == 1
    assert "#pragma omp simd" in text and "sg_softplus" in text


def _c_text(f, *args):
    low = f.lower(*args)
    return low.path.with_suffix(".c").read_text()


THREADS_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import symgrad as sg

    def f(x, y):
        rows = (x * y).reshape(-1, 64)  # softmax-like row reductions: whole rows a chunk
        return np.sum(np.log1p(np.exp(np.sin(x) * y)) + np.sqrt(x * x + y * y + 1)) \\
            + np.sum(np.tanh(x).reshape(64, -1).sum(axis=0) ** 2) \\
            + np.sum(np.log(np.sum(np.exp(rows - np.max(rows, axis=1, keepdims=True)), axis=1)))

    # above PARALLEL_MIN_ELEMENTS: the kernels run on every thread
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=17 * 65_536), rng.normal(size=17 * 65_536)
    value, (gx, gy) = sg.value_and_grad(f, wrt=(0, 1), backend="c")(x, y)
    print(json.dumps([float(value).hex(), gx.tobytes().hex()[:2000], float(gx.sum()).hex()]))
""")


@needs_compiler
def test_one_and_two_threads_give_identical_bits(tmp_path):
    results = []
    for threads in ("1", "2"):
        env = {**os.environ, "OMP_NUM_THREADS": threads, "SYMGRAD_CACHE_DIR": str(tmp_path),
               "PYTHONPATH": os.pathsep.join(sys.path)}
        out = subprocess.run([sys.executable, "-c", THREADS_SCRIPT], env=env,
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        results.append(json.loads(out.stdout.splitlines()[-1]))
    assert results[0] == results[1]


def test_no_compiler_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("CC", "/nonexistent/symgrad-test-cc")
    c_backend._toolchain.cache_clear()
    try:
        with pytest.raises(CompilerError) as info:
            sg.grad(lambda x: np.sum(np.exp(x)), backend="c")(np.ones(3))
    finally:
        monkeypatch.undo()
        c_backend._toolchain.cache_clear()
    message = str(info.value)
    assert "CC=" in message and "/nonexistent/symgrad-test-cc" in message
    assert "backend='numpy'" in message


def test_unknown_backend_lists_the_known_ones():
    with pytest.raises(ArgumentError, match="'numpy', 'c', 'cuda', 'auto'"):
        sg.grad(lambda x: np.sum(x), backend="fortran")


@needs_compiler
def test_key_names_the_compiler_flags_and_cpu(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path))
    f = sg.grad(lambda x: np.sum(np.exp(x)), backend="c")
    f(np.ones(3))
    meta = json.loads(next(tmp_path.glob("*.json")).read_text())
    components = meta["components"]
    assert components["backend"] == "c"
    info = c_backend.toolchain()
    assert info["executable"] in components["c_compiler"]
    assert "-O3" in components["c_flags"] and components["c_cpu"] == info["cpu"]
    assert sorted(p.suffix for p in tmp_path.glob(f"{meta['key']}.*")) == [
        ".c", ".json", ".py", ".so"]
    assert [p.name for p in c_backend.entry_files(tmp_path, meta["key"])] == [
        f"{meta['key']}{s}" for s in (".py", ".json", ".c", ".so")]


@needs_compiler
def test_warm_cache_loads_without_compiler_sympy_or_jinja2(tmp_path):
    script = textwrap.dedent("""
        import sys
        import numpy as np
        import symgrad as sg
        from symgrad.backends.c import backend as c_backend

        def f(x):
            return np.sum(np.tanh(x) * 3)

        g = sg.grad(f, backend="c")(np.linspace(-1, 1, 5))
        print(sys.modules.get("sympy") is None and sys.modules.get("jinja2") is None,
              list(np.round(g, 12)))
    """)
    env = {**os.environ, "SYMGRAD_CACHE_DIR": str(tmp_path),
           "PYTHONPATH": os.pathsep.join(sys.path)}
    runs = [subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                           text=True, timeout=300) for _ in range(2)]
    assert all(r.returncode == 0 for r in runs), runs[0].stderr + runs[1].stderr
    first, second = (r.stdout.split(" ", 1) for r in runs)
    assert first[0] == "False" and second[0] == "True"  # the second process: a warm hit
    assert first[1] == second[1]
    expected = 3 * (1 - np.tanh(np.linspace(-1, 1, 5)) ** 2)
    assert second[1].strip() == str(list(np.round(expected, 12)))


@needs_compiler
def test_exported_launcher_compiles_its_c_on_import_without_symgrad(tmp_path):
    from symgrad.cli import export

    def loss(x, w):
        return np.sum(np.log1p(np.exp(x @ w)))

    f = sg.value_and_grad(loss, wrt=1, backend="c")
    exported = export.export(f, ["f64[6,3]", "f64[3]"], tmp_path)
    assert exported.module.name == "loss_value_and_grad_c.py"
    assert exported.module.with_suffix(".c").is_file()
    script = textwrap.dedent("""
        import sys
        import numpy as np
        sys.path.insert(0, sys.argv[1])
        import loss_value_and_grad_c as m
        x = np.arange(18.0).reshape(6, 3) / 10
        w = np.array([0.5, -1.0, 2.0])
        value, g = m.loss_value_and_grad(x, w)
        assert "symgrad" not in sys.modules
        print(repr(float(value)), list(g))
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=env,
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    x = np.arange(18.0).reshape(6, 3) / 10
    w = np.array([0.5, -1.0, 2.0])
    value, g = sg.value_and_grad(loss, wrt=1)(x, w)
    got_value, got_g = out.stdout.split(" ", 1)
    assert abs(float(got_value) - value) <= 1e-12 * abs(value)
    np.testing.assert_allclose(eval(got_g, {"np": np, "float64": np.float64}), g, rtol=1e-12)


@needs_compiler
def test_auto_backend_picks_c_for_large_elementwise_work_and_numpy_for_small():
    def f(x):
        return np.sum(np.tanh(x) ** 2)

    small, large = np.linspace(-1, 1, 100), np.linspace(-1, 1, 1 << 18)
    g = sg.grad(f, backend="auto")
    for x in (small, large):
        np.testing.assert_allclose(g(x), 2 * np.tanh(x) * (1 - np.tanh(x) ** 2), rtol=1e-12)
    backends = {len(x): g.lower(x).path.with_suffix(".c").exists() for x in (small, large)}
    assert backends == {100: False, 1 << 18: True}


@needs_compiler
def test_explain_miss_sees_a_warm_c_entry_as_a_hit(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path))
    def h(x):
        return np.sum(np.sin(x))

    sg.grad(h, backend="c")(np.ones(4))
    explained = sg.grad(h, backend="c").explain_miss(np.ones(4))  # nothing in memory
    assert explained.startswith("hit"), explained


@needs_compiler
def test_user_names_that_are_c_names_or_loop_variables_stay_correct():
    def f(exp, sqrt, i, row):
        return np.sum(np.exp(exp) * sqrt + i * row)

    args = [np.linspace(0, 1, 5) + k for k in range(4)]
    assert_same(*both(sg.value_and_grad, f, *args, wrt=(0, 1, 2, 3)))


def test_launcher_is_checked_by_grammar_and_its_library_is_signed():
    from symgrad.backends.c import check_launcher

    source = (Path(__file__).resolve().parent.parent / "generated" /
              "loss_value_and_grad_c.py").read_text()
    check_launcher(source)  # what symgrad writes passes
    body_start = source.index("def loss_value_and_grad(")
    poisoned = [
        source.replace('os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")',
                       'os.system("echo owned")'),
        source[:body_start] + "exec('1')\n\n\n" + source[body_start:],
        source.replace("    return value[()]", "    open('x', 'w')\n    return value[()]"),
        source.replace("_launch(kernel_0,", "_launch(_compile,"),
        source + "\nkernel_9 = _kernel('kernel_9', 1)\n",
    ]
    for text in poisoned:
        with pytest.raises(sg.GeneratedCodeError):
            check_launcher(text)
