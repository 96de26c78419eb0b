"""backend="cuda" on a real GPU, in one call (under 5 minutes, its own set-up included):

    python benchmarks/gpu_check.py              # on a machine with an NVIDIA GPU
    python benchmarks/gpu_check.py --dry-run    # anywhere with nvcc: no GPU, no CuPy

1. set-up: where CuPy does not work, `pip install cupy-cudaNNx[ctk]` for the CUDA major
   version of the machine's PyTorch (13 without one), and the project itself
   (`pip install --no-deps -e .`); whatever PyTorch is there is used;
2. the card: name, compute capability, driver and runtime versions, NVRTC's;
3. the oracle tests on the GPU: `tests/test_cuda_backend.py` with SYMGRAD_CUDA_TESTS=gpu, the
   same models the host shim runs, now through real CuPy, NVRTC, cuBLAS and the GPU -- what
   the shim cannot run: threads at the same time, CUDA's math library, shared-memory limits,
   RawModule and the launcher's device copies; plus the same bits twice and on numpy and
   CuPy arguments;
4. the workloads W1-W5 (benchmarks/workloads.py) with device-resident arguments against
   PyTorch CUDA eager and torch.compile: each result checked against the numpy backend, then
   medians and ratios (>1: symgrad is faster).

`--dry-run` does what needs no GPU: generates the `.cu` of every oracle model and workload,
compiles each with `nvcc -arch=sm_90` (warnings are errors) and, where libnvrtc is (the
nvidia-cuda-nvrtc wheel), with NVRTC as at run time, and lints the float32 PTX.
Record the card and figures in benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEADLINE = time.monotonic() + 285  # the whole script, set-up included, in under 5 minutes
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks"), str(ROOT / "tests")]


def left() -> float:
    return DEADLINE - time.monotonic()


def setup() -> None:
    """CuPy for the CUDA major version the machine's PyTorch was built with (13 without
    PyTorch), with the toolkit's libraries (NVRTC, cuBLAS) as wheels; then the project. A
    failed install is reported, not fatal: the checkout is on sys.path anyway."""
    def pip(*args: str) -> bool:
        print("$ pip install", " ".join(args), flush=True)
        try:
            return subprocess.run([sys.executable, "-m", "pip", "install", "-q", *args],
                                  timeout=max(30, left() - 200)).returncode == 0
        except subprocess.TimeoutExpired:
            return False
    try:
        importlib.import_module("cupy").cuda.runtime.getDeviceCount()
    except Exception:  # noqa: BLE001 -- absent or unusable: install the matching wheel
        major = "13"
        try:
            import torch

            major = (torch.version.cuda or "13").split(".")[0]
        except Exception:  # noqa: BLE001
            pass
        if not pip(f"cupy-cuda{major}x[ctk]"):
            pip(f"cupy-cuda{major}x")
    if not pip("--no-deps", "-e", str(ROOT)):
        print("(the project is used from the checkout on sys.path)")


def card() -> str:
    import cupy

    props = cupy.cuda.runtime.getDeviceProperties(0)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    from symgrad.backends import cuda

    return (f"{name}, sm_{cupy.cuda.Device(0).compute_capability}, driver "
            f"{cupy.cuda.runtime.driverGetVersion()}, runtime "
            f"{cupy.cuda.runtime.runtimeGetVersion()}, NVRTC {cuda.gpu()}, CuPy "
            f"{cupy.__version__}")


def oracle_tests() -> int:
    env = dict(os.environ, SYMGRAD_CUDA_TESTS="gpu", PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               str(ROOT / "tests" / "test_cuda_backend.py")]
    print("$", " ".join(command[2:]), flush=True)
    try:
        return subprocess.run(command, env=env, cwd=ROOT, timeout=max(30, left() - 120)
                              ).returncode
    except subprocess.TimeoutExpired:
        print("oracle tests: out of time")
        return 1


def _median_ms(call, sync, repeats: int = 15) -> float:
    call()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        sync()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2] * 1e3


def workloads() -> int:
    import cupy
    import numpy as np

    import symgrad as sg
    from cuda_models import assert_close
    from workloads import WORKLOADS

    try:
        import torch
        has_torch = torch.cuda.is_available()
    except Exception:  # noqa: BLE001
        has_torch = False
    failures = 0
    rows = []
    for wl in WORKLOADS:
        if left() < 25:
            print(f"{wl.id}: skipped (out of time)")
            continue
        args = wl.args()
        want = sg.value_and_grad(wl.numpy_fn, wrt=wl.wrt)(**args)
        f = sg.value_and_grad(wl.numpy_fn, wrt=wl.wrt, backend="cuda")
        try:
            got = f(**args)  # numpy in, numpy out
            assert_close(got, want, wl.dtype)
            device = {k: cupy.asarray(v) for k, v in args.items()}
            first, second = f(**device), f(**device)
            same = all(bool((a == b).all()) for a, b in zip(
                [first[0], *first[1]], [second[0], *second[1]]))
            row = {"id": wl.id, "symgrad": _median_ms(lambda: f(**device),
                                                      cupy.cuda.Device().synchronize),
                   "same bits": same}
        except Exception as error:  # noqa: BLE001 -- say which workload, go on
            failures += 1
            print(f"{wl.id}: symgrad cuda FAILED: {type(error).__name__}: {error}"[:600])
            continue
        if has_torch:
            tensors = [torch.from_numpy(np.ascontiguousarray(a)).cuda() for a in args.values()]
            params = [tensors[i].requires_grad_(True) for i in wl.wrt_index(args)]

            def eager(fn=wl.torch_fn):
                loss = fn(torch, *tensors)
                return torch.autograd.grad(loss, params)
            row["torch eager"] = _median_ms(eager, torch.cuda.synchronize)
            if left() > 60:
                torch._dynamo.reset()
                compiled = torch.compile(lambda *a, fn=wl.torch_fn: fn(torch, *a))

                def inductor():
                    return torch.autograd.grad(compiled(*tensors), params)
                try:
                    row["torch.compile"] = _median_ms(inductor, torch.cuda.synchronize)
                except Exception as error:  # noqa: BLE001
                    print(f"{wl.id}: torch.compile skipped: {type(error).__name__}")
        rows.append(row)
        print(_row_text(row), flush=True)
    return failures


def _row_text(row: dict) -> str:
    text = f"{row['id']:8s} symgrad cuda {row['symgrad']:8.3f} ms (same bits twice: " \
           f"{row['same bits']})"
    for other in ("torch eager", "torch.compile"):
        if other in row:
            text += f" | {other} {row[other]:8.3f} ms, ratio {row[other] / row['symgrad']:.2f}x"
    return text


def dry_run() -> int:
    """Generate every .cu, compile with nvcc -arch=sm_90 and lint float32 PTX: no GPU."""
    import numpy as np

    import symgrad as sg
    from cuda_models import CASES
    from symgrad.backends.cuda import nvcc
    from workloads import WORKLOADS

    if nvcc.nvcc() is None:
        print("nvcc is not installed: nothing to compile")
        return 1
    jobs = [(f"{c.name}/{np.dtype(dt).name}", c.fn, c.make_args(np.random.default_rng(0), dt),
             c.wrt, dt) for c in CASES for dt in (np.float64, np.float32)]
    jobs += [(wl.id, wl.numpy_fn, wl.args(), wl.wrt, wl.dtype) for wl in WORKLOADS]
    import nvrtc_ctypes
    from symgrad.backends import cuda

    runtime_compiler = nvrtc_ctypes.load()  # NVRTC needs no GPU: where it is, compile with it
    if runtime_compiler is not None:
        cuda._nvrtc = lambda: runtime_compiler
    failures = 0
    for name, fn, args, wrt, dtype in jobs:
        try:
            lowered = sg.value_and_grad(fn, wrt=wrt, backend="cuda").lower(**args)
            cu_text = lowered.path.with_suffix(".cu").read_text()
            nvcc.device_compile(cu_text)
            if runtime_compiler is not None:
                cuda.compile_cubin(cu_text, "kernels.cu", "sm_90")
            # float32 throughout (a float32 model that promotes to float64 has double kernels)
            code = [line for line in cu_text.splitlines()
                    if not line.lstrip().startswith(("/*", "*"))]
            single = dtype == np.float32 and not any("double" in line for line in code)
            problems = nvcc.lint_ptx(nvcc.ptx(cu_text)) if single else []
            print(f"{name:32s} {cu_text.count('__global__'):3d} kernels: compiles"
                  + (" (nvcc, NVRTC)" if runtime_compiler is not None else " (nvcc)")
                  + (f", PTX lint: {problems[:3]}" if problems else
                     ", PTX float-only" if single else ""), flush=True)
            failures += bool(problems)
        except Exception as error:  # noqa: BLE001 -- report each, then fail
            failures += 1
            print(f"{name:32s} FAILED: {type(error).__name__}: {error}"[:800], flush=True)
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true",
                        help="no GPU: generate, nvcc-compile and lint every .cu")
    parser.add_argument("--no-setup", action="store_true", help="skip the pip installs")
    options = parser.parse_args()
    if options.dry_run:
        failures = dry_run()
        print(f"dry run: {failures} failure(s)")
        return int(failures > 0)
    if not options.no_setup:
        setup()
    try:
        print("card:", card(), flush=True)
    except Exception as error:  # noqa: BLE001 -- no usable CuPy or GPU: say so, stop
        print(f"no usable GPU through CuPy: {type(error).__name__}: {error}")
        return 1
    tests = oracle_tests()
    failures = workloads()
    print(f"oracle tests: {'passed' if tests == 0 else 'FAILED'}; workloads failed: "
          f"{failures}; {285 - left():.0f} s")
    return int(tests != 0 or failures > 0)


if __name__ == "__main__":
    sys.exit(main())
