"""NVRTC through ctypes, with the calls of CuPy's `nvrtc` module that symgrad makes
(`getVersion`, `createProgram`, `compileProgram`, `getCUBIN`, `getProgramLog`,
`destroyProgram`, plus `getPTX`): NVRTC compiles without a GPU, so `compile_cubin` runs for
real where the `nvidia-cuda-nvrtc` wheel (a test dependency) or a CUDA toolkit's libnvrtc is.
"""
from __future__ import annotations

import ctypes
import glob
import os
import sys


class NVRTCError(RuntimeError):
    pass


def _library_paths() -> list[str]:
    found = []
    for root in sys.path:
        found += sorted(glob.glob(os.path.join(root, "nvidia", "cu*", "lib", "libnvrtc.so.*")))
        found += sorted(glob.glob(os.path.join(root, "nvidia", "cuda_nvrtc", "lib",
                                               "libnvrtc.so.*")))
    cuda_home = os.environ.get("CUDA_HOME", "/usr/local/cuda")
    found += sorted(glob.glob(os.path.join(cuda_home, "lib64", "libnvrtc.so*")))
    return [p for p in found if "builtins" not in os.path.basename(p)] + ["libnvrtc.so"]


def load():
    """The NVRTC module stand-in, or None where no libnvrtc loads."""
    for path in _library_paths():
        try:
            return _Nvrtc(ctypes.CDLL(path))
        except OSError:
            continue
    return None


class _Nvrtc:
    NVRTCError = NVRTCError

    def __init__(self, library: ctypes.CDLL):
        self.lib = library

    def _check(self, status: int) -> None:
        if status != 0:
            self.lib.nvrtcGetErrorString.restype = ctypes.c_char_p
            raise NVRTCError(self.lib.nvrtcGetErrorString(status).decode())

    def getVersion(self):  # noqa: N802 -- CuPy's names
        major, minor = ctypes.c_int(), ctypes.c_int()
        self._check(self.lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor)))
        return major.value, minor.value

    def createProgram(self, source, name, headers, names):  # noqa: N802
        program = ctypes.c_void_p()
        self._check(self.lib.nvrtcCreateProgram(ctypes.byref(program), source.encode(),
                                                name.encode(), 0, None, None))
        return program.value

    def compileProgram(self, program, options):  # noqa: N802
        array = (ctypes.c_char_p * len(options))(*[o.encode() for o in options])
        self._check(self.lib.nvrtcCompileProgram(ctypes.c_void_p(program), len(options),
                                                 array))

    def _bytes(self, program, what: str) -> bytes:
        size = ctypes.c_size_t()
        self._check(getattr(self.lib, f"nvrtcGet{what}Size")(ctypes.c_void_p(program),
                                                             ctypes.byref(size)))
        buffer = ctypes.create_string_buffer(size.value)
        self._check(getattr(self.lib, f"nvrtcGet{what}")(ctypes.c_void_p(program), buffer))
        return buffer.raw

    def getCUBIN(self, program):  # noqa: N802
        return self._bytes(program, "CUBIN")

    def getPTX(self, program):  # noqa: N802
        return self._bytes(program, "PTX").rstrip(b"\0").decode()

    def getProgramLog(self, program):  # noqa: N802
        return self._bytes(program, "ProgramLog").rstrip(b"\0").decode()

    def destroyProgram(self, program):  # noqa: N802
        handle = ctypes.c_void_p(program)
        self._check(self.lib.nvrtcDestroyProgram(ctypes.byref(handle)))
