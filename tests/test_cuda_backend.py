"""backend="cuda" where there is no GPU: every `.cu` of the oracle models compiles with
`nvcc -arch=sm_90` (warnings are errors), float32 kernels' PTX holds no double promotion and
no approximate sin/cos, and the kernels run on the host through the shim (a small grid, a
block's threads as coroutines meeting at each barrier) against the numpy backend, end to end
through the launcher, the signed cache entry and the launcher's grammar. Without CuPy a call
is one clear error and `symgrad codegen --backend cuda` still works.

On a GPU machine `benchmarks/gpu_check.py` runs this file with SYMGRAD_CUDA_TESTS=gpu: the
same models through real CuPy, NVRTC and the GPU.
"""
from __future__ import annotations

import ast
import os
import sys
import warnings

import numpy as np
import pytest

import symgrad as sg
from cuda_models import CASE_IDS, CASES, assert_close
from symgrad.backends import cuda
from symgrad.backends.cuda import check_launcher, host, nvcc
from symgrad.errors import CompilerError, GeneratedCodeError

ON_GPU = os.environ.get("SYMGRAD_CUDA_TESTS") == "gpu"
needs_nvcc = pytest.mark.skipif(nvcc.nvcc() is None, reason="nvcc is not installed here, so the "
                                "generated CUDA is not compiled (CI installs the CUDA toolkit)")
needs_runtime = pytest.mark.skipif(not ON_GPU and host.compiler() is None,
                                   reason="no C++ compiler (CXX or g++) for the host shim")
DTYPES = [np.float64, np.float32]


@pytest.fixture
def runtime(monkeypatch):
    """CuPy for backend='cuda': the real one under gpu_check.py, else the host stand-in."""
    if ON_GPU:
        yield None
        return
    fake = host.host_cupy()
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setitem(sys.modules, "cupy.cuda", fake.cuda)
    monkeypatch.setitem(sys.modules, "cupy_backends", None)
    cuda.gpu.cache_clear()
    yield fake
    cuda.gpu.cache_clear()


