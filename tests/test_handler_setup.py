"""What every numpy handler on tracers gets from the shared setup (`numpy_api.on_nodes`):
its nodes carry the user's line even where no dispatcher bound it (as a method, from another
handler), what it returns is boxed, and its array arguments are checked as `node_of` checks
them (a stale view is refused, not read with its old values)."""
from __future__ import annotations

import inspect
from collections import namedtuple

import numpy as np
import pytest

import symgrad as sg
from structural_cases import CASES
from symgrad.ir import Node
from symgrad.specs import ArgSpec
from symgrad.trace import FUNCTIONS, METHODS, Tracer, on_nodes, trace_function
from symgrad.trace import tracer as tracer_module


class _NoSite:
    """`bound_site` that binds nothing: the dispatcher's own binding switched off."""

    def __init__(self, builder):
        pass

    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return None


def _trace(case):
    specs = [ArgSpec(f"a{i}", a.shape, str(a.dtype)) for i, a in enumerate(case.make_args())]
    return trace_function(case.f, specs)[0]


# sg.custom_jvp's rule nodes are made by the autodiff stage, not by a numpy handler
TRACED_CASES = [c for c in CASES if not c.name.startswith("custom_")]


def test_every_handler_binds_the_users_line_itself(monkeypatch):
    """`Tracer.__array_function__` binds the line around every handler, but the same handlers
    run as ndarray methods (`x.sum()`), from each other (`ravel` is `reshape`) and from the
    complex front end, where nothing binds it for them: with the dispatcher's binding off,
    every node of every case still carries a line of the case tables, never none and never
    a line inside symgrad."""
    monkeypatch.setattr(tracer_module, "bound_site", _NoSite)
    checked = 0
    for case in TRACED_CASES:
        graph = _trace(case)
        for node in graph.nodes():
            if node.op == "input":
                continue
            assert node.site is not None, f"{case.name}: a {node.op} node has no source line"
            assert node.site.filename.endswith("_cases.py"), (case.name, node.op, node.site)
            checked += 1
    assert len(TRACED_CASES) > 150 and checked > 1500


def _nodes_in(value):
    if isinstance(value, Node):
        return [value]
    if isinstance(value, (list, tuple)):
        return [n for v in value for n in _nodes_in(v)]
    return []


def test_every_handler_returns_boxed_values(monkeypatch):
    """Every numpy function and ndarray method the cases call returns tracers (or tuples,
    named tuples and lists of them), never a bare graph node."""
    returned: dict[str, list] = {}

    def recording(name, handler):
        def record(*args, **kwargs):
            result = handler(*args, **kwargs)
            returned.setdefault(name, []).append(result)
            return result
        return record

    for function, handler in list(FUNCTIONS.items()):
        monkeypatch.setitem(FUNCTIONS, function, recording(function.__name__, handler))
    for name, method in list(METHODS.items()):
        monkeypatch.setitem(METHODS, name, recording(f"ndarray.{name}", method))
    for case in TRACED_CASES:
        _trace(case)
    bare = {name: type(r).__name__ for name, results in returned.items() for r in results
            if _nodes_in(r)}
    assert not bare, bare
    tracers = [r for results in returned.values() for r in results if isinstance(r, Tracer)]
    assert len(returned) > 80 and len(tracers) > 400, (len(returned), len(tracers))
    assert isinstance(returned["eigh"][0], tuple) and type(returned["eigh"][0]).__name__ \
        == "EighResult" and all(isinstance(v, Tracer) for v in returned["eigh"][0])
    assert all(isinstance(part, Tracer) for part in returned["split"][0])


Pair = namedtuple("Pair", ["first", "second"])


def test_on_nodes_gives_the_builder_the_line_and_the_arguments_as_nodes():
    seen = {}
    constant = np.array([1.0, 2.0, 4.0])

    def build(b, x, c, s):
        seen["site"] = b.site
        seen["nodes"] = (x, c, s)
        return Pair(x, b.node("negative", [x], {}, x.shape, x.dtype)), [c], x

    def f(x):
        pair, listed, same = on_nodes(build, x, constant, 2.5)  # the line the nodes carry
        seen["x"], seen["out"] = x, (pair, listed, same)
        return pair.second

    graph, _ = trace_function(f, [ArgSpec("x", (3,), "float64")])
    line = inspect.getsource(f).splitlines()[1].strip()
    assert seen["site"].text == line and seen["site"].filename == __file__
    x, c, s = seen["nodes"]
    assert x is seen["x"].node and x.op == "input"
    assert c.op == "const" and np.array_equal(c.param("value").value, constant)
    assert s.op == "const" and s.param("value") == 2.5
    pair, listed, same = seen["out"]
    assert type(pair) is Pair and pair.first.node is x and pair.second.node.op == "negative"
    assert isinstance(listed, list) and listed[0].node is c
    assert isinstance(same, Tracer) and same.node is x
    assert graph.outputs[0].site.text == line


def test_on_nodes_finds_the_trace_in_the_other_arguments():
    """`others` (an index that `build` reads itself): searched for the trace, not converted;
    no traced value anywhere is an error naming that."""
    table = np.arange(12.0).reshape(4, 3)
    seen = {}

    def build(b, t):
        seen["builder"], seen["node"] = b, t
        return t

    def f(labels):
        seen["labels"] = labels
        return np.sum(on_nodes(build, table, others=(labels,)))

    trace_function(f, [ArgSpec("labels", (3,), "int64")])
    assert seen["builder"] is seen["labels"].builder
    assert seen["node"].op == "const" and np.array_equal(seen["node"].param("value").value, table)
    with pytest.raises(sg.TracingError, match="no traced value among the operands"):
        on_nodes(build, table, others=(np.array([3, 0]),))


def test_a_stale_view_is_refused_by_every_handler():
    """numpy would read the new values through the view: refused by astype (which read the old
    ones before it used the shared setup) as by arithmetic, reductions and contractions."""
    def stale(use):
        def f(x):
            z = x.copy()
            row = z[0]
            z[0] = 5.0
            return np.sum(use(row))
        return f

    x = np.ones((2, 3))
    for use in (lambda r: r.astype(np.float32), lambda r: r + 1, lambda r: np.mean(r),
                lambda r: np.dot(r, r), lambda r: r.reshape(3, 1), lambda r: np.sort(r),
                lambda r: sg.stop_gradient(r)):
        with pytest.raises(sg.TracingError, match="read after the array was modified in "
                           r"place \(at test_handler_setup.py:\d+"):
            sg.jit(stale(use))(x)


@pytest.mark.parametrize("call, message", [
    (lambda x: x.reshape(3, 2, order="F"), "numpy.reshape: order='F' is not supported"),
    (lambda x: x.sum(out=np.zeros(())), "numpy.sum: argument 'out' is not supported"),
    (lambda x: x.cumsum(out=np.zeros(6)), "numpy.cumsum: argument 'out' is not supported"),
    (lambda x: x.argmax(out=np.zeros((), np.int64)), "numpy.argmax: argument 'out'"),
    (lambda x: x.var(correction=1), "numpy.var: argument 'correction' is not supported"),
    (lambda x: x.round(2, out=np.zeros(6)), "numpy.round: argument 'out' is not supported"),
])
def test_a_method_error_names_the_op_and_the_users_line(call, message):
    def f(x):
        return np.sum(call(x))

    line = inspect.getsourcelines(call)[1]
    with pytest.raises(sg.TracingError) as error:
        sg.jit(f)(np.ones(6))
    assert message in str(error.value)
    assert f"test_handler_setup.py:{line}" in str(error.value)
