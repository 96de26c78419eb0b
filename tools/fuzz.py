"""symgrad's differential fuzzer: random plain-numpy programs, run through symgrad and PyTorch.

Each program is generated from (seed, index) over the op table in `fuzz_ops.py` (broadcast
shapes, size-1 and size-0 axes, 0-d arrays, float64 and float32, rows short and long enough to
cross the printer's thresholds), written once as numpy source (what a user writes) and once as
PyTorch source (the oracle), and checked:

- `jit` value against numpy itself: values, dtype and shape (float32 stays float32);
- `value_and_grad` of sum(program * W) and `vjp` with cotangent W against `torch.func.vjp`
  in float64: value and every gradient, their dtypes and shapes;
- results are writable and share no memory with the inputs or with each other, and the
  inputs are unchanged after every call;
- at edge inputs (0, -0.0, subnormals, inf, NaN planted in the arguments) the `jit` value
  matches numpy wherever numpy's is finite, and is NaN wherever numpy's is NaN unless a
  stability rewrite (reported by `lower(...).rewrites`) made it finite.

    python tools/fuzz.py --programs 2000 --seed 1        # a campaign; failures are printed
    python tools/fuzz.py --seed 1 --index 17 --show      # one program: its source, rerun
    python tools/fuzz.py --programs 300 --float32 1.0    # float32 programs only

A failing program prints its numpy source, shapes and the check that failed: paste it into a
regression test. The fixed-seed slice in tests/test_fuzz.py runs in the test suite.
"""
from __future__ import annotations

import argparse
import linecache
import os
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fuzz_ops import OPS  # noqa: E402

# Shapes that inputs are drawn from: a base shape, then leading axes dropped and axes set to 1
# (numpy broadcasting), with size-0 axes and 0-d arrays among them; the long rows cross the
# printer's column-by-column (16 KiB) threshold, short last axes (2-4) its small-row forms, and
# the largest the 4 MiB from which elementwise regions run in row blocks on threads.
BASE_SHAPES = [(), (3,), (4,), (1,), (2, 3), (3, 3), (4, 2), (1, 4), (3, 1), (2, 3, 4),
               (2, 1, 3), (0,), (0, 3), (2, 0), (5, 4), (2, 2, 2), (2100, 2), (1100, 3),
               (3, 700), (730, 720)]  # the last is 4 MiB in float64: blocked regions
# Edge values planted in the arguments. No huge finite values: there numpy's intermediate
# results overflow where symgrad's simplified forms need not (sqrt(x*x) is |x|), and which of
# the two is right is the stability tests' subject (tests/test_stability.py), not this check's.
EDGE_VALUES = np.array([0.0, -0.0, 5e-324, -1e-310, 1e-300, np.inf, -np.inf, np.nan])


@dataclass
class Program:
    seed: int
    index: int
    dtype: str
    shapes: list[tuple]
    lines: list[tuple[str, str, str]] = field(default_factory=list)  # (target, numpy, torch)
    outputs: list[str] = field(default_factory=list)
    ops: list[str] = field(default_factory=list)
    integer: bool = False  # the last input is an int64 array (data: never differentiated)

    @property
    def wrt(self) -> tuple[int, ...]:
        return tuple(range(len(self.shapes) - self.integer))

    @property
    def params(self) -> list[str]:
        return [f"x{k}" for k in range(len(self.shapes))]

    def source(self, backend: str = "numpy") -> str:
        column = 1 if backend == "numpy" else 2
        body = [f"    {line[0]} = {line[column]}" for line in self.lines]
        result = ", ".join(self.outputs) + ("," if len(self.outputs) == 1 and
                                            len(self.outputs) > 1 else "")
        return (f"def program({', '.join(self.params)}):\n" + "\n".join(body)
                + f"\n    return {result}\n")

    def arguments(self) -> list[np.ndarray]:
        rng = np.random.default_rng([self.seed, self.index, 1])
        arrays = [rng.normal(size=s).astype(self.dtype) for s in self.shapes]
        if self.integer:
            arrays[-1] = rng.integers(-3, 4, size=self.shapes[-1])
        return arrays

    def cotangent(self, shape: tuple) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self.index, 2])
        return rng.normal(size=shape).astype(self.dtype)

    def describe(self) -> str:
        dtypes = [self.dtype] * len(self.shapes)
        dtypes[-1] = "int64" if self.integer else self.dtype
        shapes = ", ".join(f"{p}: {d}{list(s)}" for p, d, s in zip(self.params, dtypes,
                                                                   self.shapes))
        return (f"# seed {self.seed}, index {self.index}; {shapes}\n" + self.source())


