"""`sg.check_grads`: a function's symgrad derivatives against central differences, as JAX's
`check_grads` and torch's `gradcheck` do, for users' own functions and rules.

Forward mode: the JVP along a random tangent against the central difference of the function
along it, element by element. Reverse mode: a random projection, `<u, J t>` from the central
difference against `<vjp(u), t>`. Order 2 and above check the same of the derivative itself
(`x -> jvp(f, x, t)` and `x -> vjp(f, x)(u)`, traced by symgrad), so Hessians and the
derivatives of custom rules are checked too. A failure raises `GradientCheckError` naming
the order, the mode, the worst element and both numbers.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Sequence

import numpy as np

from .errors import ArgumentError, SymgradError
from .pytree import path_text, tree_flatten


class GradientCheckError(SymgradError, AssertionError):
    """A derivative that does not match central differences (see `symgrad.check_grads`)."""


def _is_float(x: Any) -> bool:
    return isinstance(x, np.ndarray) and x.dtype.kind == "f"


def _leaves(value: Any) -> tuple[list[np.ndarray], list[str]]:
    leaves, tree = tree_flatten(value)
    return ([np.asarray(x, dtype=float) for x in leaves],
            [f"out{path_text(p)}" for p in tree.paths()])


def _random_like(rng: np.random.Generator, value: Any) -> Any:
    leaves, tree = tree_flatten(value)
    return tree.unflatten([rng.standard_normal(np.shape(x)).astype(np.asarray(x).dtype)
                           for x in leaves])


def _moved(args: Sequence[Any], tangents: Sequence[Any], step: float) -> list:
    return [a if t is None else a + step * t for a, t in zip(args, tangents)]


def _compare(name: str, what: str, got: list, expected: list, labels: list[str],
             atol: float, rtol: float) -> float:
    """The worst |got - expected| / (atol + rtol |expected|); an error above 1."""
    worst, where = 0.0, None
    for g, e, label in zip(got, expected, labels):
        g, e = np.asarray(g, dtype=float), np.asarray(e, dtype=float)
        if g.shape != e.shape:
            raise GradientCheckError(f"check_grads({name}): {what}: {label} has shape {g.shape} "
                                     f"but the finite differences {e.shape}")
        ratio = np.abs(g - e) / (atol + rtol * np.abs(e))
        ratio = np.where(np.isnan(g) != np.isnan(e), np.inf, np.nan_to_num(ratio, nan=0.0))
        if ratio.size and ratio.max() > worst:
            k = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
            worst, where = float(ratio.max()), (label, k, g[k], e[k])
    if worst > 1:
        label, k, g, e = where
        index = f"[{', '.join(map(str, k))}]" if k else ""
        raise GradientCheckError(
            f"check_grads({name}): {what} differs from central differences; worst element "
            f"{label}{index}: symgrad {g!r}, finite differences {e!r} (|difference| "
            f"{abs(g - e):.3g} > atol {atol:g} + rtol {rtol:g} * {abs(e):.3g})")
    return worst


def check_grads(f: Callable, args: Sequence[Any], order: int = 2,
                modes: Sequence[str] = ("fwd", "rev"), *, atol: float | None = None,
                rtol: float | None = None, eps: float | None = None, seed: int = 0) -> list:
    """Check `f`'s derivatives at `args` against central differences (`jax.test_util.
    check_grads`, `torch.autograd.gradcheck`).

    Arguments: `f` (a numpy function of arrays, or any symgrad transform); `args` (a tuple of
    its arguments; float arrays are differentiated, everything else is held fixed); `order`
    (check derivatives up to this order: 2 checks the derivative of the derivative); `modes`
    ("fwd": JVPs along random tangents element by element; "rev": random projections of
    VJPs); `atol`, `rtol`, `eps` (default 1e-5, 1e-5, 1e-6 in float64, 1e-2, 1e-2, 1e-3 in
    float32; use float64 arguments where you can); `seed`. Raises `GradientCheckError`
    naming the order, the mode and the worst element; returns the checks made as
    `(order, mode, worst error / tolerance)`.

    Example::

        import numpy as np
        import symgrad as sg

        x = np.array([0.3, -1.2, 2.0])
        report = sg.check_grads(lambda x: np.sin(x) * np.exp(x), (x,), order=2)
        assert [(o, m) for o, m, _ in report] == [(1, "fwd"), (1, "rev"), (2, "fwd"), (2, "rev")]
    """
    args = tuple(np.asarray(a) if isinstance(a, (list, float)) else a for a in args)
    unknown = set(modes) - {"fwd", "rev"}
    if unknown or not modes:
        raise ArgumentError(f"check_grads: modes are 'fwd' and 'rev', got {tuple(modes)!r}")
    if order < 1:
        raise ArgumentError(f"check_grads: order must be 1 or more, got {order}")
    positions = [i for i, a in enumerate(args) if _is_float(a)]
    if not positions:
        raise ArgumentError("check_grads: no float array argument to differentiate")
    single = all(args[i].dtype == np.float32 for i in positions)
    atol = (1e-2 if single else 1e-5) if atol is None else atol
    rtol = (1e-2 if single else 1e-5) if rtol is None else rtol
    eps = (1e-3 if single else 1e-6) if eps is None else eps
    rng = np.random.default_rng(seed)
    name = getattr(f, "__name__", "f")
    report: list = []
    _check(f, args, positions, 1, order, tuple(modes), rng, (atol, rtol, eps), name, report)
    return report


def _check(f: Callable, args: tuple, positions: list[int], level: int, order: int,
           modes: tuple, rng: np.random.Generator, tolerances: tuple, name: str,
           report: list) -> None:
    from .api import jvp, vjp

    atol, rtol, eps = tolerances
    tangents = [rng.standard_normal(a.shape).astype(a.dtype) if i in positions else None
                for i, a in enumerate(args)]
    plus, minus = f(*_moved(args, tangents, eps)), f(*_moved(args, tangents, -eps))
    (plus_leaves, labels), (minus_leaves, _) = _leaves(plus), _leaves(minus)
    numeric = [(p - m) / (2 * eps) for p, m in zip(plus_leaves, minus_leaves)]
    cotangent = _random_like(rng, f(*args))
    wrt = positions[0] if len(positions) == 1 else tuple(positions)
    for mode in modes:
        what = f"order {level} {'forward mode (JVP)' if mode == 'fwd' else 'reverse mode (VJP)'}"
        if mode == "fwd":
            _, computed = jvp(f, args, tuple(tangents))
            worst = _compare(name, what, _leaves(computed)[0], numeric, labels, atol, rtol)
        else:
            _, pullback = vjp(f, *args, wrt=wrt)
            grads = pullback(cotangent)
            grads = [grads] if len(positions) == 1 else list(grads)
            u = _leaves(cotangent)[0]
            projected = sum(float(np.sum(g * tangents[i])) for g, i in zip(grads, positions))
            expected = sum(float(np.sum(a * b)) for a, b in zip(u, numeric))
            worst = _compare(name, f"{what}, projected on a random cotangent and tangent",
                             [np.array(projected)], [np.array(expected)],
                             ["<cotangent, J tangent>"], atol, rtol)
        report.append((level, mode, worst))
    if level < order:
        for mode in modes:
            if mode == "fwd":
                derivative = _jvp_of(f, tangents)
            else:
                derivative = _vjp_of(f, cotangent, wrt)
            _check(derivative, args, positions, level + 1, order, (mode,), rng, tolerances,
                   name, report)
    report.sort(key=lambda item: (item[0], item[1]))


def _jvp_of(f: Callable, tangents: list) -> Callable:
    from .api import jvp

    def derivative(*args: Any) -> Any:
        return jvp(f, args, tuple(tangents))[1]

    return _named_like(derivative, f)


def _vjp_of(f: Callable, cotangent: Any, wrt: Any) -> Callable:
    from .api import vjp

    def derivative(*args: Any) -> Any:
        return vjp(f, *args, wrt=wrt)[1](cotangent)

    return _named_like(derivative, f)


def _named_like(derivative: Callable, f: Callable) -> Callable:
    """The derivative with `f`'s parameters (the names its generated code uses)."""
    try:
        derivative.__signature__ = inspect.signature(f)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        pass
    derivative.__name__ = f"{getattr(f, '__name__', 'f')}_derivative"
    return derivative
