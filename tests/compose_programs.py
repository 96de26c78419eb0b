"""Random small numpy programs, written once, run through symgrad and torch.func.

A program is a list of steps over 1-3 input arrays (0-d arrays and size-1 axes included):
elementwise ops, reductions, matmul, broadcasting, indexing, np.where, reshapes and
transposes. Each step is one template rendered twice -- numpy source for symgrad, torch
source for the oracle -- so the two functions cannot drift apart, and a failing program
prints as readable source (`Program.source`). Steps are accepted only where the numpy
evaluation is finite, small and away from kinks (|a - b| of a maximum, a where's condition),
so that conventions at ties never decide a comparison.

`CHECKS` maps a name to a check: a transform or a composition of two or three, run on
symgrad and on torch.func (float64), results compared leaf by leaf (rtol 1e-9), every result
leaf checked writeable, not sharing memory with an input or with another result, inputs
checked unmodified, and in float32 every result leaf float32. Used by
tests/test_transforms_campaign.py (a fixed-seed slice) and tools/compose_campaign.py (long runs).
"""
from __future__ import annotations

import dataclasses
from collections import namedtuple
from typing import Any, Callable

import numpy as np
import torch
import torch.func as tf

import symgrad as sg

torch.set_default_dtype(torch.float64)

SHAPES = [(), (1,), (3,), (2, 3), (3, 1), (1, 3), (2, 1, 3), (2, 3, 2)]
RTOL, ATOL = 1e-9, 1e-11

# name: (arity, numpy template, torch template, parameter maker (rng, *ndims) -> dict or None)
# Templates use {a}, {b} for operands and the parameter names.
UNARY = {
    "sin": ("np.sin({a})", "torch.sin({a})"),
    "cos": ("np.cos({a})", "torch.cos({a})"),
    "tanh": ("np.tanh({a})", "torch.tanh({a})"),
    "exp_tanh": ("np.exp(np.tanh({a}))", "torch.exp(torch.tanh({a}))"),
    "log1p_sq": ("np.log1p({a} * {a})", "torch.log1p({a} * {a})"),
    "sqrt": ("np.sqrt({a} * {a} + 1.0)", "torch.sqrt({a} * {a} + 1.0)"),
    "square": ("{a} ** 2", "{a} ** 2"),
    "cube": ("{a} ** 3", "{a} ** 3"),
    "scale": ("-2.5 * {a}", "-2.5 * {a}"),
    "recip": ("1.0 / (1.0 + {a} * {a})", "1.0 / (1.0 + {a} * {a})"),
    "abs": ("np.abs({a})", "torch.abs({a})"),
    "relu_c": ("np.maximum({a}, 0.1)", "torch.clamp({a}, min=0.1)"),
    "sigmoid": ("1.0 / (1.0 + np.exp(-{a}))", "torch.sigmoid({a})"),
    "softplus": ("np.log1p(np.exp({a}))", "torch.log1p(torch.exp({a}))"),
    "clip": ("np.clip({a}, -0.5, 0.5)", "torch.clamp({a}, -0.5, 0.5)"),
    "const_mul": ("{a} * {c}", "{a} * {c}"),
    "const_matmul": ("{a} @ {c}", "{a} @ {c}"),
}
BINARY = {
    "add": ("{a} + {b}", "{a} + {b}"),
    "sub": ("{a} - {b}", "{a} - {b}"),
    "mul": ("{a} * {b}", "{a} * {b}"),
    "div": ("{a} / (1.5 + {b} * {b})", "{a} / (1.5 + {b} * {b})"),
    "maximum": ("np.maximum({a}, {b})", "torch.maximum({a}, {b})"),
    "where": ("np.where({a} > 0.2, {a}, {b} * 2.0)", "torch.where({a} > 0.2, {a}, {b} * 2.0)"),
    "matmul": ("{a} @ {b}", "{a} @ {b}"),
    "concat": ("np.concatenate([{a}, {b}], axis={axis})", "torch.cat([{a}, {b}], dim={axis})"),
    "stack": ("np.stack([{a}, {b}], axis={axis})", "torch.stack([{a}, {b}], dim={axis})"),
}
STRUCTURAL = {
    "sum": ("np.sum({a}, axis={axis}, keepdims={keep})",
            "torch.sum({a}, dim={axis}, keepdim={keep})"),
    "sum_all": ("np.sum({a})", "torch.sum({a})"),
    "mean": ("np.mean({a}, axis={axis}, keepdims={keep})",
             "torch.mean({a}, dim={axis}, keepdim={keep})"),
    "max": ("np.max({a}, axis={axis})", "torch.amax({a}, dim={axis})"),
    "transpose": ("np.transpose({a}, {perm})", "{a}.permute({perm})"),
    "T": ("{a}.T", "{a}.T"),
    "reshape": ("{a}.reshape({shape})", "{a}.reshape({shape})"),
    "newaxis": ("{a}[None]", "{a}[None]"),
    "newaxis_last": ("{a}[..., None]", "{a}[..., None]"),
    "index": ("{a}[{i}]", "{a}[{i}]"),
    "index_last": ("{a}[..., {i}]", "{a}[..., {i}]"),
    "slice": ("{a}[1:]", "{a}[1:]"),
    "step": ("{a}[::2]", "{a}[::2]"),
    "reverse": ("{a}[::-1]", "torch.flip({a}, (0,))"),
    "take": ("{a}[np.array({idx})]", "{a}[torch.tensor({idx})]"),
    "broadcast_to": ("np.broadcast_to({a}, {shape})", "{a}.expand({shape})"),
}


