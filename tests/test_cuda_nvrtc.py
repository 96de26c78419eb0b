"""The compiler backend="cuda" uses at run time, NVRTC, on the generated `.cu` where there is
no GPU (NVRTC needs none): `compile_cubin` with its own options gives sm_90 machine code for
the oracle models, the RTC branch of the file (no <math.h>, INFINITY and NAN as builtins)
included; NVRTC's own PTX of float32 kernels is float-only; a failure is one clear error
with NVRTC's log."""
from __future__ import annotations

import numpy as np
import pytest

import nvrtc_ctypes
import symgrad as sg
from cuda_models import CASE_IDS, CASES
from symgrad.backends import cuda
from symgrad.backends.cuda import nvcc
from symgrad.errors import CompilerError

NVRTC = nvrtc_ctypes.load()
pytestmark = pytest.mark.skipif(NVRTC is None, reason="no libnvrtc here (the test extra "
                                "installs the nvidia-cuda-nvrtc wheel)")
PICKED = ["rows_and_columns", "where_logaddexp", "mlp_tanh_softmax_ce"]


@pytest.fixture
def nvrtc(monkeypatch):
    monkeypatch.setattr(cuda, "_nvrtc", lambda: NVRTC)
    return NVRTC


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", PICKED)
def test_nvrtc_compiles_the_generated_cu_for_sm_90(nvrtc, name, dtype):
    case = CASES[CASE_IDS.index(name)]
    args = case.make_args(np.random.default_rng(0), dtype)
    lowered = sg.value_and_grad(case.fn, wrt=case.wrt, backend="cuda").lower(**args)
    cu_text = lowered.path.with_suffix(".cu").read_text()
    cubin = cuda.compile_cubin(cu_text, "kernels.cu", "sm_90")
    assert cubin[:4] == b"\x7fELF" and len(cubin) > 1000
    if dtype == np.float32:
        program = nvrtc.createProgram(cu_text, "kernels.cu", (), ())
        try:
            nvrtc.compileProgram(program, ("--gpu-architecture=compute_90",
                                           *cuda.NVRTC_OPTIONS))
            ptx = nvrtc.getPTX(program)
        finally:
            nvrtc.destroyProgram(program)
        assert ".entry kernel_0" in ptx and nvcc.lint_ptx(ptx) == []


def test_nvrtc_failure_is_one_clear_error_with_its_log(nvrtc):
    with pytest.raises(CompilerError, match=r"NVRTC failed on broken.cu:\n.*error"):
        cuda.compile_cubin('extern "C" __global__ void k(float *x) { x[0] = undefined; }\n',
                           "broken.cu", "sm_90")
