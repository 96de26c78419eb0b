"""Pictures of graphs: Graphviz text (`to_dot`) and, through the `dot` program, SVG or PNG.

In the spirit of PyTorch's autograd tutorial figure: inputs at the top (the differentiated
parameters filled and marked `wrt`), one box per operation labelled with its op, shape and the
user's source line, outputs with a double border; in a derivative graph the backward pass is
drawn in another colour with dashed edges, so the gradient flow reads apart from the forward
computation. The dot text is built as data (one attribute table per kind of node) and is the
same for the same graph, byte for byte.

Graphviz is a system program (`apt-get install graphviz`, `brew install graphviz`,
`conda install graphviz`); without it `to_svg` / `to_png` raise `GraphvizMissingError` saying so,
and `to_dot` still works.
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any

from ..errors import SymgradError
from ..ir.graph import Graph, Node

FORMATS = ("text", "dot", "svg", "png")
INSTALL_HINT = ("install Graphviz (Debian/Ubuntu: `apt-get install graphviz`, macOS: "
                "`brew install graphviz`, conda: `conda install graphviz`), or use "
                "--format dot / .to_dot() and render it elsewhere")

# Kinds of node -> Graphviz attributes (the legend of the picture).
STYLE: dict[str, dict[str, str]] = {
    "input": {"shape": "ellipse", "style": "filled", "fillcolor": "#eeeeee"},
    "wrt": {"shape": "ellipse", "style": "filled,bold", "fillcolor": "#9ecae1",
            "color": "#08519c"},
    "const": {"shape": "plaintext", "fontcolor": "#666666"},
    "forward": {"shape": "box", "style": "rounded,filled", "fillcolor": "#fff7bc"},
    "backward": {"shape": "box", "style": "rounded,filled", "fillcolor": "#fdd0a2",
                 "color": "#d94801"},
}
EDGE_STYLE: dict[str, dict[str, str]] = {
    "forward": {"color": "#333333"},
    "backward": {"color": "#d94801", "style": "dashed", "penwidth": "1.4"},
}
_CLUSTER_ATTRIBUTES = {"style": "dashed", "color": "#bbbbbb", "fontsize": "10",
                       "fontname": "Courier", "labeljust": "l"}
_GRAPH_ATTRIBUTES = {"rankdir": "TB", "fontname": "Helvetica", "fontsize": "11",
                     "labelloc": "t"}


class GraphvizMissingError(SymgradError):
    """The `dot` program (Graphviz) is not installed; the picture needs it."""


class GraphvizError(SymgradError):
    """`dot` ran and failed."""


@dataclass(frozen=True, eq=False)
class PictureGraph(Graph):
    """A traced graph (or a derivative graph) that also draws itself.

    `differentiated` names the parameters derivatives are taken for; `forward` holds the nodes
    of the traced function (None: every node is forward), the rest being the backward pass.
    `str()` is the one-line-a-node text of `pretty()`; in a notebook it shows as the picture.
    """

    differentiated: tuple[str, ...] = ()
    forward: frozenset[Node] | None = None
    title: str = ""
    output_names: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        return self.pretty()

    def __contains__(self, item: object) -> bool:
        """A node of the graph, or (as when this was text) a piece of its text."""
        if isinstance(item, str):
            return item in self.pretty()
        return item in set(self.nodes()) | set(self.inputs)

    def to_dot(self) -> str:
        return to_dot(self)

    def to_svg(self) -> str:
        return render(self.to_dot(), "svg").decode("utf-8")

    def to_png(self) -> bytes:
        return render(self.to_dot(), "png")

    def _repr_svg_(self) -> str | None:
        return self.to_svg() if graphviz_available() else None  # else: the text repr

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.pretty())


def picture_graph(graph: Graph, differentiated: tuple[str, ...] = (),
                  forward: Graph | None = None, title: str = "",
                  output_names: tuple[str, ...] = ()) -> PictureGraph:
    """`graph` as a PictureGraph; `forward` (the traced graph) tells the backward nodes apart."""
    nodes = None if forward is None else _forward_part(graph, forward)
    if not output_names and forward is not None:  # (value,) then one gradient per parameter
        bars = tuple(f"{name}_bar" for name in differentiated)
        output_names = ("value",) * (len(graph.outputs) - len(bars)) + bars
    return PictureGraph(graph.inputs, graph.outputs, dict(graph.name_hints), tuple(differentiated),
                        nodes, title, tuple(output_names))


def _forward_part(graph: Graph, forward: Graph) -> frozenset[Node]:
    """The nodes that do not depend on the backward pass's seed: the constant 1 that reverse
    mode starts from (made outside any user line) or the cotangent, an input the traced
    function does not have. (The derivative graph is built on a rewritten copy of the traced
    graph, so its forward nodes are not the traced graph's own objects.)"""
    names = {str(node.param("name")) for node in forward.inputs}
    backward: set[Node] = set()
    for node in graph.nodes():
        seed = (node.op == "input" and str(node.param("name")) not in names) or (
            node.op == "const" and node.site is None and node.param("value") == 1)
        if seed or any(operand in backward for operand in node.inputs):
            backward.add(node)
    return frozenset(node for node in graph.nodes() if node not in backward) \
        | frozenset(graph.inputs)


# ---------------------------------------------------------------------------------------------
# dot text
# ---------------------------------------------------------------------------------------------
def to_dot(graph: PictureGraph) -> str:
    numbers: dict[Node, int] = {}
    for node in (*graph.inputs, *graph.nodes()):
        numbers.setdefault(node, len(numbers))
    outputs = {node: index for index, node in enumerate(graph.outputs)}
    lines = ["digraph symgrad {"]
    title = "\\n".join(filter(None, [graph.title, _legend(graph)]))
    lines.append(f"  graph [{_attributes({**_GRAPH_ATTRIBUTES, 'label': title})}];")
    lines.append(f"  node [{_attributes({'fontname': 'Helvetica', 'fontsize': '10'})}];")
    clusters: dict[Any, list[str]] = {}
    for node, number in numbers.items():
        attributes = {**STYLE[_kind(graph, node)], "label": _label(graph, node, outputs)}
        if node in outputs:
            attributes["peripheries"] = "2"
        line = f"n{number} [{_attributes(attributes)}];"
        site = node.site if node.op not in ("input", "const") and not _is_backward(graph, node) \
            else None
        clusters.setdefault(site and (site.short_filename, site.lineno, site.text), []).append(line)
    for index, (site, members) in enumerate(clusters.items()):
        if site is None:
            lines.extend(f"  {member}" for member in members)
            continue
        label = _escape(f"{site[0]}:{site[1]}  {_short(site[2].strip(), 60)}")
        lines.append(f"  subgraph cluster_{index} {{")
        lines.extend(f'    {key}="{value}";'
                     for key, value in (_CLUSTER_ATTRIBUTES | {"label": label}).items())
        lines.extend(f"    {member}" for member in members)
        lines.append("  }")
    if graph.inputs:
        inputs = " ".join(f"n{numbers[i]};" for i in graph.inputs)
        lines.append(f"  {{ rank=source; {inputs} }}")
    for node, number in numbers.items():
        style = EDGE_STYLE["backward" if _is_backward(graph, node) else "forward"]
        for operand in node.inputs:
            lines.append(f"  n{numbers[operand]} -> n{number} [{_attributes(style)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _legend(graph: PictureGraph) -> str:
    parts = []
    if graph.differentiated:
        parts.append(f"blue: differentiated ({', '.join(graph.differentiated)})")
    if graph.forward is not None:
        parts.append("orange, dashed: the backward pass (gradient flow)")
    return "; ".join(parts)


def _is_backward(graph: PictureGraph, node: Node) -> bool:
    return graph.forward is not None and node not in graph.forward


def _kind(graph: PictureGraph, node: Node) -> str:
    if node.op == "input":
        return "wrt" if str(node.param("name")) in graph.differentiated else "input"
    if node.op == "const" and not node.inputs:
        return "const"
    return "backward" if _is_backward(graph, node) else "forward"


def _label(graph: PictureGraph, node: Node, outputs: dict[Node, int]) -> str:
    shape = f"{_dtype_short(node.dtype)}[{','.join(map(str, node.shape))}]"
    if node.op == "input":
        name = str(node.param("name"))
        wrt = " (wrt)" if name in graph.differentiated else ""
        return f"{name}{wrt}\\n{shape}"
    if node.op == "const" and not node.inputs:
        return _escape(_short(str(node.param("value"))))
    first = node.op
    if node.op == "ew":
        first = f"ew: {_short(str(node.param('expr')))}"
    lines = [_escape(first), shape]
    hint = graph.name_hints.get(node)
    if node in outputs and outputs[node] < len(graph.output_names):
        hint = graph.output_names[outputs[node]]
    if hint:
        lines.insert(0, _escape(hint) + " =")
    if node.site is not None and _is_backward(graph, node):
        lines.append(_escape(f"from {node.site}"))  # (forward nodes: their box's title)
    return "\\n".join(lines)


def _dtype_short(dtype: str) -> str:
    for long, short in (("float", "f"), ("uint", "u"), ("int", "i")):
        if dtype.startswith(long):
            return short + dtype[len(long):]
    return dtype


def _short(text: str, limit: int = 32) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def _attributes(attributes: dict[str, str]) -> str:
    return ", ".join(f'{key}="{value}"' for key, value in attributes.items())


# ---------------------------------------------------------------------------------------------
# rendering with Graphviz
# ---------------------------------------------------------------------------------------------
def graphviz_available() -> bool:
    return shutil.which("dot") is not None


def render(dot_text: str, fmt: str, timeout: float = 60) -> bytes:
    """dot text -> SVG or PNG bytes, by the `dot` program."""
    program = shutil.which("dot")
    if program is None:
        raise GraphvizMissingError(f"the {fmt.upper()} picture needs the Graphviz program `dot`, "
                                   f"which is not on PATH: {INSTALL_HINT}")
    try:
        done = subprocess.run([program, f"-T{fmt}"], input=dot_text.encode("utf-8"),
                              capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise GraphvizError(f"dot -T{fmt} took more than {timeout:.0f}s (a very large graph: "
                            "try --format text)") from None
    if done.returncode != 0:
        message = " ".join(done.stderr.decode("utf-8", "replace").split())
        raise GraphvizError(f"dot -T{fmt} failed (exit {done.returncode}): {message}")
    return done.stdout