def _params(name: str, rng: np.random.Generator, shapes: list[tuple]) -> dict | None:
    """Random static parameters for a step on operands of these shapes (None: not here)."""
    s = shapes[0]
    nd = len(s)
    if name in ("sum", "mean", "max"):
        if nd == 0:
            return None
        if nd >= 2 and rng.random() < 0.3 and name != "max":
            axes = tuple(sorted(rng.choice(nd, size=2, replace=False).tolist()))
        else:
            axes = int(rng.integers(-nd, nd))
        return {"axis": axes, "keep": bool(rng.random() < 0.4)}
    if name == "transpose":
        return {"perm": tuple(rng.permutation(nd).tolist())} if nd >= 2 else None
    if name == "T":
        return {} if nd == 2 else None
    if name == "reshape":
        size = int(np.prod(s))
        options = [(-1,), (size, 1), (1, size), (1,) * nd + (size,) if nd else (1,)]
        if size % 2 == 0 and size > 2:
            options.append((2, size // 2))
        return {"shape": options[int(rng.integers(len(options)))]}
    if name in ("index", "index_last", "slice", "step", "reverse", "take"):
        if nd == 0:
            return None
        n = s[0] if name != "index_last" else s[-1]
        if name in ("slice",) and n < 2:
            return None
        i = int(rng.integers(-n, n))
        idx = rng.integers(0, n, size=int(rng.integers(1, 4))).tolist()
        return {"i": i, "idx": idx}
    if name == "broadcast_to":
        return {"shape": (2,) + tuple(s)}
    if name in ("concat", "stack"):
        if nd == 0 and name == "concat":
            return None
        return {"axis": int(rng.integers(-nd, nd)) if name == "concat" else
                int(rng.integers(-(nd + 1), nd + 1))}
    if name == "const_matmul":
        return {} if nd >= 1 else None
    return {}


def _near_kink(name: str, values: list[np.ndarray]) -> bool:
    """True where a comparison (a tie, a boundary) would decide the derivative."""
    a = np.asarray(values[0])
    if name == "abs":
        return bool(np.any(np.abs(a) < 1e-3))
    if name == "relu_c":
        return bool(np.any(np.abs(a - 0.1) < 1e-3))
    if name == "clip":
        return bool(np.any(np.abs(np.abs(a) - 0.5) < 1e-3))
    if name == "where":
        return bool(np.any(np.abs(a - 0.2) < 1e-3))
    if name == "maximum":
        a, b = np.broadcast_arrays(a, values[1])
        return bool(np.any(np.abs(a - b) < 1e-3))
    return False


def _max_has_tie(a: np.ndarray, axis: int) -> bool:
    ordered = np.sort(a, axis=axis)
    if a.shape[axis] < 2:
        return False
    top = np.take(ordered, [-1, -2], axis=axis)
    return bool(np.any(np.abs(np.take(top, 0, axis) - np.take(top, 1, axis)) < 1e-3))


@dataclasses.dataclass
class Program:
    shapes: list[tuple]
    lines: list[tuple[str, str]]  # (numpy line, torch line) of the body
    constants: dict[str, np.ndarray]
    out_shape: tuple
    stop_line: int | None = None  # the body line whose value is wrapped in stop_gradient
    second: str = "x0"  # a value the two-output function `g2` also returns

    @property
    def n(self) -> int:
        return len(self.shapes)

    def _render(self, torch_side: bool, scalar: bool, stop: bool, pair: bool = False) -> str:
        args = ", ".join(f"x{i}" for i in range(self.n))
        out = [f"def {'f' if scalar else 'g2' if pair else 'g'}({args}):"]
        for k, (np_line, t_line) in enumerate(self.lines):
            line = t_line if torch_side else np_line
            if stop and k == self.stop_line:
                target, expr = line.split(" = ", 1)
                line = (f"{target} = ({expr}).detach()" if torch_side
                        else f"{target} = sg.stop_gradient({expr})")
            out.append("    " + line)
        last = f"v{len(self.lines) - 1}" if self.lines else "x0"
        if scalar:
            mod = "torch" if torch_side else "np"
            out.append(f"    return {mod}.sum({mod}.sin({last}) * CW)")
        elif pair:
            out.append(f"    return {last}, {{'s': {self.second} * 2.0}}")
        else:
            out.append(f"    return {last}")
        return "\n".join(out) + "\n"

    def source(self, stop: bool = False) -> str:
        """The numpy program (vector-valued g and scalar f), as a reproducer prints it."""
        consts = "".join(f"{k} = np.array({v.tolist()!r}, dtype=DTYPE)\n"
                         for k, v in self.constants.items())
        return (f"# inputs: {self.shapes}\n" + consts + self._render(False, False, stop)
                + self._render(False, True, stop))

    def functions(self, dtype: Any = np.float64, stop: bool = False) -> dict[str, Callable]:
        """{'g', 'g2', 'f'} in numpy (constants of `dtype`), {'gt', 'g2t', 'ft'} in torch
        (float64). g2 returns (g's value, {'s': another value})."""
        ns_np: dict[str, Any] = {"np": np, "sg": sg}
        ns_np.update({k: v.astype(dtype) for k, v in self.constants.items()})
        ns_t: dict[str, Any] = {"torch": torch}
        ns_t.update({k: torch.tensor(v) for k, v in self.constants.items()})
        for scalar, pair in ((False, False), (True, False), (False, True)):
            exec(compile(self._render(False, scalar, stop, pair), "<program>", "exec"), ns_np)
            exec(compile(self._render(True, scalar, stop, pair), "<torch program>", "exec"), ns_t)
        return {"g": ns_np["g"], "f": ns_np["f"], "gt": ns_t["g"], "ft": ns_t["f"],
                "g2": ns_np["g2"], "g2t": ns_t["g2"]}


def generate(rng: np.random.Generator) -> tuple[Program, list[np.ndarray]]:
    """One random program and its float64 inputs."""
    n = int(rng.integers(1, 4))
    shapes = [SHAPES[int(rng.integers(len(SHAPES)))] for _ in range(n)]
    inputs = [rng.normal(size=s) for s in shapes]
    values = list(inputs)
    names = [f"x{i}" for i in range(n)]
    lines: list[tuple[str, str]] = []
    constants: dict[str, np.ndarray] = {}
    ops = list(UNARY) + list(BINARY) * 2 + list(STRUCTURAL)
    steps = int(rng.integers(0, 9)) if rng.random() < 0.1 else int(rng.integers(1, 7))
    tries = 0
    while len(lines) < steps and tries < 400:
        tries += 1
        name = ops[int(rng.integers(len(ops)))]
        arity = 2 if name in BINARY else 1
        # prefer recent values; operands are distinct values
        weights = np.arange(1, len(values) + 1, dtype=float) ** 2
        picks = rng.choice(len(values), size=arity, replace=False, p=weights / weights.sum()) \
            if len(values) >= arity else None
        if picks is None:
            continue
        operands = [values[i] for i in picks]
        params = _params(name, rng, [np.shape(v) for v in operands])
        if params is None:
            continue
        templates = UNARY.get(name) or BINARY.get(name) or STRUCTURAL[name]
        fields = {"a": names[picks[0]], **({"b": names[picks[1]]} if arity == 2 else {}),
                  **{k: repr(v) for k, v in params.items()}}
        const = None
        if name in ("const_mul", "const_matmul"):
            shape = np.shape(operands[0])
            cshape = shape[int(rng.integers(0, len(shape) + 1)):] if name == "const_mul" \
                else (shape[-1],) + ((2,) if rng.random() < 0.6 else ())
            const = np.round(rng.normal(size=cshape), 3)
            fields["c"] = f"C{len(constants)}"
        ns = {"np": np, **dict(zip(names, values))}
        if const is not None:
            ns[fields["c"]] = const
        expr = templates[0].format(**fields)
        try:
            with np.errstate(all="raise"):
                value = np.asarray(eval(expr, ns))  # noqa: S307 - our own template
        except (ValueError, IndexError, FloatingPointError, TypeError):
            continue
        if (value.size == 0 or value.size > 48 or value.ndim > 4
                or not np.all(np.isfinite(value)) or np.max(np.abs(value), initial=0) > 50
                or _near_kink(name, operands)
                or (name == "max" and _max_has_tie(operands[0], params["axis"]))
                or value.dtype != np.float64):
            continue
        if const is not None:
            constants[fields["c"]] = const
        target = f"v{len(lines)}"
        lines.append((f"{target} = {expr}", f"{target} = {templates[1].format(**fields)}"))
        values.append(value)
        names.append(target)
    out = values[-1] if lines else inputs[0]
    constants["CW"] = np.round(rng.normal(size=np.shape(out)), 3)
    stop = int(rng.integers(len(lines))) if lines else None
    second = names[int(rng.integers(len(names)))]
    return Program(shapes, lines, constants, np.shape(out), stop, second), inputs
