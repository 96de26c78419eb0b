"""Why a call missed the disk cache: its key's components against the nearest stored entry.

Each entry's metadata records the components of its key (`key.py`) and which user function it
belongs to. A call is traced (no SymPy), its components computed, and the entries of the same
function compared: the one with the fewest differing components is the nearest, and the
differing components say why the call missed (an argument shape, a closure value, an edit,
the symgrad or SymPy version, ...).
"""
from __future__ import annotations

import ast
import re
from typing import Any, Callable, Sequence

from ..cache.store import DiskCache, Entry
from ..autodiff.transforms import Transform
from ..backends.common import function_id, generated_name, signature_text
from ..compiler import check_transform
from ..backends import backend_key_parts, choose_backend
from ..cache.key import COMPONENTS, KeyParts, key_parts
from ..specs import looks_like_spec, parse_spec
from ..trace.tracer import ArgSpec, trace_function

# Components short enough to show old and new values side by side.
_SHOWN = {"inputs", "transform", "backend", "symgrad", "numpy", "sympy", "jinja2"}


def explain_miss(fn: Callable, specs: Sequence[ArgSpec], transform: Transform, backend: str,
                 cache: DiskCache, in_memory: bool = False,
                 trace: Callable[[Sequence[ArgSpec]], tuple] | None = None) -> str:
    """`trace(specs)`, when given, traces the function at those specs and returns (graph,
    structure, transform); else `fn` is traced as it is, under `transform`."""
    name = generated_name(fn, transform)

    def parts_at(at: Sequence[ArgSpec]) -> KeyParts:
        if trace is None:
            graph, structure = trace_function(fn, at)
            at_transform = transform
        else:
            graph, structure, at_transform = trace(at)
        check_transform(graph, structure, at, at_transform)
        chosen = choose_backend(backend, graph)
        return backend_key_parts(key_parts(graph, f"{name}:{at_transform!r}", chosen), chosen,
                                 at_transform.fast_math)

    return explain_parts(parts_at(specs), function_id(fn), cache, in_memory,
                         transform.describe([s.name for s in specs]), specs, parts_at)


def explain_parts(parts: KeyParts, fid: str, cache: DiskCache, in_memory: bool = False,
                  transform_text: str | None = None, specs: Sequence[ArgSpec] = (),
                  parts_at: Callable[[Sequence[ArgSpec]], KeyParts] | None = None) -> str:
    """Why `parts` misses `cache`. With `parts_at` (the call traced at other arguments), a
    different signature is one difference, named per argument, and not also reported as the
    operations and constants that the new shapes changed."""
    key = parts.key
    memory = " (and already loaded in this process)" if in_memory else ""
    if not cache.usable():
        return (f"no disk cache: {cache.directory} is not usable (see the warning above); "
                f"compilations stay in memory{memory}")
    if cache.meta_path(key).exists():
        return f"hit: entry {key[:16]} in {cache.directory}{memory}"
    same_function = [e for e in cache.entries() if e.meta.get("function_id") == fid]
    if not same_function:
        return (f"miss: no entry of {fid} in {cache.directory} (never compiled with this "
                "cache, or cleared or pruned since)")
    nearest = min(same_function, key=lambda e: (len(_differences(parts, e)), -e.last_used))
    lines = [f"miss: the nearest entry of {fid} is {nearest.key[:16]} "
             f"({len(same_function)} entr{'y' if len(same_function) == 1 else 'ies'} of this "
             f"function in {cache.directory}); it differs in:"]
    stored = nearest.meta.get("components", {})
    differences = _differences(parts, nearest)
    old_specs = _stored_specs(nearest.meta.get("signature"), specs)
    if old_specs is not None and parts_at is not None \
            and _signature(specs) != nearest.meta.get("signature"):
        try:
            at_old = parts_at(old_specs)
        except Exception:  # the function no longer traces at the old signature: show it all
            at_old = None
        if at_old is not None:
            lines += _argument_lines(old_specs, specs)
            differences = [n for n in _differences(at_old, nearest) if n != "inputs"]
    for name in differences:
        meaning = COMPONENTS.get(name, name)
        if name == "transform" and transform_text is not None:
            lines.append(f"  transform: {meaning}: was {nearest.meta.get('transform', '?')}, "
                         f"now {transform_text}")
        elif name in _SHOWN:
            lines.append(f"  {name}: {meaning}: was {_shown(stored.get(name))}, "
                         f"now {_shown(parts.components.get(name))}")
        else:
            lines.append(f"  {name}: {meaning}")
    if len(lines) == 1:
        lines.append("  nothing that this symgrad records (an entry written by another version "
                     "of symgrad's cache)")
    return "\n".join(lines)


def _signature(specs: Sequence[ArgSpec]) -> str:

    return signature_text(specs)


def _stored_specs(signature: Any, specs: Sequence[ArgSpec]) -> list[ArgSpec] | None:
    """The entry's call signature (`x=f64[5], n=3`) as ArgSpecs, in the current parameter
    order; None where it cannot be read back (or names other parameters)."""
    if not isinstance(signature, str):
        return None
    values = {}
    for item in re.split(r", (?=[A-Za-z_]\w*=)", signature) if signature else []:
        name, _, text = item.partition("=")
        if looks_like_spec(text):
            spec = parse_spec(text)
            values[name] = ArgSpec(name, tuple(spec.shape), str(spec.dtype))
        else:
            try:
                values[name] = ArgSpec(name, None, None, ast.literal_eval(text))
            except (ValueError, SyntaxError):
                return None
    if sorted(values) != sorted(s.name for s in specs):
        return None
    return [values[s.name] for s in specs]


def _argument_lines(old: Sequence[ArgSpec], new: Sequence[ArgSpec]) -> list[str]:
    """One line per argument whose shape, dtype or static value differs."""
    lines = []
    for before, after in zip(old, new):
        was, now = _signature([before]).partition("=")[2], _signature([after]).partition("=")[2]
        if was != now:
            kind = "static value" if after.shape is None or before.shape is None else \
                "shape or dtype"
            lines.append(f"  argument {after.name}: its {kind}: was {was}, now {now}")
    return lines


def _differences(parts: KeyParts, entry: Entry) -> list[str]:
    stored: Any = entry.meta.get("components")
    if not isinstance(stored, dict):
        return sorted(COMPONENTS)  # an entry without components (older symgrad) differs in all
    return parts.differences(stored)


def _shown(value: Any) -> str:
    return "(none)" if value is None else str(value)
