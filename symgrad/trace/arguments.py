"""A call's arguments, bound to the function's parameters and flattened to leaves.

Each argument is a pytree (`pytree.py`); each leaf becomes one parameter of the generated
function, named from the argument and the leaf's path (`params_w`). Arrays are traced, Python
ints and floats are traced as weakly typed 0-d values, bools, strings, None and static
arguments are baked in. The signature key of a call is the structures and the leaves' specs.
"""
from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence, Union

import numpy as np

from ..errors import ArgumentError
from ..pytree import TreeDef, path_text, tree_flatten
from ..specs import Spec, looks_like_spec, parse_spec
from .tracer import ArgSpec, Tracer, user_site

Wrt = Union[int, str, Sequence[Union[int, str]]]
ALL = "all"  # wrt default of vjp and jvp: every positional array argument


def at_user_line() -> str:
    """` (at model.py:12)`: the user's line that called into symgrad, for messages."""
    site = user_site()
    return f" (at {site})" if site else ""


def resolve_wrt(wrt: Wrt | None, argnums: Any, default: Any) -> Any:
    if wrt is not None and argnums is not None:
        raise ArgumentError("give wrt= or argnums=, not both (argnums is JAX's spelling of "
                            f"wrt with positions){at_user_line()}")
    chosen = wrt if wrt is not None else argnums
    return default if chosen is None else chosen


@dataclass
class Prepared:
    """One call's arguments, flattened: slots (name, tree), leaves, specs, signature key."""

    slots: list[tuple[str, TreeDef]]
    keyword: list[str]  # the slots passed by keyword (keyword-only parameters)
    leaves: list[Any]
    specs: list[ArgSpec]
    slot_of_leaf: list[int]
    extra_leaves: list[Any]
    extra_specs: list[ArgSpec]
    key: tuple


