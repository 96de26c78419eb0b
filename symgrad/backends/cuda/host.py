"""Run the CUDA backend's kernels on the CPU: the `.cu`, unchanged, compiled as host C++ with
`templates/cuda/host_shim.h` (blocks one after another, a block's threads as coroutines that
meet at each `__syncthreads`), called through ctypes on a deliberately small grid so that
every grid-stride and chunk-stride loop goes round more than once.

`host_cupy()` is a stand-in for CuPy built on this: numpy's namespace plus `RawModule` and the
few `cupy.cuda` calls symgrad makes, NVRTC's "cubin" being the host library. With it in
`sys.modules["cupy"]`, `backend="cuda"` runs end to end on the CPU -- key, generation,
compilation, the signed cache entry, the launcher's grammar, its statements and the kernels;
what only a GPU can run is listed in the shim's header and run by benchmarks/gpu_check.py.
Used by the tests; needs a C++ compiler (`CXX`, else g++) and Linux (ucontext).
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shlex
import shutil
import subprocess
import tempfile
import types
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import CompilerError

HOST_GRID = 2  # blocks a launch runs on the host, whatever the launcher asks
FLAGS = ("-std=c++17", "-O1", "-fPIC", "-shared", "-ffp-contract=off", "-fno-fast-math",
         "-Wall", "-Wno-unused-function", "-Werror")


def compiler() -> list[str] | None:
    chosen = os.environ.get("CXX") or "g++"
    command = shlex.split(chosen)
    return command if command and shutil.which(command[0]) else None


def shim_path() -> Path:
    from ...cache.key import templates_dir

    return templates_dir() / "cuda" / "host_shim.h"


@lru_cache(maxsize=None)
def _build_directory() -> Path:
    return Path(tempfile.mkdtemp(prefix="symgrad-cuda-host-"))


def build(cu_text: str) -> bytes:
    """The host library of `cu_text` (bytes of a shared object), compiled once per text."""
    command = compiler()
    if command is None:
        raise CompilerError("the CUDA host shim needs a C++ compiler (set CXX, or install g++)")
    digest = hashlib.sha256(cu_text.encode() + shim_path().read_bytes()).hexdigest()[:24]
    directory = _build_directory()
    library = directory / f"{digest}.so"
    if not library.exists():
        source = directory / f"{digest}.cu"
        source.write_text(cu_text, encoding="utf-8")
        result = subprocess.run([*command, *FLAGS, "-x", "c++", "-include", str(shim_path()),
                                 str(source), "-o", str(library) + ".tmp", "-lm"],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise CompilerError(f"the host build of {source} failed:\n{result.stderr[:4000]}")
        os.replace(str(library) + ".tmp", library)
    return library.read_bytes()


class HostKernel:
    """One kernel of a host library, called as CuPy calls a RawModule's function."""

    def __init__(self, module: "HostModule", name: str):
        self.module, self.library, self.name = module, module.library, name
        self.address = ctypes.cast(getattr(self.library, name), ctypes.c_void_p).value
        self.launches: list[tuple[int, int]] = []  # (grid asked, block asked), for tests

    def __call__(self, grid: tuple, block: tuple, arrays: tuple) -> None:
        self.launches.append((grid[0], block[0]))
        for array in arrays:
            if not (isinstance(array, np.ndarray) and array.flags.c_contiguous):
                raise TypeError(f"{self.name}: kernel arguments are C-contiguous arrays")
        pointers = (ctypes.c_void_p * max(1, len(arrays)))(*[a.ctypes.data for a in arrays])
        launch = self.library.sg_host_launch
        launch.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int,
                           ctypes.c_int]
        status = launch(self.address, len(arrays), pointers, min(self.module.grid, grid[0]),
                        block[0])
        if status != 0:
            raise RuntimeError(f"{self.name}: the host shim refused the launch ({status}: "
                               f"{'divergent __syncthreads' if status == 2 else 'bad sizes'})")


class HostModule:
    """`cupy.RawModule` on the host: `path` is a host library (what the stand-in NVRTC
    wrote as the cubin), `code` a `.cu` compiled here."""

    def __init__(self, code: str | None = None, *, path: str | None = None,
                 options: tuple = (), grid: int = HOST_GRID):
        # Loaded from a private copy, as CUDA reads a cubin into the GPU: the cache's file
        # may be replaced while the module lives.
        data = build(str(code)) if path is None else Path(path).read_bytes()
        library = _build_directory() / f"module-{hashlib.sha256(data).hexdigest()[:24]}.so"
        if not library.exists():
            library.write_bytes(data)
        self.library = ctypes.CDLL(str(library))
        self.grid = grid  # the blocks every launch runs on (at most what it asks for)
        self.kernels: dict[str, HostKernel] = {}

    def get_function(self, name: str) -> HostKernel:
        if name not in self.kernels:
            self.kernels[name] = HostKernel(self, name)
        return self.kernels[name]


class _HostNvrtc:
    """NVRTC's calls as symgrad makes them; the 'cubin' is the host library's bytes."""

    NVRTCError = CompilerError

    def __init__(self) -> None:
        self.programs: dict[int, str] = {}
        self.log = ""

    def getVersion(self) -> tuple[int, int]:  # noqa: N802 -- NVRTC's own names
        return (0, 0)

    def createProgram(self, source: str, name: str, headers: Any, names: Any) -> int:  # noqa: N802
        self.programs[len(self.programs) + 1] = source
        return len(self.programs)

    def compileProgram(self, program: int, options: Any) -> None:  # noqa: N802
        try:
            self.programs[program] = build(self.programs[program])  # type: ignore[assignment]
        except CompilerError as error:
            self.log = str(error)
            raise

    def getCUBIN(self, program: int) -> bytes:  # noqa: N802
        return self.programs[program]  # type: ignore[return-value]

    def getProgramLog(self, program: int) -> str:  # noqa: N802
        return self.log

    def destroyProgram(self, program: int) -> None:  # noqa: N802
        self.programs.pop(program, None)


def host_cupy() -> types.ModuleType:
    """A module that stands in for `cupy` (and `cupy.cuda`) on the host."""
    module = types.ModuleType("cupy", "symgrad's host stand-in for CuPy (tests only)")
    module.__getattr__ = lambda name: getattr(np, name)  # type: ignore[attr-defined]
    module._core = None  # no cuBLAS compute types to set
    module.RawModule = HostModule
    device = types.SimpleNamespace(compute_capability="host")
    module.cuda = types.ModuleType("cupy.cuda")
    module.cuda.runtime = types.SimpleNamespace(getDeviceCount=lambda: 1)
    module.cuda.Device = lambda index=0: device
    module.cuda.nvrtc = _HostNvrtc()
    return module
