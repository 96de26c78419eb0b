"""Loops and branches in the generated numpy module: one body function, one loop function.

A loop node (loops.py) becomes two module-level functions, built here as data and laid out by
the template: the body, lowered like any function (`lower.lower` on the body's graph: the same
names, comments and statements), and a small driver holding the `for` (or `while`, or `if`)
that calls it. The outer function calls the driver once and reads its results (`t5[0]`).
Only the results something reads are stacked: a forward pass does not save the carries that
only reverse mode needs.

The statement shapes emitted here (the safety check accepts them; see safety.py):

    name = np.empty(SHAPE, dtype=np.DTYPE)              # a stack of per-step results
    for name in range(N):  /  for name in range(N - 1, -1, -1):
        stack[name] = carry                             # save the carry a step receives
        a, b, stack[name] = body(name, a, xs[name], w)  # one step
    while cond(a, w)[0]:  a, = body(a, w)              # while_loop
    if index == K:  return branch(a, w)                 # cond / switch
    return a, b, stack / return a, None, stack
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from ...autodiff.loop_rules import reverse_through_while
from ...ir.graph import Graph, Node
from ...schedule.names import ModuleNames, Namer
from ...trace.loops import LoopBody, expand_body
from .printer import empty_code


@dataclass
class BodyFunction:
    """A loop body (or branch) as a module-level function: a lowered program."""

    name: str
    params: list[str]
    doc: str
    statements: list[Any]  # lower.Statement | BlockFunction
    returns: str
    kind: str = "body"


@dataclass
class LoopFunction:
    """The driver of a loop or branch: setup lines, the loop (or branch) header, its lines."""

    name: str
    params: list[str]
    doc: str
    setup: list[tuple[str, str]]  # (target, code) before the loop
    header: str  # `for step in range(10):`, `while cond(x)[0]:`, or "" for branches
    lines: list[tuple[str, str]]  # (target, code) inside it; for branches (test, call)
    returns: str
    kind: str = "loop"


@dataclass
class LoopCode:
    call: str  # the driver's name, called by the enclosing function
    functions: list[Any]
    constants: list[tuple[str, str]]
    helpers: set[str]


def call_code(function: str, arguments: Sequence[str]) -> str:
    return f"{function}({', '.join(arguments)})"


def _item(array: str, index: str) -> str:
    return f"{array}[{index}]"


def _targets(names: Sequence[str]) -> str:
    return ", ".join(names) + ("," if len(names) == 1 else "")


def body_function(body: LoopBody, used: Sequence[int], wish: str, module: ModuleNames,
                  structure: Any = None, role: str = "One step of") -> tuple[BodyFunction, Any]:
    """The body's graph, outputs `used` only, lowered into a function; and its program."""
    from ...symbolic.graph_rewrites import rewrite_graph
    from .lower import lower
    from ..speed_rules import optimize, optimize_graph
    from .backend import SPEED_RULES

    key = ("body", body.digest, tuple(used))
    if key in module.made:  # the same step, lowered once (a recomputing pullback reads it)
        return BodyFunction(module.made[key], [], "", [], ""), None
    graph, _ = rewrite_graph(expand_body(body.graph))
    graph = optimize_graph(graph, SPEED_RULES.before)
    outputs, hints = optimize([graph.outputs[i] for i in used], dict(graph.name_hints),
                              SPEED_RULES.after)
    for k, out in enumerate(outputs):
        hints.setdefault(out, "out" if len(outputs) > 1 else "result")
    params = [str(n.param("name")) for n in sorted(graph.inputs,
                                                   key=lambda n: n.param("position"))]
    name = Namer(set(), module).claim(wish, module_level=True)
    module.made[key] = name
    structure = tuple(range(len(outputs))) if structure is None else structure
    program = lower(outputs, structure, params, hints, name, module=module)
    doc = f"{role} {body.name} ({body.where})."
    return BodyFunction(name, program.params, doc, program.statements, program.returns), program


def _collect(code: LoopCode, program: Any, function: BodyFunction) -> None:
    if program is None:
        return  # made before
    code.functions.extend(program.functions)
    code.functions.append(function)
    code.constants.extend(program.constants)
    code.helpers.update(program.helpers)


