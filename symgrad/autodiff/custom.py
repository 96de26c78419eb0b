"""User-written derivative rules: `custom_jvp` and `custom_vjp` (JAX's signatures).

Called on traced values, a function with a custom rule traces its own body (or `fwd`) inline
for the value, behind a `stop_gradient`, and traces its rule once into a graph of its own (a
`RuleBody`). Each float result becomes a `custom_rule` node whose inputs are that value, the
primal inputs (and for a `custom_vjp` the residuals `fwd` saved), and whatever outer values
the rule closes over. Its VJP (in vjp_rules.py) inlines the rule's graph over those inputs:
a `custom_vjp`'s `bwd` as it is, a `custom_jvp`'s rule transposed (reverse mode over the
rule's graph with respect to its tangents, which the rule must use linearly). The backward
pass is therefore made of the rule's own operations on the primal nodes, and differentiating
it again differentiates the rule: the Hessian of a function with a `custom_jvp` is the
derivative of its rule, and through a `custom_vjp` it is the derivative of `bwd` (through the
residuals and the cotangent). Unlike JAX, this needs no `custom_jvp` of the rule itself.

A rule symgrad cannot trace (one that calls `float()` on a value, converts it with
`np.asarray`, branches on it or uses an unsupported function) is refused with an error naming
the rule when the function is first traced: symgrad generates code from the traced rule, and
opaque Python callbacks have no place in the generated module. After differentiation the
`custom_rule` nodes are replaced by their values (`strip_rules`), so generated code computes
the value as the function's body does and the gradient as the rule does.
"""
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..ir import primitives as prim
from ..errors import ArgumentError, GradientError, ShapeError, SymgradError, TracingError
from ..ir.graph import Builder, Graph, Node
from ..ir.reduce import fill
from ..pytree import tree_flatten
from ..trace.tracer import ArgSpec, Tracer, trace_function

CUSTOM_RULE = "custom_rule"


Aval = tuple[tuple[int, ...], str]


