"""The graph IR: small, immutable nodes (op, inputs, static params, shape, dtype, source site).

Tracing builds these without importing SymPy. A `Builder` hash-conses nodes so that the same
operation on the same inputs is one node. `Graph` holds inputs and outputs, a topological order,
a validator, a pretty-printer (jaxpr-like, one line a node) and a canonical text form that the
cache key hashes.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Site:
    """Where in the user's source a node was created."""

    filename: str
    lineno: int
    text: str

    def __str__(self) -> str:
        return f"{self.short_filename}:{self.lineno}"

    @property
    def short_filename(self) -> str:
        return self.filename.replace("\\", "/").rsplit("/", 1)[-1]


@dataclass(frozen=True, eq=False)
class Node:
    """One value of the computation. Identity is the node object; structure is `key`."""

    op: str
    inputs: tuple["Node", ...]
    params: tuple[tuple[str, Any], ...]
    shape: Shape
    dtype: str
    site: Site | None = None
    serial: int = field(default_factory=itertools.count().__next__)

    def param(self, name: str, default: Any = None) -> Any:
        for key, value in self.params:
            if key == name:
                return value
        return default

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        size = 1
        for extent in self.shape:
            size *= extent
        return size

    @property
    def is_float(self) -> bool:
        return self.dtype.startswith("float")

    def __repr__(self) -> str:
        return f"<Node {self.op}#{self.serial} {self.dtype}{list(self.shape)}>"


def freeze_params(params: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(params.items()))


class Builder:
    """Creates nodes, reusing an existing node for an identical (op, inputs, params)."""

    def __init__(self) -> None:
        self._nodes: dict[tuple, Node] = {}
        self.site: Site | None = None  # the user source line new nodes are attributed to

    def node(self, op: str, inputs: Iterable[Node], params: dict[str, Any], shape: Shape,
             dtype: str, site: Site | None = None) -> Node:
        inputs = tuple(inputs)
        frozen = freeze_params(params)
        key = (op, tuple(id(i) for i in inputs), _hashable(frozen), shape, dtype)
        found = self._nodes.get(key)
        if found is not None:
            return found
        node = Node(op, inputs, frozen, tuple(shape), dtype, site or self.site)
        self._nodes[key] = node
        return node


def _hashable(value: Any) -> Any:
    try:
        hash(value)
        return value
    except TypeError:
        return repr(value)


def topological_order(outputs: Iterable[Node]) -> list[Node]:
    """Nodes reachable from `outputs`, inputs before users; iterative (graphs of 100k nodes)."""
    order: list[Node] = []
    seen: set[int] = set()
    for root in outputs:
        if id(root) in seen:
            continue
        stack: list[tuple[Node, Iterator[Node]]] = [(root, iter(root.inputs))]
        seen.add(id(root))
        while stack:
            node, pending = stack[-1]
            for child in pending:
                if id(child) not in seen:
                    seen.add(id(child))
                    stack.append((child, iter(child.inputs)))
                    break
            else:
                stack.pop()
                order.append(node)
    return order


class LoopName(str):
    """The name of a value that one statement bound among others, as a loop does (`x = f(x)`
    run n times names n values `x`): a statement the value has anyway takes the name, but the
    name makes no statement of its own (as a name written once does). Its adjoint's name,
    `x_bar`, is one too."""


@dataclass(frozen=True, eq=False)
class Graph:
    """A function as a graph: named inputs, output nodes, and names the user's code suggested."""

    inputs: tuple[Node, ...]
    outputs: tuple[Node, ...]
    name_hints: dict[Node, str] = field(default_factory=dict)

    def nodes(self) -> list[Node]:
        return topological_order(self.outputs)

    def users(self) -> dict[Node, list[Node]]:
        users: dict[Node, list[Node]] = {}
        for node in self.nodes():
            for child in node.inputs:
                users.setdefault(child, []).append(node)
        return users

    def canonical_text(self) -> str:
        """A text form that is equal for structurally equal graphs: what the cache key hashes."""
        number: dict[Node, int] = {}
        lines = []
        for node in itertools.chain(self.inputs, self.nodes()):
            if node in number:
                continue
            number[node] = len(number)
            args = ",".join(str(number[i]) for i in node.inputs)
            site = f"{node.site.short_filename}:{node.site.lineno}:{node.site.text}" if node.site else ""
            name = self.name_hints.get(node)  # names are code too: part of what is keyed
            site += f"|{name}" if name else ""
            lines.append(f"{node.op}({args}){node.params!r}{node.dtype}{list(node.shape)}|{site}")
        lines.append("out:" + ",".join(str(number[o]) for o in self.outputs))
        return "\n".join(lines)

    def pretty(self) -> str:
        """jaxpr-like text: one line a node, values named a, b, c, ..."""
        names: dict[Node, str] = {}
        taken = {str(node.param("name")) for node in self.inputs}
        letters = (n for n in map(_letters, itertools.count()) if n not in taken)

        def name(node: Node) -> str:
            if node not in names:
                names[node] = next(letters)
            return names[node]

        for node in self.inputs:
            names[node] = str(node.param("name"))
        header = ", ".join(f"{name(i)}:{i.dtype}{list(i.shape)}" for i in self.inputs)
        lines = [f"{{ lambda {header} . let"]
        for node in self.nodes():
            if node.op == "input":
                names.setdefault(node, str(node.param("name")))
                continue
            args = " ".join(name(i) for i in node.inputs)
            params = " ".join(f"{k}={_show(v)}" for k, v in node.params)
            hint = self.name_hints.get(node)
            where = f"  # {node.site}" if node.site else ""
            if hint:
                where = (where or "  #") + f" ({hint})"
            lines.append(f"    {name(node)}:{node.dtype}{list(node.shape)} = {node.op}"
                         f"{(' ' + params) if params else ''} {args}{where}".rstrip())
        lines.append(f"  in ( {', '.join(name(o) for o in self.outputs)} ) }}")
        return "\n".join(lines)

    def validate(self) -> None:
        """Check the invariants every stage relies on; raise AssertionError naming the node."""
        from .ops import OPS

        for node in self.nodes():
            record = OPS.get(node.op)
            assert record is not None, f"unknown op {node.op!r} in {node!r}"
            if record.arity is not None:
                assert len(node.inputs) == record.arity, f"{node!r}: expected {record.arity} inputs"
            assert all(isinstance(d, int) and d >= 0 for d in node.shape), f"{node!r}: bad shape"


def _letters(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(ord("a") + rem) + letters
    return letters


def _show(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."