class Arguments:
    """Binding and flattening, for `CompiledFunction` (which sets `fn`, `kind`, `_wrt`,
    `single`, the static argument sets and `extra_params`)."""

    fn: Callable
    kind: str

    def _read_signature(self, fn: Callable) -> None:
        try:
            signature = inspect.signature(fn)
        except (TypeError, ValueError):
            raise ArgumentError(f"cannot read the parameters of {fn!r}") from None
        self.params, self.kwonly, self.varargs, self.defaults = [], [], None, {}
        for p in signature.parameters.values():
            if p.kind is p.VAR_KEYWORD:
                raise ArgumentError(f"{self._fn_name()}: **{p.name} parameters are not "
                                    "supported; name each keyword parameter")
            if p.kind is p.VAR_POSITIONAL:
                self.varargs = p.name
                continue
            (self.kwonly if p.kind is p.KEYWORD_ONLY else self.params).append(p.name)
            if p.default is not inspect.Parameter.empty:
                self.defaults[p.name] = p.default

    def _fn_name(self) -> str:
        return getattr(self.fn, "__name__", "the function")

    def _check_wrt(self, item: Any) -> int | str:
        if isinstance(item, str):
            if item in self.params:
                return self.params.index(item)
            if item in self.kwonly:
                return item
            raise ArgumentError(f"wrt={item!r} names no parameter of {self._fn_name()}"
                                f"({', '.join(self.params + self.kwonly)})")
        if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            if self.varargs is None and not -len(self.params) <= item < len(self.params):
                raise ArgumentError(f"wrt={item} is out of range for {len(self.params)} "
                                    f"parameters ({', '.join(self.params)})")
            if item < 0 and self.varargs is None:
                item = item % len(self.params)
            return int(item)
        raise ArgumentError(f"wrt entries are parameter names or positions, not {item!r}")

    def _extra_names(self) -> list[str]:
        if self.kind == "vjp":
            return ["cotangent"]
        if self.kind in ("jvp", "hvp"):
            if self._wrt == ALL:
                raise ArgumentError(f"{self.kind} needs wrt")
            if len(self._wrt) == 1:
                return ["tangent"]
            return [f"tangent_{self.params[p] if isinstance(p, int) else p}" for p in self._wrt]
        return []

    def _prepare(self, args: tuple, kwargs: dict, specs_allowed: bool = False) -> Prepared:
        positional, keyword, extras = self._bind(args, kwargs)
        slots, leaves, specs, slot_of_leaf, key = [], [], [], [], []
        used: set[str] = set(self.params) | set(self.kwonly)
        wrt_slots = self._wrt_slots(len(positional), [n for n, _ in keyword])
        for index, (name, value) in enumerate(positional + keyword):
            static = name in self.static_argnames or (
                index < len(positional) and (index in self.static_argnums
                                             or index - len(positional) in self.static_argnums))
            if static and index in wrt_slots:
                raise ArgumentError(f"{name!r} is both static and differentiated (wrt)"
                                    f"{at_user_line()}")
            values, tree = tree_flatten(value, _is_spec)
            slots.append((name, tree))
            key.append(tree)
            for path, leaf in zip(tree.paths(), values):
                leaf_name = name if tree.is_leaf else _unique(_leaf_name(name, path), used)
                where = f"{name}{path_text(path)}"
                leaf, spec = self._leaf(leaf, leaf_name, where, index in wrt_slots,
                                        specs_allowed, static)
                leaves.append(leaf)
                specs.append(spec)
                slot_of_leaf.append(index)
                key.append(_spec_key(spec))
        taken = {s.name for s in specs}
        if len(taken) != len(specs):
            raise ArgumentError("two arguments flatten to the same name: "
                                f"{', '.join(sorted(s.name for s in specs))}")
        extra_leaves, extra_specs = [], []
        for name, value in extras:
            values, tree = tree_flatten(value, _is_spec)
            key.append(tree)
            for path, leaf in zip(tree.paths(), values):
                leaf_name = name if tree.is_leaf else _leaf_name(name, path)
                leaf, spec = self._leaf(leaf, leaf_name, f"{name}{path_text(path)}", True,
                                        specs_allowed)
                if spec.name in taken:
                    spec = ArgSpec(spec.name + "_", spec.shape, spec.dtype)
                extra_leaves.append(leaf)
                extra_specs.append(spec)
                key.append(_spec_key(spec))
        key.append(tuple(n for n, _ in keyword))
        return Prepared(slots, [n for n, _ in keyword], leaves, specs, slot_of_leaf,
                        extra_leaves, extra_specs, tuple(key))

    def _bind(self, args: tuple, kwargs: dict) -> tuple[list, list, list]:
        """(name, value) of each positional slot, keyword-only slot and transform extra."""
        args, extras = list(args), {}
        for name in self.extra_params:
            if name in kwargs:
                extras[name] = kwargs.pop(name)
        missing_extras = [n for n in self.extra_params if n not in extras]
        if missing_extras:
            if len(args) < len(missing_extras):
                raise ArgumentError(f"{self!r} is missing arguments: {', '.join(missing_extras)}")
            for name, value in zip(missing_extras, args[len(args) - len(missing_extras):]):
                extras[name] = value
            del args[len(args) - len(missing_extras):]
        names = list(self.params)
        if len(args) > len(names) and self.varargs is None:
            every = names + self.extra_params
            raise ArgumentError(f"{self!r} takes {len(every)} arguments ({', '.join(every)}), "
                                f"got {len(args) + len(self.extra_params)}")
        bound = dict(zip(names, args))
        rest = args[len(names):]
        keyword = {}
        for name, value in kwargs.items():
            if name in self.kwonly:
                keyword[name] = value
            elif name in names:
                if name in bound:
                    raise ArgumentError(f"{self!r} got two values for {name!r}")
                bound[name] = value
            else:
                raise ArgumentError(f"{self!r} has no parameter {name!r}")
        for name, default in self.defaults.items():
            if name not in self.kwonly:  # keyword-only defaults are left to Python
                bound.setdefault(name, default)
        missing = [n for n in names if n not in bound] + [
            n for n in self.kwonly if n not in keyword and n not in self.defaults]
        if missing:
            raise ArgumentError(f"{self!r} is missing arguments: {', '.join(missing)}")
        given = len(args) + sum(n in kwargs for n in names)
        while len(names) > given and bound[names[-1]] is np._NoValue and names[-1] not in kwargs:
            names.pop()  # numpy's "not given" default (np.sum's keepdims): left to numpy
        positional = [(n, bound[n]) for n in names]
        positional += [(f"{self.varargs}_{i}", v) for i, v in enumerate(rest)]
        return (positional, [(n, keyword[n]) for n in self.kwonly if n in keyword],
                [(n, extras[n]) for n in self.extra_params])

    def _wrt_slots(self, positional: int, keywords: Sequence[str]) -> list[int]:
        """Slot indices of the differentiated arguments (keyword-only ones after positional)."""
        if self._wrt == ALL:
            return list(range(positional))
        slots = []
        for item in self._wrt:
            if isinstance(item, str):
                if item not in list(keywords):
                    raise ArgumentError(f"wrt={item!r}: the keyword-only argument {item!r} "
                                        "was not passed")
                slots.append(positional + list(keywords).index(item))
            else:
                if not -positional <= item < positional:
                    raise ArgumentError(f"wrt={item} is out of range for {positional} "
                                        "positional arguments")
                slots.append(item % positional)
        return slots

    def _leaf(self, value: Any, name: str, where: str, differentiated: bool,
              specs_allowed: bool, static: bool = False) -> tuple[Any, ArgSpec]:
        """A leaf as passed to the generated function, and what tracing receives for it.

        Python ints and floats are traced as weakly typed 0-d values (one compilation for
        every value, as in JAX) unless the argument is static; bools, strings and None are
        static values baked into the code."""
        if static:
            if isinstance(value, (np.ndarray, Tracer)):
                raise ArgumentError(f"static argument {where!r} must be a Python value "
                                    f"(a number, bool, string or None), not an array")
            return value, ArgSpec(name, None, None, value)
        if isinstance(value, Tracer):
            return value, ArgSpec(name, tuple(value.shape), value.dtype.name)
        if type(value) is np.ndarray:
            return value, ArgSpec(name, value.shape, value.dtype.name)
        if isinstance(value, str) and specs_allowed and looks_like_spec(value):
            value = parse_spec(value)
        if isinstance(value, Spec):
            if not specs_allowed:
                raise ArgumentError(f"argument {where!r} is a spec ({value}): specs describe "
                                    "arguments for .lower() and explain_miss(); calls need "
                                    "arrays")
            return value, ArgSpec(name, tuple(value.shape), np.dtype(value.dtype).name)
        if isinstance(value, bool) and not differentiated:
            return value, ArgSpec(name, None, None, value)
        if type(value) in (int, float) and not differentiated:
            if type(value) is int and not -2**63 <= value < 2**63:
                return value, ArgSpec(name, None, None, value)  # numpy would need an object
            array = np.asarray(value, np.float64 if type(value) is float else np.int64)
            return array, ArgSpec(name, (), array.dtype.name, weak=True)
        if isinstance(value, (str, type(None))):
            return value, ArgSpec(name, None, None, value)
        if isinstance(value, np.ma.MaskedArray):
            raise ArgumentError(f"argument {where!r} is a masked array: symgrad would drop its "
                                "mask; pass np.ma.filled(x, fill) or the data and the mask")
        if hasattr(value, "__cuda_array_interface__"):  # a CuPy array: stays on its GPU
            dtype = np.dtype(value.dtype)
            if dtype.kind not in "biuf":
                raise ArgumentError(f"argument {where!r}: arrays of dtype {dtype} are not "
                                    "supported")
            return value, ArgSpec(name, tuple(value.shape), dtype.name)
        array = np.asarray(value)
        if array.dtype.kind not in "biuf":
            raise ArgumentError(f"argument {where!r}: arrays of dtype {array.dtype} are not "
                                "supported")
        return array, ArgSpec(name, array.shape, array.dtype.name)

    def specs_for(self, *args: Any) -> list[ArgSpec]:
        """What tracing receives for these arguments (arrays, specs or static values)."""
        if self.kind == "vjp" and len(args) == len(self.params):
            args = args + (None,)
        return self._prepare(tuple(args), {}, specs_allowed=True).specs


