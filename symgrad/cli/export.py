"""Standalone export: the generated module written where you want it, plus an optional pytest
file that checks it against central finite differences with numpy alone.

The exported module is the generated source, byte for byte what the cache holds: one function
named after the user's function (`loss_value_and_grad`), taking the same positional arguments
and returning what the transform returns. It imports numpy only.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..api import CompiledFunction
from ..autodiff.transforms import Transform
from ..errors import ArgumentError
from ..schedule.sanitise import comment_text, is_safe_identifier
from ..specs import Spec

EXPORT_TEST_TEMPLATE = "export_test.py.j2"


@dataclass
class Exported:
    """What `export` wrote."""

    module: Path  # the standalone module
    function: str  # the name of its function
    test: Path | None = None  # the pytest file, when asked for
    forward: Path | None = None  # the value-only module the test differentiates numerically


def export(compiled: CompiledFunction, args: Sequence[Any], directory: str | os.PathLike,
           test: bool = False) -> Exported:
    """Write `compiled`'s generated module for `args` (arrays or specs) into `directory`.

    With `test=True`, also write `test_<module>.py` beside it: it draws inputs of the
    signature's shapes and checks every derivative against central finite differences of the
    value (from the module itself, or from a value-only module exported beside it).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    compiled = compiled.with_static(args)
    args = complete_arguments(compiled, args)
    lowered = compiled.lower(*args)
    name = lowered.function.__name__
    if compiled.backend in ("c", "cuda"):  # the launcher and its kernels, compiled on first use
        suffix = {"c": ".c", "cuda": ".cu"}[compiled.backend]
        module_path = _write(directory / f"{name}_{compiled.backend}.py", lowered.source)
        _write(directory / f"{name}_{compiled.backend}{suffix}",
               lowered.path.with_suffix(suffix).read_text())
        if test:
            raise ArgumentError("--test is for the numpy backend's modules")
        return Exported(module_path, name)
    module_path = _write(directory / f"{name}.py", lowered.source)
    exported = Exported(module_path, name)
    if not test:
        return exported
    transform = compiled.transform
    if transform.kind == "jit" or transform.order != 1:
        raise ArgumentError("a finite-difference test needs a derivative: export with mode "
                            "grad, value_and_grad or vjp")
    forward_name = None
    if transform.kind == "grad":
        forward = CompiledFunction(compiled.fn, "jit", backend=compiled.backend,
                                   fast_math=compiled.fast_math)
        forward_lowered = forward.lower(*args[:len(compiled.params)])
        forward_name = forward_lowered.function.__name__
        exported.forward = _write(directory / f"{forward_name}.py", forward_lowered.source)
    exported.test = _write(directory / f"test_{name}.py",
                           render_test(compiled, args, name, forward_name))
    return exported


def render_test(compiled: CompiledFunction, args: Sequence[Any], name: str,
                forward_name: str | None) -> str:
    """The pytest file's text: the template fills in pre-printed literals only; names are
    Python string literals (`repr`) in code and pass the one sanitiser in comments."""
    from ..backends.numpy.render import environment

    params = compiled.params
    arguments = []
    for param, value in zip(params, args):
        spec = _as_spec(value)
        if spec is None:
            arguments.append((repr(param), "None", "None", python_literal(value)))
        else:
            arguments.append((repr(param), repr(tuple(spec.shape)), f"np.{spec.dtype}", "None"))
    cotangent = None
    if compiled.transform.kind == "vjp":
        spec = _as_spec(args[len(params)])
        cotangent = (repr(tuple(spec.shape)), f"np.{spec.dtype}")
    transform: Transform = compiled.transform
    for identifier in (name, forward_name):
        if identifier is not None and not is_safe_identifier(identifier):
            raise ArgumentError(f"cannot export under the name {identifier!r}")
    return environment().get_template(EXPORT_TEST_TEMPLATE).render(
        module=name, function=name, forward=forward_name, kind=transform.kind,
        single=transform.single, wrt=comment_text(", ".join(params[p] for p in transform.wrt)),
        wrt_positions=list(transform.wrt), arguments=arguments, cotangent=cotangent,
        version=_version())


def python_literal(value: Any) -> str:
    """A static argument as Python source that evaluates to it (never user text as code)."""
    if isinstance(value, float) and not np.isfinite(value):
        return "float('nan')" if np.isnan(value) else f"{'-' if value < 0 else ''}float('inf')"
    if value is None or isinstance(value, (bool, int, float, str)):
        return repr(value)
    raise ArgumentError(f"static argument {value!r} cannot be written into a test file")


def complete_arguments(compiled: CompiledFunction, args: Sequence[Any]) -> list[Any]:
    """`args` with the vjp's cotangent spec added (shaped like the output) when left out."""
    args = list(args)
    if compiled.transform.kind == "vjp" and len(args) == len(compiled.params):
        from ..trace.tracer import trace_function

        graph, structure = trace_function(compiled.fn, compiled.specs_for(*args))
        if not isinstance(structure, int):
            raise ArgumentError("vjp supports functions that return one array")
        out = graph.outputs[structure]
        args.append(Spec(tuple(out.shape), out.dtype))
    return args


def _as_spec(value: Any) -> Spec | None:
    from ..specs import parse_spec

    if isinstance(value, Spec):
        return value
    if isinstance(value, str):
        return parse_spec(value)
    if isinstance(value, (bool, int, float)) or value is None:
        return None
    array = np.asarray(value)
    return Spec(tuple(array.shape), array.dtype.name)


def _version() -> str:
    from .._version import __version__

    return __version__


def _write(path: Path, text: str) -> Path:
    """Write atomically: a reader never sees half a module."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
    return path