@dataclass(frozen=True, eq=False)
class RuleBody:
    """A traced rule and where its inputs come from.

    kind 'jvp': placeholders primals (0..P-1), tangents (P..2P-1), closures -> the tangent of
    each result. kind 'vjp': residuals, cotangents (from `cotangent_start`), closures -> the
    cotangent of each primal leaf. A custom_rule node's inputs are its value, the P primal
    leaves, the array residuals (vjp) and the closures."""

    kind: str
    name: str
    graph: Graph
    primals: tuple[Aval, ...]  # each primal leaf
    outputs: tuple[Aval, ...]  # each result leaf
    residual_positions: tuple[int, ...]  # placeholders of the array residuals (vjp)
    cotangent_start: int  # vjp: the first cotangent placeholder
    closure_start: int  # the first placeholder of a closed-over outer value
    digest: str = field(default="")

    @staticmethod
    def make(kind: str, name: str, graph: Graph, primals: list, outputs: list,
             residual_positions: list, cotangent_start: int, closure_start: int) -> "RuleBody":
        facts = (kind, name, primals, outputs, residual_positions, cotangent_start,
                 closure_start)
        text = graph.canonical_text() + "\n" + repr(facts)
        return RuleBody(kind, name, graph, tuple(primals), tuple(outputs),
                        tuple(residual_positions), cotangent_start, closure_start,
                        hashlib.sha256(text.encode()).hexdigest())

    def __hash__(self) -> int:
        return hash(self.digest)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RuleBody) and other.digest == self.digest

    def __repr__(self) -> str:
        return f"<custom_{self.kind} {self.name} {self.digest}>"

    # -- differentiation time ----------------------------------------------------------------
    def vjp(self, b: Builder, node: Node, g: Node, k: int) -> Node | None:
        """The adjoint contribution of `node` (result `index` of this rule) to its input k."""
        if not 1 <= k <= len(self.primals):
            return None  # the value (behind a stop_gradient), residuals, closures
        memo = b.__dict__.setdefault("_custom_rule_cotangents", {})
        if (node, g) not in memo:
            make = self._transposed if self.kind == "jvp" else self._pulled
            memo[(node, g)] = make(b, node, g)
        found = memo[(node, g)][k - 1]
        dtype = self.primals[k - 1][1]
        return found if found is None or found.dtype == dtype else prim.astype(b, found, dtype)

    def _bind(self, b: Builder, node: Node, given: dict[int, Node]) -> list[Node]:
        """The rule's results in `b`, its placeholders bound to `given` and the closures."""
        from .expand import expand_calls
        from ..ir.calls import substitute

        graph = expand_calls(self.graph)
        first = 1 + len(self.primals) + len(self.residual_positions)
        mapping = {}
        for placeholder in graph.inputs:
            position = placeholder.param("position")
            mapping[placeholder] = (given[position] if position < self.closure_start
                                    else node.inputs[first + position - self.closure_start])
        return substitute(b, list(graph.outputs), mapping)

    def _pulled(self, b: Builder, node: Node, g: Node) -> list[Node | None]:
        """bwd(residuals, cotangents) with `g` for this result and zeros for the others."""
        count, index = len(self.primals), node.param("index")
        residuals = node.inputs[1 + count:1 + count + len(self.residual_positions)]
        given = dict(zip(self.residual_positions, residuals))
        for j, (shape, dtype) in enumerate(self.outputs):
            given[self.cotangent_start + j] = (g if j == index
                                               else fill(b, 0, shape, dtype))
        return list(self._bind(b, node, given))

    def _transposed(self, b: Builder, node: Node, g: Node) -> list[Node | None]:
        """The JVP rule's tangent map transposed at this result: reverse mode over the rule's
        graph with respect to its tangents, seeded with `g`."""
        from .reverse import backward
        from ..ir.graph import topological_order

        count, index = len(self.primals), node.param("index")
        given = dict(enumerate(node.inputs[1:1 + count]))
        tangents = [prim.input_node(b, f"tangent_{j}_of_{self.name}", -1 - j, shape, dtype)
                    for j, (shape, dtype) in enumerate(self.primals)]
        given.update({count + j: t for j, t in enumerate(tangents)})
        out = self._bind(b, node, given)[index]
        adjoints = backward(b, [out], [g], tangents)
        found = [adjoints.get(t) for t in tangents]
        if set(tangents) & set(topological_order([f for f in found if f is not None])):
            raise GradientError(f"the jvp rule of {self.name} is not linear in its tangents: "
                                "the tangent it returns must be a linear function of the "
                                "input tangents (a product of tangents has no transpose)")
        return found


    # -- vmap --------------------------------------------------------------------------------
    def batched(self, size: int, flags: Sequence[bool]) -> "RuleBody":
        """This rule over a batch (batch axis first), for a custom_rule node whose primals,
        residuals and closures are batched as `flags` say; every result is batched."""
        key = (self, size, tuple(flags))
        if key not in _BATCHED:
            _BATCHED[key] = self._batched(size, list(flags))
        return _BATCHED[key]

    def _batched(self, size: int, flags: list[bool]) -> "RuleBody":
        from .batching import batch_graph, materialised
        from .expand import expand_calls

        count, residuals = len(self.primals), len(self.residual_positions)
        primal_flags, closure_flags = flags[:count], flags[count + residuals:]
        if self.kind == "jvp":
            mapped = dict(enumerate(primal_flags + primal_flags))
        else:
            mapped = dict(zip(self.residual_positions, flags[count:count + residuals]))
            mapped.update({self.cotangent_start + j: True for j in range(len(self.outputs))})
        mapped.update({self.closure_start + c: f for c, f in enumerate(closure_flags)})
        b, graph = Builder(), expand_calls(self.graph)
        bound = {}
        for placeholder in graph.inputs:
            position = placeholder.param("position")
            flag = mapped.get(position, False)
            shape = ((size,) if flag else ()) + placeholder.shape
            bound[position] = (prim.input_node(b, placeholder.param("name"), position, shape,
                                               placeholder.dtype), flag)
        outputs, _ = batch_graph(b, graph, bound, size)
        results = []
        for j, (out, flag) in enumerate(outputs):
            if self.kind == "vjp" and not primal_flags[j]:  # a shared primal: summed
                results.append(prim.reduce_sum(b, out, (0,)) if flag else out)
            else:
                results.append(out if flag else materialised(b, out, size))
        primals = [((size,) + s if f else s, d) for (s, d), f in zip(self.primals, primal_flags)]
        return RuleBody.make(self.kind, self.name,
                             Graph(tuple(n for n, _ in bound.values()), tuple(results)),
                             primals, [((size,) + s, d) for s, d in self.outputs],
                             list(self.residual_positions), self.cotangent_start,
                             self.closure_start)


_BATCHED: dict[tuple, RuleBody] = {}


