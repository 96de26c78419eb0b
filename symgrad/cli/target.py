"""What the code-generating commands act on: `path/to/file.py:function` at a signature.

    symgrad show model.py:loss --arg x=f64[5] --arg w=f64[5,3] --wrt w --mode grad

`--arg name=SPEC` gives a traced argument by shape and dtype (`f32[1024,784]`, `i64[8]`, `f64[]`);
`--arg name=3`, `=0.5`, `=True` or `='mean'` gives a static Python value. A function decorated
with a symgrad transform in its file brings its own mode and wrt (the options override them).
"""
from __future__ import annotations

import argparse
import ast
import importlib.util
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..api import CompiledFunction
from ..errors import ArgumentError, SymgradError
from ..specs import EXAMPLE, Spec, parse_spec

MODES = ("jit", "grad", "value_and_grad", "vjp")


class TargetError(SymgradError):
    """A file, function or argument given on the command line that cannot be used."""


def add_target_arguments(parser: argparse.ArgumentParser, with_mode: bool = True) -> None:
    parser.add_argument("target", metavar="FILE.py:FUNCTION",
                        help="the Python file and the function in it")
    parser.add_argument("--arg", action="append", default=[], metavar="NAME=SPEC",
                        help=f"one per parameter: a spec ({EXAMPLE}) or a static value "
                             "(3, 0.5, True, 'text')")
    if with_mode:
        parser.add_argument("--mode", choices=MODES, default=None,
                            help="what to generate (default: the decorator's, else "
                                 "value_and_grad)")
        parser.add_argument("--wrt", default=None, metavar="NAMES",
                            help="comma-separated parameter names or positions to "
                                 "differentiate (default: the decorator's, else the first); "
                                 "one name gives one array, several (or `w,`) a tuple")
        parser.add_argument("--backend", default="numpy",
                            help="code generator: numpy (default), c (fused C loops) or "
                                 "cuda (CUDA kernels launched through CuPy; generating needs "
                                 "neither CuPy nor a GPU); `show` prints the launcher and "
                                 "the kernels")
        parser.add_argument("--fast-math", action="store_true",
                            help="speed over exactness: unsafe algebraic folds (x - x -> 0), "
                                 "and the C compiler's fast math (off by default)")


@dataclass
class Target:
    compiled: CompiledFunction
    args: list[Any]  # specs and static values, in parameter order

    @property
    def name(self) -> str:
        return getattr(self.compiled.fn, "__name__", "function")


def resolve(args: argparse.Namespace, default_mode: str = "value_and_grad") -> Target:
    fn, decorated = load_function(args.target)
    mode = getattr(args, "mode", None) or (decorated.transform.kind if decorated else default_mode)
    wrt_text = getattr(args, "wrt", None)
    if wrt_text is not None:
        wrt: Any = tuple(int(w) if w.strip().lstrip("-").isdigit() else w.strip()
                         for w in wrt_text.split(",") if w.strip())
        if not wrt:
            raise TargetError("--wrt names no parameter")
        if len(wrt) == 1 and "," not in wrt_text:
            wrt = wrt[0]  # `--wrt w`: one array, as `sg.grad(f, wrt="w")`; `--wrt w,` a tuple
    elif decorated is not None and decorated.transform.kind != "jit":
        positions = decorated.transform.wrt
        wrt = positions[0] if decorated.transform.single else positions
    else:
        wrt = None
    backend = getattr(args, "backend", "numpy")
    fast_math = bool(getattr(args, "fast_math", False))
    if mode == "jit":
        if wrt_text is not None:
            raise TargetError("--wrt has no meaning with --mode jit")
        compiled = CompiledFunction(fn, "jit", backend=backend, fast_math=fast_math)
    else:
        compiled = CompiledFunction(fn, mode, wrt, backend=backend, fast_math=fast_math)
    values = ordered_arguments(compiled, args.arg)
    return Target(compiled.with_static(values), values)


def load_function(target: str) -> tuple[Callable, CompiledFunction | None]:
    """The function named by `file.py:function`, and its symgrad decorator if it has one."""
    path_text, sep, name = target.rpartition(":")
    if not sep or not path_text or not name:
        raise TargetError(f"expected FILE.py:FUNCTION, got {target!r}")
    path = Path(path_text)
    if not path.is_file():
        raise TargetError(f"no such file: {path_text}")
    module = _import_file(path)
    obj: Any = module
    for part in name.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            functions = sorted(n for n, v in vars(module).items()
                               if callable(v) and not n.startswith("_")
                               and getattr(v, "__module__", None) == module.__name__)
            raise TargetError(f"{path_text} has no function {name!r}"
                              f"{' (it has: ' + ', '.join(functions) + ')' if functions else ''}")
    if isinstance(obj, CompiledFunction):
        return obj.fn, obj
    if hasattr(obj, "inner") and isinstance(obj.inner, CompiledFunction):
        raise TargetError(f"{name} is a symgrad jacobian/hessian; generate code for the "
                          "function itself with --mode vjp or grad")
    if not callable(obj):
        raise TargetError(f"{path_text}:{name} is not a function")
    return obj, None


def _import_file(path: Path) -> Any:
    module_name = "symgrad_target_" + re.sub(r"\W", "_", path.stem, flags=re.ASCII)
    spec = importlib.util.spec_from_file_location(module_name, path.resolve())
    if spec is None or spec.loader is None:
        raise TargetError(f"cannot import {path} (is it a Python file?)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    sys.path.insert(0, str(path.resolve().parent))  # its sibling imports, as `python file.py`
    try:
        spec.loader.exec_module(module)
    except SymgradError:
        raise
    except BaseException as error:  # the user's module failed: say so in one line
        if isinstance(error, KeyboardInterrupt):
            raise
        raise TargetError(f"importing {path} failed: {type(error).__name__}: {error}") \
            from error
    finally:
        sys.path.remove(str(path.resolve().parent))
    return module


def ordered_arguments(compiled: CompiledFunction, given: list[str]) -> list[Any]:
    """`--arg` values in the order of the function's parameters."""
    names = compiled.params + (["cotangent"] if compiled.transform.kind == "vjp" else [])
    values: dict[str, Any] = {}
    for text in given:
        name, sep, value = text.partition("=")
        name = name.strip()
        if not sep or not name:
            raise TargetError(f"--arg {text!r}: expected NAME=SPEC, e.g. x=f64[5,3]")
        if name not in names:
            raise TargetError(f"--arg {name}: {compiled.fn.__name__} has no parameter {name!r} "
                              f"(parameters: {', '.join(compiled.params)})")
        if name in values:
            raise TargetError(f"--arg {name} is given twice")
        values[name] = parse_value(value.strip())
    missing = [n for n in compiled.params if n not in values]
    if missing:
        raise TargetError(f"missing --arg for {', '.join(missing)} (e.g. --arg {missing[0]}="
                          "f64[3])")
    return [values[n] for n in names if n in values]


def parse_value(text: str) -> Spec | bool | int | float | str | None:
    """A spec (`f32[3,4]`) or a Python literal (`3`, `0.5`, `True`, `'mean'`)."""
    if "[" in text:
        try:
            return parse_spec(text)
        except ArgumentError as error:
            raise TargetError(str(error)) from None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise TargetError(f"bad argument value {text!r}: expected a spec like {EXAMPLE}, or a "
                          "Python number, bool or quoted string") from None
    if value is not None and not isinstance(value, (bool, int, float, str)):
        raise TargetError(f"bad argument value {text!r}: static values are numbers, bools "
                          "or strings")
    return value
