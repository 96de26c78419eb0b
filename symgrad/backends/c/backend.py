"""backend="c": fused C loops for the CPU, compiled at first use, loaded with ctypes.

An entry of the cache is three files beside each other (`entry_files`): the launcher
`<key>.py` (what `DiskCache.store` writes, with its metadata `<key>.json`), the kernels
`<key>.c` and the compiled library `<key>.so`. A warm cache imports the launcher, which loads
the library: no compiler, no SymPy, no jinja2. The key adds to the numpy backend's components
the compiler (path and version), its flags, the CPU features the code is built for and the
source of this folder, so a library built for one CPU or compiler is never served to another.

The compiler is `CC` if set, else the one Python was built with (sysconfig), else `cc`;
OpenMP (`-fopenmp`) where the compiler has it, else single-threaded with a note. Vector math
is glibc's libmvec, declared for the `omp simd` loops where glibc has it (x86_64 Linux).
`fast_math=True` of a transform (`Transform.fast_math`) adds the compiler's fast math
(`-ffast-math` in place of `-ffp-contract=off`; off by default; in the key and the header).
"""
from __future__ import annotations

import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import sysconfig
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Sequence

from ...errors import CompilerError
from ..common import SpeedRules
from ..speed_rules import FINAL_RULES, RULES

NAME = "c"
# Matrix products stay library calls between the kernels, so the numpy backend's BLAS rules
# apply here too.
SPEED_RULES = SpeedRules(before=RULES, after=FINAL_RULES)
_HERE = Path(__file__).resolve().parent


def entry_files(cache_directory: Path, key: str) -> list[Path]:
    """Every file of one C cache entry (for the cache's signing and removal)."""
    return [cache_directory / f"{key}{suffix}" for suffix in (".py", ".json", ".c", ".so")]


# -- the toolchain -------------------------------------------------------------------------------
def compiler_command() -> list[str]:
    """The C compiler as a command: `CC`, else sysconfig's, else `cc`."""
    chosen = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return shlex.split(chosen)


@lru_cache(maxsize=None)
def _toolchain(command: tuple[str, ...], fast_math: bool) -> dict[str, Any]:
    """What the compiler is and supports, probed once per compiler binary: the answer is
    kept in the cache directory (`c-toolchain.probe`), so a warm start runs no compiler."""
    import json

    executable = shutil.which(command[0]) if command else None
    if executable is None:
        raise CompilerError(
            f"backend='c' needs a C compiler and found none (CC={os.environ.get('CC', '')!r}, "
            f"tried {command[0] if command else 'cc'!r}); install gcc or clang, set CC to "
            "one, or use backend='numpy'")
    info = os.stat(executable)
    identity = [executable, list(command), info.st_size, info.st_mtime_ns, fast_math,
                platform.machine(), platform.libc_ver()[1], _cpu_features(),
                hashlib.sha256(Path(__file__).read_bytes()).hexdigest()]  # the flags chosen
    probe = _probe_path(fast_math)
    try:
        stored = json.loads(probe.read_text(encoding="utf-8"))
        if stored.get("identity") == identity:
            return stored["toolchain"]
    except (OSError, ValueError, AttributeError, KeyError):
        pass
    found = _probe(executable, command, fast_math)
    try:
        _write(probe, json.dumps({"identity": identity, "toolchain": found}, indent=1))
    except OSError:
        pass  # probed again next time
    return found


def _probe_path(fast_math: bool) -> Path:
    from ...cache.store import default_dir

    return default_dir() / ("c-toolchain-fast-math.probe" if fast_math else "c-toolchain.probe")