def strip_rules(outputs: Sequence[Node], hints: dict) -> tuple[list[Node], dict]:
    """The differentiated graph with each custom_rule node replaced by its value."""
    from ..ir.graph import topological_order

    order = topological_order(outputs)
    if not any(n.op == CUSTOM_RULE for n in order):
        return list(outputs), hints
    b, memo = Builder(), {}
    for node in order:
        if node.op == CUSTOM_RULE:
            memo[node] = memo[node.inputs[0]]
        else:
            memo[node] = b.node(node.op, [memo[i] for i in node.inputs], dict(node.params),
                                node.shape, node.dtype, node.site)
    return [memo[o] for o in outputs], {memo[n]: name for n, name in hints.items() if n in memo}


# ---------------------------------------------------------------------------------------------
# Tracing
# ---------------------------------------------------------------------------------------------
def _as_node(builder: Builder, value: Any) -> Node:
    if isinstance(value, Tracer):
        return value.node
    return prim.constant(builder, np.asarray(value))


def _is_array(value: Any) -> bool:
    return isinstance(value, (Tracer, np.ndarray, np.generic))


def _shape_of(value: Any) -> tuple[int, ...]:
    return tuple(value.shape) if hasattr(value, "shape") else ()


def _aval(node: Node) -> Aval:
    return node.shape, node.dtype


class _Custom:
    """What custom_jvp and custom_vjp share: the function, nondiff_argnums, the call."""

    kind = ""
    _in_rule = False  # tracing this function's own rule (a rule may call the function)

    def __init__(self, fun: Callable, nondiff_argnums: Sequence[int] = ()):
        if not callable(fun):
            raise ArgumentError(f"symgrad.custom_{self.kind}: expected a function, got {fun!r}")
        self.fun, self.nondiff_argnums = fun, tuple(int(i) for i in nondiff_argnums)
        functools.update_wrapper(self, fun, updated=())

    @property
    def name(self) -> str:
        return getattr(self.fun, "__name__", "the function")

    def __repr__(self) -> str:
        return f"<symgrad custom_{self.kind} of {self.name}>"

    def _missing_rule(self) -> str | None:
        raise NotImplementedError

    def __call__(self, *args: Any) -> Any:
        missing = self._missing_rule()
        if missing:
            raise ArgumentError(f"{self!r} has no rule yet: call {self.name}.{missing} first")
        nondiff = set()
        for i in self.nondiff_argnums:
            if not -len(args) <= i < len(args):
                raise ArgumentError(f"{self!r}: nondiff_argnums {i} is out of range for "
                                    f"{len(args)} arguments")
            nondiff.add(i % len(args))
        leaves = tree_flatten(args)[0]
        if self._in_rule or not any(isinstance(x, Tracer) for x in leaves):
            # plain numpy, or the function called inside its own rule (for primal_out): the
            # function itself, as in JAX
            return self.fun(*args)
        builder = next(x.builder for x in leaves if isinstance(x, Tracer))
        diff = [a for i, a in enumerate(args) if i not in nondiff]
        static = [args[i] for i in sorted(nondiff)]
        trees = [tree_flatten(a)[1] for a in diff]
        primals = [_as_node(builder, x) for a in diff for x in tree_flatten(a)[0]]
        return self._traced(builder, args, static, trees, primals)

    def _rebuild(self, trees: list, leaves: Sequence[Any]) -> tuple:
        out, k = [], 0
        for tree in trees:
            out.append(tree.unflatten(leaves[k:k + tree.num_leaves]))
            k += tree.num_leaves
        return tuple(out)

    def _trace_rule(self, rule: Callable, specs: list[ArgSpec]) -> tuple[Graph, list[Node]]:
        """The rule's graph on placeholders; outer values it reads become extra inputs."""
        from ..ir.calls import close_over, next_serial

        inner, first = Builder(), next_serial()
        self._in_rule = True
        try:
            graph, _ = trace_function(rule, specs, inner)
        except (ArgumentError, ShapeError):
            raise  # a rule that returns the wrong structure or shapes, as the message says
        except SymgradError as error:
            raise TracingError(
                f"the custom_{self.kind} rule of {self.name} could not be traced: {error} -- "
                "symgrad generates code from the traced rule, so it must be numpy operations on "
                "its arguments (no float() or np.asarray of them, no branching on their "
                "values)") from None
        finally:
            self._in_rule = False
        graph, _, foreign = close_over(inner, graph, specs, first)
        return graph, foreign

    @staticmethod
    def _results(builder: Builder, out_nodes: list[Node], out_tree: Any, body: RuleBody,
                 inputs: list[Node]) -> Any:
        """The output with each float leaf a custom_rule node over its value."""
        results = []
        for i, node in enumerate(out_nodes):
            if node.is_float:
                node = builder.node(CUSTOM_RULE, (prim.stop_gradient(builder, node), *inputs),
                                    {"rule": body, "index": i}, node.shape, node.dtype)
            results.append(Tracer(node, builder))
        return out_tree.unflatten(results)

    def _leaves_like(self, what: str, value: Any, avals: list[Aval], trees: list | None,
                     tree: Any = None) -> list:
        """A rule's result flattened, checked against the values it pairs with; None (and a
        None entry for an argument) is zeros."""
        if trees is not None:  # one entry per differentiated argument
            if not isinstance(value, (tuple, list)) or len(value) != len(trees):
                raise ArgumentError(f"{self.name}: {what} must be a tuple with one entry per "
                                    f"differentiated argument ({len(trees)}), got {value!r:.80}")
            leaves = []
            for entry, t in zip(value, trees):
                leaves += [None] * t.num_leaves if entry is None else self._leaves_like(
                    what, entry, [], None, t)
        else:
            if value is None:
                return [None] * tree.num_leaves
            leaves, got = tree_flatten(value)
            if got != tree:
                raise ArgumentError(f"{self.name}: {what} has structure {got}, the values it "
                                    f"pairs with {tree}")
        for leaf, (shape, dtype) in zip(leaves, avals):
            if leaf is not None and _shape_of(leaf) != tuple(shape):
                raise ShapeError(f"custom_{self.kind} rule of {self.name}",
                                 [_shape_of(leaf), shape],
                                 f"{what} must be shaped like the values it pairs with", None)
        return [np.zeros(shape, dtype) if leaf is None else leaf
                for leaf, (shape, dtype) in zip(leaves, avals)] if avals else leaves