def _input_shapes(rng: np.random.Generator) -> list[tuple]:
    base = BASE_SHAPES[int(rng.integers(len(BASE_SHAPES)))]
    shapes = []
    for _ in range(int(rng.integers(1, 4))):
        shape = list(base[int(rng.integers(len(base) + 1)) if rng.random() < 0.3 else 0:])
        for k in range(len(shape)):
            if rng.random() < 0.2:
                shape[k] = 1
        shapes.append(tuple(shape))
    return shapes


def generate(seed: int, index: int, float32_share: float = 0.25) -> Program:
    """A random program that numpy runs without error, finite on normal inputs."""
    rng = np.random.default_rng([seed, index])
    dtype = "float32" if rng.random() < float32_share else "float64"
    shapes = _input_shapes(rng)
    program = Program(seed, index, dtype, shapes, integer=len(shapes) > 1 and rng.random() < 0.2)
    env: dict[str, np.ndarray] = dict(zip(program.params, program.arguments()))
    names = list(program.params)
    for step in range(int(rng.integers(1, 9))):
        op = OPS[int(rng.integers(len(OPS)))]
        if dtype == "float32" and not op.float32:
            continue
        picked = [names[max(0, len(names) - 1 - int(rng.geometric(0.5)) + 1)]
                  if rng.random() < 0.7 else names[int(rng.integers(len(names)))]
                  for _ in range(op.arity)]
        shapes = [env[n].shape for n in picked]
        params = op.params(rng, shapes) if op.params else {}
        if params is None:
            continue
        operands = dict(zip("ab", picked))
        numpy_text = op.numpy.format(**operands, **params)
        torch_text = op.torch.format(**operands, **params)
        try:
            with np.errstate(all="raise"), warnings.catch_warnings():
                warnings.simplefilter("error")
                value = np.asarray(eval(numpy_text, {"np": np}, dict(env)))
        except Exception:
            continue
        if value.dtype.kind != "f" or not np.isfinite(value).all() or (
                value.size and np.abs(value).max() > 1e6) or value.size > 600_000:
            continue
        target = f"v{len(names)}"
        program.lines.append((target, numpy_text, torch_text))
        program.ops.append(op.name)
        env[target] = value
        names.append(target)
    if not program.lines:  # nothing applied: a plain sum
        program.lines.append(("v0", f"np.sum({names[0]})", f"torch.sum({names[0]})"))
        program.ops.append("sum")
        names.append("v0")
    program.outputs = [names[-1]]
    if len(program.lines) > 1 and rng.random() < 0.15:
        program.outputs.append(program.lines[-2][0])
    return program


def _compile(program: Program, backend: str) -> Callable:
    filename = f"<fuzz {program.seed}:{program.index} {backend}>"
    source = program.source(backend)
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict[str, Any] = {}
    if backend == "numpy":
        namespace["np"] = np
    else:
        import torch
        namespace["torch"] = torch
    exec(compile(source, filename, "exec"), namespace)
    return namespace["program"]


@dataclass
class Outcome:
    program: Program
    failures: list[str]

    def report(self) -> str:
        return self.program.describe() + "".join(f"  FAIL {f}\n" for f in self.failures)


def _close(got: Any, expected: Any, dtype: str) -> bool:
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape:
        return False
    if not expected.size:
        return True
    scale = max(1.0, float(np.abs(expected[np.isfinite(expected)]).max(initial=0)))
    rtol, atol = (1e-6, 1e-9 * scale) if dtype == "float64" else (2e-3, 2e-4 * scale)
    return bool(np.allclose(got, expected, rtol=rtol, atol=atol, equal_nan=True))


def _fresh(results: list[Any], args: list[np.ndarray], what: str) -> list[str]:
    problems = []
    arrays = [r for r in results if isinstance(r, np.ndarray)]
    for k, r in enumerate(arrays):
        if not r.flags.writeable:
            problems.append(f"{what}: result {k} is read-only")
        if any(np.shares_memory(r, a) for a in args):
            problems.append(f"{what}: result {k} shares memory with an input")
        if any(np.shares_memory(r, o) for o in arrays[:k]):
            problems.append(f"{what}: result {k} shares memory with another result")
    return problems