def _probe(executable: str, command: tuple[str, ...], fast_math: bool) -> dict[str, Any]:
    import tempfile

    prefix = [executable, *command[1:]]
    vector_math = (platform.system() == "Linux" and platform.machine() == "x86_64"
                   and _glibc_at_least(2, 35))
    with tempfile.TemporaryDirectory() as directory:
        source = Path(directory) / "probe.c"
        source.write_text("int probe(void) { return 0; }\n")
        library = [prefix + ["-shared", "-fPIC", str(source), "-o",
                             str(Path(directory) / f"probe{k}.so"), flag]
                   for k, flag in enumerate(["-fopenmp"] + (["-lmvec"] if vector_math else []))]
        # at the same time: a cold start waits for the slowest, not for the sum
        (code, version), *accepted = _run_together([prefix + ["--version"], *library])
    if code is None:
        raise CompilerError(f"backend='c': the C compiler {executable} does not run ({version}); "
                            "set CC to a working compiler, or use backend='numpy'")
    version = version.splitlines()[:1]
    openmp = accepted[0][0] == 0
    vector_math = vector_math and accepted[-1][0] == 0
    features = _cpu_features()
    # No errno and no floating-point traps: neither changes a value, and both let the loops
    # call vector math and compute both sides of a select.
    flags = ["-O3", "-std=gnu11", "-fPIC", "-fno-math-errno", "-fno-trapping-math",
             "-Werror=implicit-function-declaration"]
    flags += ["-ffast-math"] if fast_math else ["-ffp-contract=off"]
    if "avx2" in features and "fma" in features:
        flags += ["-mavx2", "-mfma"]
    flags += ["-fopenmp"] if openmp else []
    # sin and cos as themselves: fused into one scalar sincos call, they would not vectorise.
    flags += ["-DSG_LIBMVEC", "-fno-builtin-sin", "-fno-builtin-cos", "-fno-builtin-sinf",
              "-fno-builtin-cosf"] if vector_math else []
    libraries = ["-lmvec", "-lm"] if vector_math else ["-lm"]
    return {"executable": executable, "prefix": list(command[1:]), "version": version[0]
            if version else "unknown", "flags": flags, "libraries": libraries,
            "openmp": openmp, "vector_math": vector_math, "cpu": ",".join(features),
            "fast_math": fast_math}


def toolchain(fast_math: bool = False) -> dict[str, Any]:
    """The compiler, its flags (with `fast_math`: the compiler's fast math) and what it
    supports here (one clear error when absent)."""
    info = _toolchain(tuple(compiler_command()), fast_math)
    if not info["openmp"]:
        _note_single_threaded(info["executable"])
    return info


@lru_cache(maxsize=None)
def _note_single_threaded(executable: str) -> None:
    warnings.warn(f"symgrad backend='c': {executable} has no OpenMP (-fopenmp); kernels run "
                  "on one thread", RuntimeWarning, stacklevel=4)