class custom_jvp(_Custom):
    """A function with its own JVP rule (`jax.custom_jvp`): `@sg.custom_jvp` on the
    function, then `@f.defjvp` on `rule(*nondiff_args, primals, tangents) ->
    (primal_out, tangent_out)`, where `primals` and `tangents` are tuples of the
    differentiated arguments and `tangent_out` is linear in `tangents`.

    Every transform uses the rule: reverse mode transposes it, and higher derivatives
    differentiate it (the Hessian is the derivative of the rule, unlike JAX no rule for the
    rule is needed). `nondiff_argnums` names arguments passed to the rule first, never
    differentiated. Returns a callable like the function; on plain arrays the function
    itself runs.

    Example::

        import numpy as np
        import symgrad as sg

        @sg.custom_jvp
        def log1pexp(x):
            return np.log1p(np.exp(x))

        @log1pexp.defjvp
        def log1pexp_jvp(primals, tangents):
            (x,), (t,) = primals, tangents
            return log1pexp(x), t * (1 - 1 / (1 + np.exp(x)))

        assert sg.grad(lambda x: np.sum(log1pexp(x)))(np.array([100.0])) == 1.0
    """

    kind = "jvp"

    def __init__(self, fun: Callable | None = None, nondiff_argnums: Sequence[int] = ()):
        if fun is not None:
            super().__init__(fun, nondiff_argnums)
        self.rule: Callable | None = None

    def __new__(cls, fun: Callable | None = None, nondiff_argnums: Sequence[int] = ()):
        if fun is None:  # @sg.custom_jvp(nondiff_argnums=(0,))
            return lambda f: cls(f, nondiff_argnums)
        return super().__new__(cls)

    def defjvp(self, rule: Callable) -> Callable:
        """Set the rule; returns it (usable as a decorator)."""
        if not callable(rule):
            raise ArgumentError(f"{self!r}.defjvp takes a function, got {rule!r}")
        self.rule = rule
        return rule

    def _missing_rule(self) -> str | None:
        return None if self.rule is not None else "defjvp(rule)"

    def _traced(self, builder: Builder, args: tuple, static: list, trees: list,
                primals: list[Node]) -> Any:
        out_leaves, out_tree = tree_flatten(self.fun(*args))
        outs = [_as_node(builder, x) for x in out_leaves]
        count = len(primals)
        avals = [_aval(n) for n in primals]
        specs = [ArgSpec(f"primal_{j}", s, d) for j, (s, d) in enumerate(avals)] + [
            ArgSpec(f"tangent_{j}", s, d) for j, (s, d) in enumerate(avals)]

        def rule(*leaves: Any) -> tuple:
            result = self.rule(*static, self._rebuild(trees, leaves[:count]),
                               self._rebuild(trees, leaves[count:]))
            if not (isinstance(result, (tuple, list)) and len(result) == 2):
                raise ArgumentError(f"the jvp rule of {self.name} must return a pair "
                                    "(primal_out, tangent_out)")
            return tuple(self._leaves_like("the rule's tangent_out", result[1],
                                           [_aval(n) for n in outs], None, out_tree))

        graph, foreign = self._trace_rule(rule, specs)
        body = RuleBody.make("jvp", self.name, graph, avals, [_aval(n) for n in outs], [],
                             0, 2 * count)
        return self._results(builder, outs, out_tree, body, [*primals, *foreign])