def _torch_reference(program: Program, args: list[np.ndarray], weights: list[np.ndarray]):
    import torch
    from torch.func import vjp

    f = _compile(program, "torch")
    tensors = [torch.tensor(a, dtype=torch.float64) for a in args[:len(program.wrt)]]
    data = [torch.tensor(a, dtype=torch.float64)  # int64 data: exact in float64, not
            for a in args[len(program.wrt):]]  # differentiated (torch ops refuse int64)
    single = len(program.outputs) == 1
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # torch.exp of an int64 tensor: float64, as numpy
    try:
        value, pullback = vjp(lambda *xs: f(*xs, *data) if single else f(*xs, *data)[0],
                              *tensors)
        grads = pullback(torch.tensor(weights[0], dtype=torch.float64))
    finally:
        torch.set_default_dtype(default)
    return value.detach().numpy(), [g.detach().numpy() for g in grads]


def check(program: Program) -> Outcome:
    import symgrad as sg

    f = _compile(program, "numpy")
    args = program.arguments()
    saved = [a.copy() for a in args]
    failures: list[str] = []

    def run(what: str, call: Callable) -> Any:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                promotion = getattr(sg, "DtypePromotionWarning", None)  # older symgrad: none
                if promotion is not None:
                    warnings.simplefilter("error", promotion)
                return call()
        except Exception as error:  # a crash is a finding: report it, keep going
            failures.append(f"{what}: {type(error).__name__}: {str(error).splitlines()[0][:300]}")
            return None

    with np.errstate(all="ignore"):
        expected = f(*args)
    expected_list = list(expected) if len(program.outputs) > 1 else [expected]
    got = run("jit", lambda: sg.jit(f)(*args))
    if got is not None:
        got_list = list(got) if len(program.outputs) > 1 else [got]
        for k, (g, e) in enumerate(zip(got_list, expected_list)):
            e = np.asarray(e)
            if np.asarray(g).dtype != e.dtype:
                failures.append(f"jit: output {k} dtype {np.asarray(g).dtype}, numpy {e.dtype}")
            if not _close(g, e, program.dtype):
                failures.append(f"jit: output {k} differs from numpy: {g!r} vs {e!r}"[:600])
        failures += _fresh(got_list, args, "jit")

    main = np.asarray(expected_list[0])
    weights = [program.cotangent(main.shape)]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reference_value, reference_grads = _torch_reference(program, args, weights)
    except Exception as error:  # the oracle cannot: the table's torch text is at fault
        failures.append(f"oracle: {type(error).__name__}: {error}"[:300])
        return Outcome(program, failures)
    wrt = program.wrt
    w = weights[0]
    single = len(program.outputs) == 1
    w = w.astype(np.asarray(main).dtype) if main.dtype.kind == "f" else w

    loss = _loss(program, f, w)
    checks = [("value_and_grad", lambda: sg.value_and_grad(loss, wrt=wrt)(*args),
               float(np.sum(reference_value * np.asarray(w, np.float64))))]
    if single:
        checks.append(("vjp", lambda: _vjp(f, wrt, args, w), reference_value))
    for what, call, ref_value in checks:
        result = run(what, call)
        if result is None:
            continue
        value, grads = result
        if not _close(value, ref_value, program.dtype):
            failures.append(f"{what}: value {value!r} vs torch {ref_value!r}"[:600])
        for k, (g, r) in enumerate(zip(grads, reference_grads)):
            if np.asarray(g).dtype != np.dtype(program.dtype):
                failures.append(f"{what}: gradient {k} dtype {np.asarray(g).dtype}")
            # symgrad's conventions deviate from PyTorch's only where PyTorch's gradient is
            # NaN and a finite one is right (docs/conventions.md: hypot at the origin, ...)
            r = np.where(np.isnan(r) & np.isfinite(np.asarray(g, np.float64)), g, r)
            if not _close(g, r, program.dtype):
                failures.append(f"{what}: gradient {k} differs from torch:\n"
                                f"      symgrad {np.asarray(g)!r}\n      torch   {r!r}"[:900])
        failures += _fresh([value, *grads], args, what)

    for a, s in zip(args, saved):
        if not np.array_equal(a, s, equal_nan=True):
            failures.append("an input was changed by a call")
    failures += _edge_check(program, f, sg)
    return Outcome(program, failures)


def _vjp(f, wrt, args, cotangent):
    """sg.vjp's value and its pullback applied to `cotangent` (the pullback is called twice:
    it must give the same gradient each time)."""
    import symgrad as sg

    out, pullback = sg.vjp(f, *args, wrt=wrt)
    first = pullback(cotangent)
    again = pullback(cotangent)
    for a, b in zip(first if isinstance(first, tuple) else (first,),
                    again if isinstance(again, tuple) else (again,)):
        np.testing.assert_array_equal(a, b)
    return out, first