def scan_code(node: Node, used: set[int], module: ModuleNames) -> LoopCode:
    """`for step in range(n): carries, stacks[step] = body(step, carries, xs[step], consts)`."""

    body: LoopBody = node.param("body")
    _, nc, nx, nk = body.counts
    graph: Graph = body.graph
    n = node.param("length")
    inputs = sorted(graph.inputs, key=lambda i: i.param("position"))
    outs = graph.outputs
    # A per-step result that is one of the body's inputs (the saved carry) is stored by the
    # loop itself; the others come from the body function.
    passthrough = {k: outs[k].param("position") for k in range(nc, len(outs))
                   if outs[k].op == "input" and k in used}
    computed = list(range(nc)) + [k for k in range(nc, len(outs))
                                  if k in used and k not in passthrough]
    code = LoopCode("", [], [], set())
    function, program = body_function(body, computed, body.name, module)
    _collect(code, program, function)
    namer = Namer(set(), module)
    local = {0: namer.claim(str(inputs[0].param("name")))}
    params = []
    for p in range(1, len(inputs)):
        base = str(inputs[p].param("name"))
        local[p] = namer.claim(base if p <= nc or p > nc + nx else f"{base}s")
        params.append(local[p])
    counter = local[0]
    stacks = {k: namer.claim(f"{local[passthrough[k]]}_stack" if k in passthrough
                             else ("ys" if len(outs) - nc == 1 else f"ys{k - nc}"))
              for k in range(nc, len(outs)) if k in used}
    setup = [(stacks[k], empty_code((n,) + outs[k].shape, outs[k].dtype)) for k in stacks]
    lines = [(_item(stacks[k], counter), local[p]) for k, p in passthrough.items()]
    arguments = [counter] + [local[p] for p in range(1, 1 + nc)] \
        + [_item(local[p], counter) for p in range(1 + nc, 1 + nc + nx)] \
        + [local[p] for p in range(1 + nc + nx, len(inputs))]
    targets = [local[1 + k] if k < nc else _item(stacks[k], counter) for k in computed]
    lines.append((_targets(targets), call_code(function.name, arguments)))
    steps = f"range({n - 1}, -1, -1)" if node.param("reverse") else f"range({n})"
    returns = _targets([local[1 + k] if k < nc else stacks.get(k, "None")
                        for k in range(len(outs))])
    code.call = namer.claim(f"{body.name}_loop", module_level=True)
    direction = ", last first" if node.param("reverse") else ""
    doc = f"{body.name} ({body.where}), {n} steps{direction}: the carries, stacked results."
    code.functions.append(LoopFunction(code.call, params, doc, setup,
                                       f"for {counter} in {steps}:", lines, returns))
    return code


def while_code(node: Node, module: ModuleNames) -> LoopCode:
    """`while cond(carries, consts)[0]: carries = body(carries, consts)`."""

    cond: LoopBody = node.param("cond")
    body: LoopBody = node.param("body")
    nc = body.counts[1]
    code = LoopCode("", [], [], set())
    test, program = body_function(cond, [0], cond.name, module, role="The test of")
    _collect(code, program, test)
    step, program = body_function(body, list(range(nc)), body.name, module)
    _collect(code, program, step)
    namer = Namer(set(), module)
    params = [namer.claim(str(n.param("name")))
              for n in sorted(body.graph.inputs, key=lambda i: i.param("position"))]
    header = f"while {_item(call_code(test.name, params), '0')}:"
    lines = [(_targets(params[:nc]), call_code(step.name, params))]
    code.call = namer.claim(f"{body.name}_while", module_level=True)
    doc = f"{body.name} ({body.where}) while {cond.name} ({cond.where}) holds: the carries."
    code.functions.append(LoopFunction(code.call, params, doc, [], header, lines,
                                       _targets(params[:nc])))
    return code


def cond_code(node: Node, module: ModuleNames) -> LoopCode:
    """`if index == 0: return branch0(operands)` ... the last branch otherwise."""

    branches: tuple[LoopBody, ...] = node.param("branches")
    code = LoopCode("", [], [], set())
    functions = []
    for body in branches:
        function, program = body_function(body, list(range(len(body.graph.outputs))),
                                          body.name, module, role="The branch")
        _collect(code, program, function)
        functions.append(function)
    namer = Namer(set(), module)
    index = namer.claim("index")
    params = [namer.claim(str(n.param("name")))
              for n in sorted(branches[0].graph.inputs, key=lambda i: i.param("position"))]
    lines = [(f"{index} == {k}", call_code(f.name, params))
             for k, f in enumerate(functions[:-1])]
    suffix = "_vjp" if branches[0].name.endswith("_vjp") else ""
    code.call = namer.claim(f"select_branch{suffix}", module_level=True)
    names = ", ".join(f"{b.name} ({b.where})" for b in branches)
    doc = f"The branch that index selects, and only it: {names}."
    code.functions.append(LoopFunction(code.call, [index] + params, doc, [], "", lines,
                                       call_code(functions[-1].name, params)))
    return code


def loop_code(node: Node, used: set[int], module: ModuleNames) -> LoopCode:
    key = (node.op, node.params, tuple(sorted(used)))
    if key in module.made:
        return LoopCode(module.made[key], [], [], set())
    if node.op == "while_vjp":
        raise reverse_through_while(node.site)
    if node.op == "scan":
        code = scan_code(node, used, module)
    elif node.op == "while":
        code = while_code(node, module)
    else:
        code = cond_code(node, module)
    module.made[key] = code.call
    return code
