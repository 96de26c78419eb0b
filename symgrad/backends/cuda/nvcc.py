"""The CUDA backend's checks that need nvcc but no GPU: compile a `.cu` as the GPU would get
it (`nvcc -arch=sm_90`, every warning an error) and lint its PTX.

The lint of a float32 kernel file: no `cvt.f64.f32` (a float promoted to double: a double
literal or a double math call in float code; CUDA's own float functions keep internal `.f64`
slow paths that convert integers, which are fine), and no `sin.approx` / `cos.approx` (the
fast intrinsics) unless fast math is on. Used by the tests and by benchmarks/gpu_check.py.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from ...errors import CompilerError
from . import FAST_MATH_OPTIONS, NVRTC_OPTIONS

ARCH = "sm_90"
_PROMOTION = re.compile(r"\bcvt(?:\.\w+)*?\.f64\.f32\b")
_APPROXIMATE = re.compile(r"\b(?:sin|cos)\.approx\b")


def nvcc() -> str | None:
    """nvcc's path: `NVCC`, else on PATH, else under CUDA_HOME / /usr/local/cuda."""
    for candidate in (os.environ.get("NVCC"), shutil.which("nvcc"),
                      os.path.join(os.environ.get("CUDA_HOME", "/usr/local/cuda"), "bin",
                                   "nvcc")):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _run(cu_text: str, what: list[str], fast_math: bool, suffix: str) -> tuple[str, str]:
    executable = nvcc()
    if executable is None:
        raise CompilerError("nvcc is not installed (set NVCC or CUDA_HOME)")
    options = [o for o in (FAST_MATH_OPTIONS if fast_math else NVRTC_OPTIONS)]
    with tempfile.TemporaryDirectory() as directory:
        source = Path(directory) / "kernels.cu"
        source.write_text(cu_text, encoding="utf-8")
        output = Path(directory) / f"kernels.{suffix}"
        command = [executable, f"-arch={ARCH}", *options, "-Werror", "all-warnings",
                   "-Xcompiler", "-Wall", *what, str(source), "-o", str(output)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise CompilerError(f"nvcc failed:\n{result.stderr.strip()[:4000]}")
        text = output.read_text(errors="replace") if suffix == "ptx" else ""
        return text, result.stderr


def compile_object(cu_text: str, fast_math: bool = False) -> str:
    """Compile for sm_90 (device and host code); nvcc's messages (warnings are errors)."""
    return _run(cu_text, ["-c"], fast_math, "o")[1]


def ptx(cu_text: str, fast_math: bool = False) -> str:
    return _run(cu_text, ["-ptx"], fast_math, "ptx")[0]


def device_compile(cu_text: str, fast_math: bool = False) -> str:
    """The device half of `nvcc -arch=sm_90` in two steps, the PTX kept for the lint: the
    front end to PTX, then ptxas to sm_90 machine code (each warning an error). The PTX."""
    text = ptx(cu_text, fast_math)
    ptxas = Path(str(nvcc())).with_name("ptxas")
    with tempfile.TemporaryDirectory() as directory:
        source = Path(directory) / "kernels.ptx"
        source.write_text(text)
        result = subprocess.run([str(ptxas), f"-arch={ARCH}", "--warning-as-error",
                                 str(source), "-o", str(Path(directory) / "kernels.cubin")],
                                capture_output=True, text=True)
    if result.returncode != 0:
        raise CompilerError(f"ptxas failed:\n{result.stderr.strip()[:4000]}")
    return text


def lint_ptx(ptx_text: str, fast_math: bool = False) -> list[str]:
    """What a float32 kernel file's PTX must not hold: each offending line."""
    problems = []
    for line in ptx_text.splitlines():
        if _PROMOTION.search(line) or (not fast_math and _APPROXIMATE.search(line)):
            problems.append(line.strip())
    return problems