def _loss(program: Program, f: Callable, w: np.ndarray) -> Callable:
    """sum(program(...) * W) with the program's own parameter names (symgrad names them)."""
    params = ", ".join(program.params)
    first = "" if len(program.outputs) == 1 else "[0]"
    source = f"def loss({params}):\n    return np.sum(program({params}){first} * W)\n"
    namespace = {"np": np, "program": f, "W": w}
    filename = f"<fuzz {program.seed}:{program.index} loss>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)
    return namespace["loss"]


def _edge_check(program: Program, f: Callable, sg: Any) -> list[str]:
    """The jit value at inputs with edge values planted: numpy's wherever numpy's is finite;
    NaN where numpy's is NaN. Where a stability rewrite fired (softmax, logaddexp, ...),
    symgrad is right where numpy overflows: then only zeros, subnormals and NaN are planted."""
    rng = np.random.default_rng([program.seed, program.index, 3])
    args = program.arguments()
    try:
        compiled = sg.jit(f)
        rewritten = bool(compiled.lower(*args).rewrites)
    except Exception as error:
        return [f"edge jit: {type(error).__name__}: {str(error).splitlines()[0][:300]}"]
    edges = EDGE_VALUES[np.isnan(EDGE_VALUES) | (np.abs(EDGE_VALUES) < 1)] if rewritten \
        else EDGE_VALUES
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for a in args[:len(program.wrt)]:  # int64 data holds no NaN
            planted = rng.random(a.shape) < 0.3
            a[planted] = edges[rng.integers(len(edges), size=a.shape)][planted]
        expected = f(*[a.copy() for a in args])
        try:
            got = compiled(*args)
        except Exception as error:
            return [f"edge jit: {type(error).__name__}: {str(error).splitlines()[0][:300]}"]
    pairs = zip(got, expected) if len(program.outputs) > 1 else [(got, expected)]
    problems = []
    for k, (g, e) in enumerate(pairs):
        g, e = np.asarray(g, np.float64), np.asarray(e, np.float64)
        finite = np.isfinite(e)
        if not _close(np.where(finite, g, 0), np.where(finite, e, 0), program.dtype):
            problems.append(f"edge jit: output {k} differs where numpy is finite:\n"
                            f"      symgrad {g!r}\n      numpy   {e!r}"[:900])
        if not np.array_equal(np.isnan(g), np.isnan(e)):
            problems.append(f"edge jit: output {k} NaN where numpy is not, or not where it is:"
                            f"\n      symgrad {g!r}\n      numpy   {e!r}"[:900])
    return problems


def campaign(seed: int, programs: int, float32_share: float = 0.25, start: int = 0,
             out: Any = None, stop_after: float | None = None) -> tuple[int, list[Outcome]]:
    """Check `programs` programs of `seed`; the number run and the failing outcomes."""
    failing = []
    began = time.perf_counter()
    ran = 0
    for index in range(start, start + programs):
        if stop_after is not None and time.perf_counter() - began > stop_after:
            break
        outcome = check(generate(seed, index, float32_share))
        ran += 1
        if outcome.failures:
            failing.append(outcome)
            if out is not None:
                print(outcome.report(), file=out, flush=True)
    return ran, failing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--programs", type=int, default=200)
    parser.add_argument("--start", type=int, default=0, help="first program index")
    parser.add_argument("--index", type=int, help="only this program")
    parser.add_argument("--show", action="store_true", help="print the program(s) checked")
    parser.add_argument("--float32", type=float, default=0.25, help="share of float32 programs")
    parser.add_argument("--minutes", type=float, help="stop after this long")
    options = parser.parse_args(argv)
    os.environ.setdefault("SYMGRAD_CACHE_DIR", tempfile.mkdtemp(prefix="symgrad-fuzz-"))
    if options.index is not None:
        program = generate(options.seed, options.index, options.float32)
        print(program.describe())
        outcome = check(program)
        print(outcome.report() if outcome.failures else "ok")
        return 1 if outcome.failures else 0
    began = time.perf_counter()
    ran, failing = campaign(options.seed, options.programs, options.float32, options.start,
                            sys.stdout, options.minutes * 60 if options.minutes else None)
    ops: dict[str, int] = {}
    for outcome in failing:
        for name in set(outcome.program.ops):
            ops[name] = ops.get(name, 0) + 1
    print(f"{ran} programs (seed {options.seed}, from index {options.start}), "
          f"{len(failing)} failing, {time.perf_counter() - began:.0f} s")
    if ops:
        print("ops in failing programs: " + ", ".join(
            f"{n} {c}" for n, c in sorted(ops.items(), key=lambda t: -t[1])))
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