@pytest.fixture
def no_cupy(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` raises ImportError
    cuda.gpu.cache_clear()
    yield
    cuda.gpu.cache_clear()


def _lowered(case, dtype):
    args = case.make_args(np.random.default_rng(5), dtype)
    return sg.value_and_grad(case.fn, wrt=case.wrt, backend="cuda").lower(**args)


# -- on the host, against the numpy backend ------------------------------------------------------
@needs_runtime
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_kernels_match_numpy_backend(runtime, case, dtype):
    args = case.make_args(np.random.default_rng(20240611), dtype)
    got = sg.value_and_grad(case.fn, wrt=case.wrt, backend="cuda")(**args)
    assert_close(got, sg.value_and_grad(case.fn, wrt=case.wrt)(**args), dtype)


@needs_runtime
def test_same_bits_on_any_grid_and_grid_stride_loops_run(runtime):
    if ON_GPU:
        pytest.skip("the host shim's grid is the one being varied")
    case = CASES[CASE_IDS.index("rows_and_columns")]
    args = case.make_args(np.random.default_rng(1), np.float32)
    compiled = sg.value_and_grad(case.fn, wrt=case.wrt, backend="cuda")
    module = compiled.lower(**args).function.__globals__["_MODULE"]
    results = []
    for grid in (1, 2, 3, 7):
        module.grid = grid
        value, grads = compiled(**args)
        results.append([np.asarray(value).tobytes()] + [g.tobytes() for g in grads])
    assert all(r == results[0] for r in results)
    # grids 1 and 2 ran fewer blocks than chunks (3): the chunk-stride loops went round
    asked = [b for kernel in module.kernels.values() for b, _ in kernel.launches]
    assert max(asked) == 3 and {t for k in module.kernels.values() for _, t in k.launches} == {256}


@needs_runtime
def test_cubin_is_a_signed_file_of_the_entry(runtime, cache_dir):
    if ON_GPU:
        pytest.skip("tampers with the host stand-in's cache entry")
    case = CASES[CASE_IDS.index("softplus_sum")]
    args = case.make_args(np.random.default_rng(2), np.float64)
    want = sg.value_and_grad(case.fn, wrt=case.wrt)(**args)
    path = sg.value_and_grad(case.fn, wrt=case.wrt, backend="cuda").lower(**args).path
    cubin = path.with_suffix(".cubin")
    assert cubin.is_file() and path.with_suffix(".cu").is_file()
    cubin.write_bytes(cubin.read_bytes() + b"\0")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = sg.value_and_grad(case.fn, wrt=case.wrt, backend="cuda")(**args)
    assert any("damaged" in str(w.message) or "rebuil" in str(w.message) for w in caught), \
        [str(w.message) for w in caught]
    assert_close(got, want)


# -- no CuPy, no GPU ----------------------------------------------------------------------------
def test_without_cupy_codegen_works_and_a_call_is_one_clear_error(no_cupy, tmp_path, capsys):
    from symgrad.cli import main

    fn = CASES[0].fn
    compiled = sg.value_and_grad(fn, wrt=("x", "y"), backend="cuda")
    lowered = compiled.lower("f64[4,3]", "f64[3]")
    assert 'extern "C" __global__' in lowered.path.with_suffix(".cu").read_text()
    with pytest.raises(CompilerError, match=r"CuPy is not installed.*symgrad\[cuda\]"):
        compiled(np.ones((4, 3)), np.ones(3))
    model = tmp_path / "model.py"
    model.write_text("import numpy as np\n\n\ndef loss(x, w):\n"
                     "    return np.sum(np.tanh(x @ w) ** 2)\n")
    assert main(["codegen", f"{model}:loss", "--arg", "x=f32[8,3]", "--arg", "w=f32[3,2]",
                 "--wrt", "w", "--mode", "grad", "--backend", "cuda",
                 "-o", str(tmp_path / "out")]) == 0
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["loss_grad_cuda.cu", "loss_grad_cuda.py"]
    check_launcher((tmp_path / "out" / "loss_grad_cuda.py").read_text())
    assert main(["show", f"{model}:loss", "--arg", "x=f32[8,3]", "--arg", "w=f32[3,2]",
                 "--wrt", "w", "--mode", "grad", "--backend", "cuda"]) == 0
    shown = capsys.readouterr().out
    assert "import cupy as np" in shown and ".cu ---- */" in shown \
        and "extern \"C\" __global__ void" in shown and "tanhf(" in shown


# -- nvcc and the PTX lint ----------------------------------------------------------------------
@needs_nvcc
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES[:4], ids=CASE_IDS[:4])
def test_cu_compiles_with_nvcc_and_float32_ptx_is_float_only(no_cupy, case, dtype):
    cu_text = _lowered(case, dtype).path.with_suffix(".cu").read_text()
    ptx = nvcc.device_compile(cu_text)  # nvcc -ptx, then ptxas -arch=sm_90
    if dtype == np.float32:
        assert nvcc.lint_ptx(ptx) == []


@needs_nvcc
def test_generated_examples_compile_with_nvcc():
    from pathlib import Path

    examples = sorted((Path(__file__).resolve().parent.parent / "generated").glob("*.cu"))
    assert len(examples) >= 3
    messages = nvcc.compile_object(examples[0].read_text())  # device and host code, once
    assert "warning" not in messages.lower(), messages
    for path in examples:
        ptx = nvcc.device_compile(path.read_text())
        if "f32[" in path.read_text().split("*/", 1)[0]:
            assert nvcc.lint_ptx(ptx) == [], path.name


@needs_nvcc
def test_lint_finds_double_promotion_and_approximate_sine():
    promoted = ('extern "C" __global__ void k(const float *x, float *y)\n'
                '{ y[threadIdx.x] = x[threadIdx.x] * 2.1; }\n')
    assert any("cvt" in line for line in nvcc.lint_ptx(nvcc.ptx(promoted)))
    sine = ('extern "C" __global__ void k(const float *x, float *y)\n'
            '{ y[threadIdx.x] = sinf(x[threadIdx.x]); }\n')
    fast = nvcc.ptx(sine, fast_math=True)
    assert any("sin.approx" in line for line in nvcc.lint_ptx(fast))
    assert nvcc.lint_ptx(fast, fast_math=True) == []
    assert nvcc.lint_ptx(nvcc.ptx(sine)) == []


# -- the launcher's grammar ---------------------------------------------------------------------
def _mutated(source: str, edit) -> str:
    tree = ast.parse(source)
    edit(tree)
    return ast.unparse(tree)


def test_launcher_grammar_accepts_what_symgrad_writes_and_nothing_else(no_cupy):
    source = _lowered(CASES[1], np.float32).source
    check_launcher(source)
    function = lambda tree: tree.body[-1]  # noqa: E731
    kernel = next(i for i, s in enumerate(ast.parse(source).body)
                  if isinstance(s, ast.Assign) and getattr(s.targets[0], "id", "") == "kernel_0")
    edits = {
        "a call of os.system": lambda t: function(t).body.insert(
            1, ast.parse("os.system('true')").body[0]),
        "a launch of an unbound kernel": lambda t: function(t).body.insert(
            1, ast.parse("_launch(kernel_99, a)").body[0]),
        "results not through _returned": lambda t: setattr(
            function(t).body[-1], "value", function(t).body[-1].value.args[1]),
        "a kernel bound to a computed size": lambda t: setattr(
            t.body[kernel].value.args[2], "value", 1.5),
        "a fixed part changed": lambda t: t.body.insert(2, ast.parse("import sys").body[0]),
        "a module compiled from elsewhere": lambda t: t.body.insert(
            kernel, ast.parse("_MODULE = _module(fast_math=None)").body[0]),
    }
    for what, edit in edits.items():
        with pytest.raises(GeneratedCodeError):
            check_launcher(_mutated(source, edit))
            pytest.fail(what)


@pytest.mark.skipif(not ON_GPU, reason="CuPy arrays need a GPU (benchmarks/gpu_check.py)")
def test_cupy_arguments_stay_on_the_gpu():  # pragma: no cover - GPU machines only
    import cupy

    case = CASES[0]
    args = case.make_args(np.random.default_rng(3), np.float32)
    want = sg.value_and_grad(case.fn, wrt=case.wrt)(**args)
    value, grads = sg.value_and_grad(case.fn, wrt=case.wrt, backend="cuda")(
        **{k: cupy.asarray(v) for k, v in args.items()})
    assert all(isinstance(g, cupy.ndarray) for g in grads)
    assert_close((value.get()[()], tuple(g.get() for g in grads)), want, np.float32)


@needs_nvcc
def test_fast_math_is_the_transforms_option(no_cupy):
    """fast_math=True (not an environment variable): the unsafe folds, NVRTC's fast math in the
    launcher, a different key; off by default, and the float32 PTX has no approximate sine."""
    def f(x):
        return np.sum(np.sin(x) * (x - x) + x * x)

    x = np.linspace(-1.0, 1.0, 8).astype(np.float32)
    exact = sg.grad(f, backend="cuda").lower(x)
    fast = sg.grad(f, backend="cuda", fast_math=True).lower(x)
    assert exact.key != fast.key
    assert "fast_math=False" in exact.source and "fast_math=True" in fast.source
    assert "fast math: on" in fast.source and "fast math: off" in exact.source
    exact_cu = exact.path.with_suffix(".cu").read_text()
    fast_cu = fast.path.with_suffix(".cu").read_text()
    assert "fast math: off" in exact_cu and "fast math: on" in fast_cu
    assert exact_cu != fast_cu  # x - x folded only with fast_math
    assert not nvcc.lint_ptx(nvcc.ptx(exact_cu))
    assert nvcc.ptx(fast_cu, fast_math=True)