def _cpu_features() -> list[str]:
    """The CPU features the flags use (the key records them: no library built for AVX2 runs
    on a CPU without it)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return [platform.machine()]
    for line in text.splitlines():
        if line.startswith("flags"):
            present = set(line.split(":", 1)[1].split())
            return [platform.machine()] + [f for f in ("avx2", "fma") if f in present]
    return [platform.machine()]


def _glibc_at_least(major: int, minor: int) -> bool:
    name, version = platform.libc_ver()
    if name != "glibc":
        return False
    try:
        return tuple(int(p) for p in version.split(".")[:2]) >= (major, minor)
    except ValueError:
        return False


def _run_together(commands: Sequence[list[str]]) -> list[tuple[int | None, str]]:
    """Run `commands` at the same time: (exit status, stdout) of each, (None, the error)
    for one that did not start or ran past a minute."""
    running: list[Any] = []
    for command in commands:
        try:
            running.append(subprocess.Popen(command, stdout=subprocess.PIPE,
                                            stderr=subprocess.DEVNULL, text=True))
        except OSError as error:
            running.append(error)
    results: list[tuple[int | None, str]] = []
    for process in running:
        if isinstance(process, OSError):
            results.append((None, str(process)))
            continue
        try:
            output = process.communicate(timeout=60)[0]
            results.append((process.returncode, output))
        except subprocess.TimeoutExpired as error:
            process.kill()
            process.communicate()
            results.append((None, str(error)))
    return results


def _source_digest() -> str:
    from ...cache.key import templates_dir

    digest = hashlib.sha256()
    sources = sorted(_HERE.glob("*.py")) + sorted(_HERE.parent.glob("*.py"))  # c/ and the IR
    for path in sources + sorted((templates_dir() / "c").glob("*.j2")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def key_components(fast_math: bool = False) -> dict[str, str]:
    info = toolchain(fast_math)
    return {"c_compiler": f"{info['executable']} {info['version']}",
            "c_flags": " ".join(info["flags"] + info["libraries"]),
            "c_cpu": info["cpu"], "c_backend_source": _source_digest()}


def compile_library(c_path: Path, library: Path, fast_math: bool = False) -> None:
    """Compile, then link in a second step: linked with -ffast-math, gcc 12 would add
    crtfastmath.o, whose constructor flushes subnormals to zero in the whole process."""
    info = toolchain(fast_math)
    temporary = library.with_name(f".{library.name}.{os.getpid()}.tmp")
    obj = library.with_name(f".{library.name}.{os.getpid()}.o")
    link = ["-shared", "-fopenmp"] if info["openmp"] else ["-shared"]
    steps = [[*info["flags"], "-c", str(c_path), "-o", str(obj)],
             [*link, str(obj), "-o", str(temporary), *info["libraries"]]]
    try:
        for step in steps:
            result = subprocess.run([info["executable"], *info["prefix"], *step],
                                    capture_output=True, text=True)
            if result.returncode != 0:
                raise CompilerError(f"backend='c': {info['executable']} failed on {c_path}:\n"
                                    f"{result.stderr.strip()[:4000]}\n"
                                    "(use backend='numpy' meanwhile)")
        os.replace(temporary, library)
    finally:
        for leftover in (obj, temporary):
            try:
                leftover.unlink()
            except FileNotFoundError:
                pass


# -- one signature -------------------------------------------------------------------------------
def compile_signature(fn: Callable, graph: Any, structure: Any, specs: Sequence[Any],
                      transform: Any, name: str, cache: Any, parts: Any, progress: Any) -> Any:
    from ..common import Compiled, entry_meta
    from .. import backend_key_parts

    parts = backend_key_parts(parts, NAME, transform.fast_math)
    key = parts.key
    progress.stage("load")
    directory = _directory(cache)
    loaded = _load_cached(cache, key, directory)
    if loaded is not None:
        module, source = loaded
        return Compiled(getattr(module, name), source, directory / f"{key}.py", key, graph,
                        module, from_cache=True, transform=transform)
    source, c_text, details = generate(fn, graph, structure, specs, transform, name, key,
                                       progress, parts.graph_digest)
    progress.stage("compile")
    c_path = directory / f"{key}.c"
    _write(c_path, c_text)
    compile_library(c_path, directory / f"{key}.so", transform.fast_math)
    progress.stage("write")
    meta = entry_meta(fn, name, specs, NAME, transform, parts,
                      files=[p.name for p in entry_files(directory, key)])
    if directory == cache.directory:  # every file of the entry signed, the library included
        cache.store(key, source, meta, artefacts={
            "c": c_path.read_bytes(), "so": (directory / f"{key}.so").read_bytes()})
    else:
        _write(directory / f"{key}.py", source)
    module = _import(source, directory / f"{key}.py", key)
    details["c_source"] = c_text
    return Compiled(getattr(module, name), source, directory / f"{key}.py", key, graph, module,
                    from_cache=False, details=details, transform=transform)


def generate(fn: Callable, graph: Any, structure: Any, specs: Sequence[Any], transform: Any,
             name: str, key: str, progress: Any = None, graph_digest: str | None = None
             ) -> tuple[str, str, dict[str, Any]]:
    """(launcher source, C source, details): the generated files of one signature."""
    from ..common import without_cyclic_gc
    from .. import C_NOT_YET
    from ..kernel_ir import fused_plan
    from .render import render

    info = toolchain(transform.fast_math)  # needed anyway: fail before the work, not after
    with without_cyclic_gc():
        fused = fused_plan(fn, graph, structure, specs, transform, name, key, NAME, C_NOT_YET,
                           SPEED_RULES, progress, graph_digest)
        fused.header.update(flags=" ".join(info["flags"]), fp_flag="-ffast-math"
                            if transform.fast_math else "-ffp-contract=off")
        c_text, launcher, _ = render(fused.schedule, fused.params, fused.hints,
                                     fused.out_structure, name, fused.header)
    return launcher, c_text, {"outputs": fused.outputs, "schedule": fused.schedule}


def _directory(cache: Any) -> Path:
    """The cache directory, or (when it is unusable) a private temporary one."""
    if cache.usable():
        return cache.directory
    return _scratch_directory()


@lru_cache(maxsize=None)
def _scratch_directory() -> Path:
    import tempfile

    return Path(tempfile.mkdtemp(prefix="symgrad-c-"))


def _write(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def _import(source: str, path: Path, key: str) -> Any:
    from ...cache.store import import_source
    from .check import check_launcher

    return import_source(source, path, f"symgrad_generated_{key[:20]}", check=check_launcher)


def _load_cached(cache: Any, key: str, directory: Path) -> tuple[Any, str] | None:
    if directory != cache.directory or not (directory / f"{key}.so").is_file():
        return None
    entry = cache.load_entry(key)  # the launcher, its .c and its .so: signed and verified
    if entry is None:
        return None
    if set(entry.artefacts) != {"c", "so"}:
        cache.warn_damaged(key, "its compiled library is not one of its signed files")
        return None
    source, meta = entry.source, entry.meta
    try:
        module = _import(source, directory / f"{key}.py", key)
    except Exception as error:  # a refused launcher or a library that does not load
        cache.warn_damaged(key, f"it failed to load ({error})")
        return None
    if not callable(getattr(module, str(meta.get("function")), None)):
        cache.warn_damaged(key, "its metadata names no function of its source")
        return None
    return module, source