class custom_vjp(_Custom):
    """A function with its own VJP rule (`jax.custom_vjp`): `@sg.custom_vjp` on the function,
    then `f.defvjp(fwd, bwd)` with `fwd(*args) -> (out, residuals)` and
    `bwd(*nondiff_args, residuals, cotangent) -> tuple` (one cotangent per differentiated
    argument, shaped like it; None for zero).

    The gradient is `bwd`'s. Higher derivatives differentiate `bwd` as traced, through the
    residuals and the cotangent, so a Hessian through a custom_vjp is the derivative of its
    rule; `bwd` must be traceable numpy (a `bwd` symgrad cannot trace is refused with an
    error naming it, when the function is first traced). Forward mode (`jvp`, `jacfwd`)
    transposes `bwd` linearised at a zero cotangent: exact when `bwd` is linear in the
    cotangent, as a VJP is (for a clipping `bwd`, the slope of the clip at zero). Returns a
    callable like the function; on plain arrays the function itself runs.

    Example::

        import numpy as np
        import symgrad as sg

        @sg.custom_vjp
        def clip_gradient(x):
            return x

        clip_gradient.defvjp(lambda x: (x, None),
                             lambda residuals, g: (np.clip(g, -1.0, 1.0),))
        g = sg.grad(lambda x: np.sum(clip_gradient(x) * 5.0))(np.zeros(3))
        assert np.array_equal(g, np.ones(3))
    """

    kind = "vjp"

    def __init__(self, fun: Callable | None = None, nondiff_argnums: Sequence[int] = ()):
        if fun is not None:
            super().__init__(fun, nondiff_argnums)
        self.fwd: Callable | None = None
        self.bwd: Callable | None = None

    def __new__(cls, fun: Callable | None = None, nondiff_argnums: Sequence[int] = ()):
        if fun is None:
            return lambda f: cls(f, nondiff_argnums)
        return super().__new__(cls)

    def defvjp(self, fwd: Callable, bwd: Callable) -> None:
        if not (callable(fwd) and callable(bwd)):
            raise ArgumentError(f"{self!r}.defvjp takes two functions, fwd and bwd")
        self.fwd, self.bwd = fwd, bwd

    def _missing_rule(self) -> str | None:
        return None if self.bwd is not None else "defvjp(fwd, bwd)"

    def _traced(self, builder: Builder, args: tuple, static: list, trees: list,
                primals: list[Node]) -> Any:
        self._in_rule = True  # fwd may call the function itself
        try:
            result = self.fwd(*args)
        finally:
            self._in_rule = False
        if not (isinstance(result, (tuple, list)) and len(result) == 2):
            raise ArgumentError(f"the fwd of {self.name} must return a pair (out, residuals)")
        out_leaves, out_tree = tree_flatten(result[0])
        outs = [_as_node(builder, x) for x in out_leaves]
        res_leaves, res_tree = tree_flatten(result[1])
        specs, residuals, positions = [], [], []
        for j, leaf in enumerate(res_leaves):
            if _is_array(leaf):
                node = _as_node(builder, leaf)
                positions.append(len(specs))
                residuals.append(node)
                specs.append(ArgSpec(f"residual_{j}", node.shape, node.dtype))
            else:
                specs.append(ArgSpec(f"residual_{j}", None, None, leaf))
        start = len(specs)
        specs += [ArgSpec(f"cotangent_{j}", n.shape, n.dtype) for j, n in enumerate(outs)]
        avals = [_aval(n) for n in primals]

        def rule(*leaves: Any) -> tuple:
            grads = self.bwd(*static, res_tree.unflatten(leaves[:start]),
                             out_tree.unflatten(leaves[start:]))
            return tuple(self._leaves_like("bwd's result", grads, avals, trees))

        graph, foreign = self._trace_rule(rule, specs)
        body = RuleBody.make("vjp", self.name, graph, avals, [_aval(n) for n in outs],
                             positions, start, len(specs))
        return self._results(builder, outs, out_tree, body, [*primals, *residuals, *foreign])