def _at_specs(prepared: Prepared, specs: Sequence[ArgSpec]) -> Prepared:
    """The same call traced at other specs (another signature, for explaining a miss)."""
    import dataclasses

    if len(specs) != len(prepared.specs):
        raise ArgumentError("the other signature has a different number of arguments")
    return dataclasses.replace(prepared, specs=list(specs))


def _as_tuple(value: Any, what: str, kind: type) -> tuple:
    items = (value,) if isinstance(value, kind) else tuple(value or ())
    if not all(isinstance(v, kind) and not isinstance(v, bool) for v in items):
        raise ArgumentError(f"{what} takes {kind.__name__}s, got {value!r}")
    return items


def _is_spec(value: Any) -> bool:
    return isinstance(value, Spec)


_NOT_NAME = re.compile(r"\W+", re.ASCII)


def _leaf_name(name: str, path: tuple) -> str:
    """`params_w_0` for params['w'][0]: an identifier made of the path's keys."""
    parts = [name] + [_NOT_NAME.sub("_", str(k)).strip("_") or "key" for k in path]
    return "_".join(parts)[:80]


def _unique(name: str, used: set[str]) -> str:
    """`name`, or `name_2`, `name_3`...: keys that sanitise alike ('a-b', 'a_b') stay apart."""
    candidate, n = name, 1
    while candidate in used:
        n += 1
        candidate = f"{name}_{n}"
    used.add(candidate)
    return candidate


def _spec_key(spec: ArgSpec) -> tuple:
    if spec.shape is None:
        # repr, not the value: -0.0 == 0.0 and nan != nan, yet each is its own program
        return ("static", type(spec.static_value).__name__, repr(spec.static_value))
    return (tuple(spec.shape), np.dtype(spec.dtype))


def check_extras(function: Any, expected: Sequence[ArgSpec], given: Sequence[ArgSpec]) -> None:
    """A cotangent or tangent must match what it pairs with: one clear error otherwise."""
    where = at_user_line()
    if len(expected) != len(given):
        raise ArgumentError(f"{function!r}: expected {len(expected)} "
                            f"{'cotangent' if function.kind == 'vjp' else 'tangent'} "
                            f"array(s) ({', '.join(e.name for e in expected)}), got "
                            f"{len(given)}{where}")
    for e, g in zip(expected, given):
        if g.shape is None or tuple(g.shape) != tuple(e.shape) or g.dtype != e.dtype:
            got = "a static value" if g.shape is None else f"{g.dtype}{list(g.shape)}"
            raise ArgumentError(f"{function!r}: {e.name} must be {e.dtype}{list(e.shape)} like "
                                f"the value it pairs with, got {got}{where}")
