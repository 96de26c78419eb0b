"""Why a call missed the disk cache: its key's components against the nearest stored entry.

Each entry's metadata records the components of its key (`key.py`) and which user function it
belongs to. A call is traced (no SymPy), its components computed, and the entries of the same
function compared: the one with the fewest differing components is the nearest, and the
differing components say why the call missed (an argument shape, a closure value, an edit,
the symgrad or SymPy version, ...).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from .cache import DiskCache, Entry
from .compiler import Transform, _check_transform, function_id, generated_name
from .key import COMPONENTS, KeyParts, key_parts
from .trace import ArgSpec, trace_function

# Components short enough to show old and new values side by side.
_SHOWN = {"inputs", "transform", "backend", "symgrad", "numpy", "sympy", "jinja2"}


def explain_miss(fn: Callable, specs: Sequence[ArgSpec], transform: Transform, backend: str,
                 cache: DiskCache, in_memory: bool = False,
                 trace: Callable[[], tuple] | None = None) -> str:
    if trace is None:
        graph, structure = trace_function(fn, specs)
    else:
        graph, structure, transform = trace()
    _check_transform(graph, structure, specs, transform)
    parts = key_parts(graph, f"{generated_name(fn, transform)}:{transform!r}", backend)
    return explain_parts(parts, function_id(fn), cache, in_memory)


def explain_parts(parts: KeyParts, fid: str, cache: DiskCache, in_memory: bool = False) -> str:
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
    differences = _differences(parts, nearest)
    lines = [f"miss: the nearest entry of {fid} is {nearest.key[:16]} "
             f"({len(same_function)} entr{'y' if len(same_function) == 1 else 'ies'} of this "
             f"function in {cache.directory}); it differs in:"]
    stored = nearest.meta.get("components", {})
    for name in differences:
        meaning = COMPONENTS.get(name, name)
        if name in _SHOWN:
            lines.append(f"  {name}: {meaning}: was {_shown(stored.get(name))}, "
                         f"now {_shown(parts.components.get(name))}")
        else:
            lines.append(f"  {name}: {meaning}")
    return "\n".join(lines)


def _differences(parts: KeyParts, entry: Entry) -> list[str]:
    stored: Any = entry.meta.get("components")
    if not isinstance(stored, dict):
        return sorted(COMPONENTS)  # an entry without components (older symgrad) differs in all
    return parts.differences(stored)


def _shown(value: Any) -> str:
    return "(none)" if value is None else str(value)
