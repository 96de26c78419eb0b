"""backend="cuda": the kernel IR as CUDA kernels, launched through CuPy.

Generating needs neither CuPy nor a GPU (`symgrad codegen --backend cuda`, `.lower()`);
running needs both, and without them a call is one clear `CompilerError`.

An entry of the cache is up to four files beside each other (`entry_files`): the launcher
`<key>.py` with its metadata `<key>.json`, the kernels `<key>.cu` and, where a GPU is
there, their compiled form `<key>.cubin`. Every file is one of the entry's signed files.

Compiled how: with NVRTC, at first use, for the GPU in the machine (`sm_XY` of device 0),
to a cubin that the cache keeps and signs. NVRTC rather than nvcc because it comes with CuPy's
CUDA wheels: a machine that runs CuPy can compile without a CUDA toolkit, for exactly its own
GPU; rather than letting CuPy compile and cache on its own (`RawModule(code=...)`), because
CuPy's cache is not symgrad's and is not signed: the cubin symgrad loads is one this user's key
signed. The key records the GPU's architecture and the NVRTC version (no cubin built for one
GPU is served to another) and fast math. nvcc is used by the tests only: every `.cu` compiles
with `nvcc -arch=sm_90` and its PTX is linted, where no GPU is (`nvcc.py`), and the kernels run
on the CPU through a host shim (`host.py`).

The public internal entry point of the backend (for the tests, the CLI and the tools): the
backend's own names defined here (`NAME`, `SPEED_RULES`, `compile_signature`, `generate`,
`key_components`, `entry_files`, `gpu`, `compile_cubin`, `NVRTC_OPTIONS`), and, imported on
first use, the modules `host` (the kernels run on the CPU) and `nvcc` (compiled and linted
with nvcc), and `check_launcher(source)` (the exact grammar of a rendered launcher,
`check.py`).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Sequence

from ..._lazy import lazy_exports
from ...errors import CompilerError
from ..common import SpeedRules
from ..speed_rules import FINAL_RULES, RULES

__getattr__, __dir__, _LAZY = lazy_exports(__name__, modules=("host", "nvcc"),
                                           names={"check": ("check_launcher",)})
__all__ = ["NAME", "SPEED_RULES", "compile_signature", "generate", "key_components",
           "entry_files", "gpu", "compile_cubin", "NVRTC_OPTIONS", *_LAZY]

NAME = "cuda"
# Matrix products stay library calls (cuBLAS) between the kernels: the BLAS rules apply.
SPEED_RULES = SpeedRules(before=RULES, after=FINAL_RULES)
NO_GPU = "none"
NVRTC_OPTIONS = ("--std=c++17", "--fmad=false")  # no contraction into FMAs: as C, as numpy
FAST_MATH_OPTIONS = ("--std=c++17", "--use_fast_math")
HOW_TO = ("backend='cuda' needs CuPy (pip install 'symgrad[cuda]', which installs "
          "cupy-cuda13x) and an NVIDIA GPU with its driver; `symgrad codegen --backend cuda` "
          "writes the .cu and its launcher without either. Use backend='c' or 'numpy' to run "
          "on this machine")


def entry_files(cache_directory: Path, key: str) -> list[Path]:
    """Every file of one CUDA cache entry (for the cache's signing and removal)."""
    return [cache_directory / f"{key}{suffix}" for suffix in (".py", ".json", ".cu", ".cubin")]


# -- the GPU -------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def gpu() -> dict[str, str] | str:
    """The GPU kernels compile for (`arch`: `sm_90`, `nvrtc`: its version), or why there is
    none: a sentence for the error that a call raises."""
    try:
        import cupy
    except ImportError as error:
        return f"CuPy is not installed ({error})"
    except Exception as error:  # noqa: BLE001 -- a broken CuPy install is 'no GPU' too
        return f"CuPy does not import ({type(error).__name__}: {error})"
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return "CuPy finds no CUDA device"
        capability = str(cupy.cuda.Device(0).compute_capability)
        major, minor = _nvrtc().getVersion()
    except Exception as error:  # noqa: BLE001 -- no driver, no device, no NVRTC
        return f"CuPy finds no usable GPU ({type(error).__name__}: {error})"
    return {"arch": f"sm_{capability}", "nvrtc": f"{major}.{minor}"}


def _nvrtc() -> Any:
    try:
        from cupy_backends.cuda.libs import nvrtc
    except ImportError:
        from cupy.cuda import nvrtc
    return nvrtc


def key_components(fast_math: bool = False) -> dict[str, str]:
    """The GPU target and the fast-math setting (the transform's `fast_math=True`: NVRTC's
    --use_fast_math and SymPy's unsafe folds)."""
    found = gpu()
    target = NO_GPU if isinstance(found, str) else f"{found['arch']} nvrtc {found['nvrtc']}"
    return {"cuda_target": target, "cuda_fast_math": "on" if fast_math else "off"}


def compile_cubin(cu_text: str, name: str, arch: str, fast_math: bool = False) -> bytes:
    """The cubin of `cu_text` for `arch`, compiled with NVRTC (one clear error on failure)."""
    nvrtc = _nvrtc()
    options = (f"--gpu-architecture={arch}",
               *(FAST_MATH_OPTIONS if fast_math else NVRTC_OPTIONS))
    program = nvrtc.createProgram(cu_text, name, (), ())
    try:
        try:
            nvrtc.compileProgram(program, options)
        except Exception:  # noqa: BLE001 -- NVRTCError: the log says why
            raise CompilerError(f"backend='cuda': NVRTC failed on {name}:\n"
                                f"{str(nvrtc.getProgramLog(program)).strip()[:4000]}\n"
                                "(use backend='numpy' meanwhile)") from None
        return bytes(nvrtc.getCUBIN(program))
    finally:
        nvrtc.destroyProgram(program)


# -- one signature -------------------------------------------------------------------------------
def compile_signature(fn: Callable, graph: Any, structure: Any, specs: Sequence[Any],
                      transform: Any, name: str, cache: Any, parts: Any, progress: Any) -> Any:
    from ..common import Compiled, entry_meta
    from .. import backend_key_parts
    from ..c.backend import _directory, _write

    parts = backend_key_parts(parts, NAME, transform.fast_math)
    key = parts.key
    directory = _directory(cache)
    found = gpu()
    progress.stage("load")
    loaded = _load_cached(cache, key, directory, found)
    if loaded is not None:
        module, source = loaded
        return Compiled(_function(module, name, found), source, directory / f"{key}.py", key,
                        graph, module, from_cache=True, transform=transform)
    source, cu_text, details = generate(fn, graph, structure, specs, transform, name, key,
                                        progress, parts.graph_digest)
    cu_path = directory / f"{key}.cu"
    _write(cu_path, cu_text)
    artefacts = {"cu": cu_text.encode("utf-8")}
    if not isinstance(found, str):
        progress.stage("compile")
        artefacts["cubin"] = compile_cubin(cu_text, cu_path.name, found["arch"],
                                           transform.fast_math)
        (directory / f"{key}.cubin").write_bytes(artefacts["cubin"])
    progress.stage("write")
    meta = entry_meta(fn, name, specs, NAME, transform, parts,
                      files=[p.name for p in entry_files(directory, key)
                             if p.suffix[1:] in ("py", "json", *artefacts)])
    if directory == cache.directory:
        cache.store(key, source, meta, artefacts=artefacts)
    else:
        _write(directory / f"{key}.py", source)
    module = None if isinstance(found, str) else _import(source, directory / f"{key}.py", key)
    details["cu_source"] = cu_text
    return Compiled(_function(module, name, found), source, directory / f"{key}.py", key,
                    graph, module, from_cache=False, details=details, transform=transform)


def _function(module: Any, name: str, found: dict[str, str] | str) -> Callable:
    """The launcher's function, or (no CuPy or no GPU) one that raises the clear error."""
    if module is not None:
        return getattr(module, name)
    reason = found if isinstance(found, str) else "the kernels are not compiled"

    def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise CompilerError(f"{name}: {reason}. {HOW_TO}.")

    unavailable.__name__ = unavailable.__qualname__ = name
    return unavailable


def generate(fn: Callable, graph: Any, structure: Any, specs: Sequence[Any], transform: Any,
             name: str, key: str, progress: Any = None, graph_digest: str | None = None
             ) -> tuple[str, str, dict[str, Any]]:
    """(launcher source, CUDA source, details): the generated files of one signature."""
    from ..common import without_cyclic_gc
    from .. import CUDA_NOT_YET
    from ..kernel_ir import fused_plan
    from .render import render

    with without_cyclic_gc():
        fused = fused_plan(fn, graph, structure, specs, transform, name, key, NAME,
                           CUDA_NOT_YET, SPEED_RULES, progress, graph_digest)
        cu_text, launcher, _ = render(fused.schedule, fused.params, fused.hints,
                                      fused.out_structure, name, fused.header)
    return launcher, cu_text, {"outputs": fused.outputs, "schedule": fused.schedule}


def _import(source: str, path: Path, key: str) -> Any:
    from ...cache.store import import_source
    from .check import check_launcher

    return import_source(source, path, f"symgrad_generated_{key[:20]}", check=check_launcher)


def _load_cached(cache: Any, key: str, directory: Path, found: dict[str, str] | str
                 ) -> tuple[Any, str] | None:
    if directory != cache.directory or not (directory / f"{key}.cu").is_file():
        return None
    entry = cache.load_entry(key)  # the launcher, its .cu and its .cubin: signed, verified
    if entry is None:
        return None
    wanted = {"cu"} if isinstance(found, str) else {"cu", "cubin"}
    if set(entry.artefacts) != wanted:
        cache.warn_damaged(key, "its kernels are not its signed files")
        return None
    if isinstance(found, str):
        return None, entry.source
    try:
        module = _import(entry.source, directory / f"{key}.py", key)
    except Exception as error:  # noqa: BLE001 -- a refused launcher or a cubin that fails
        cache.warn_damaged(key, f"it failed to load ({error})")
        return None
    if not callable(getattr(module, str(entry.meta.get("function")), None)):
        cache.warn_damaged(key, "its metadata names no function of its source")
        return None
    return module, entry.source
