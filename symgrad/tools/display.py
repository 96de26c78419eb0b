"""How compiled functions and `.lower(...)` results show in a notebook (Jupyter's `_repr_*_`).

A `Lowered` shows as three sections: the generated source (highlighted with Pygments where it
is installed, plain otherwise), the derivative as typeset math (pure LaTeX in `$$...$$`, which
the notebook's MathJax or KaTeX typesets), and the graph as an inline SVG picture (Graphviz;
without it, a line saying how to install it and the text form). `_repr_latex_` gives the math
alone. In a plain terminal nothing changes: `print(low.math())` as before.

The page is built as data: each section is a (title, HTML) pair put into one template string;
every user-visible text is escaped.
"""
from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from ..symbolic.latex import program_latex
from .picture import INSTALL_HINT, GraphvizError, graphviz_available

if TYPE_CHECKING:
    from ..api import CompiledFunction, Lowered

MAX_PICTURE_NODES = 1500  # dot takes seconds at a few thousand nodes, and nobody reads more
_STYLE = ("font-family: var(--jp-code-font-family, monospace); font-size: 12px; "
          "overflow-x: auto; padding: 6px; background: #f7f7f7; border-radius: 4px")
_SECTION = ('<details class="symgrad-{kind}" open><summary><b>{title}</b></summary>\n'
            '{body}\n</details>')


def lowered_html(lowered: "Lowered") -> str:
    sections = [("source", f"generated source ({html.escape(_where(lowered))})",
                 source_html(lowered.source))]
    if lowered.details:
        sections.append(("math", "the derivative as math",
                         f'<div class="symgrad-math">$${math_latex(lowered)}$$</div>'))
    sections.append(("graph", picture_title(lowered), picture_html(lowered)))
    body = "\n".join(_SECTION.format(kind=kind, title=title, body=content)
                     for kind, title, content in sections)
    return (f'<div class="symgrad-lowered">\n<p><code>{html.escape(_name(lowered))}'
            f"({html.escape(lowered.signature)})</code></p>\n{body}\n</div>")


def lowered_latex(lowered: "Lowered") -> str:
    return f"$${math_latex(lowered)}$$"


def math_latex(lowered: "Lowered") -> str:
    program = lowered.details["program"]
    return program_latex(program.equations, program.names, aligned=True)


def compiled_html(compiled: "CompiledFunction") -> str:
    """A compiled function: what it is, and each signature compiled so far with its source."""
    title = html.escape(repr(compiled))
    signatures = list(compiled._signatures.values())
    if not signatures:
        return (f"<p><code>{title}</code>: not compiled yet (each call signature compiles "
                "once; <code>.lower(*args)</code> shows every stage)</p>")
    parts = [f"<p><code>{title}</code>: {len(signatures)} signature"
             f"{'' if len(signatures) == 1 else 's'} compiled</p>"]
    for entry in signatures:
        parts.append(_SECTION.format(kind="source", title=html.escape(str(entry.path or "memory")),
                                     body=source_html(entry.source)))
    return "\n".join(parts)


def source_html(source: str) -> str:
    try:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer
    except ImportError:
        return f'<pre class="symgrad-source" style="{_STYLE}">{html.escape(source)}</pre>'
    formatter = HtmlFormatter(noclasses=True, nobackground=True,
                              cssstyles=_STYLE, cssclass="symgrad-source")
    return highlight(source, PythonLexer(), formatter)


def picture_title(lowered: "Lowered") -> str:
    return "the graph, forward and backward" if lowered.differentiated else "the traced graph"


def picture_html(lowered: "Lowered") -> str:
    graph = lowered.derivative_graph if lowered.differentiated else lowered.graph
    size = len(set(graph.nodes()) | set(graph.inputs))
    if not graphviz_available():
        return (f"<p>The picture needs Graphviz: {html.escape(INSTALL_HINT)}.</p>"
                f'<pre style="{_STYLE}">{html.escape(graph.pretty())}</pre>')
    if size > MAX_PICTURE_NODES:
        return (f"<p>{size} nodes: more than a picture in a notebook can show "
                f"({MAX_PICTURE_NODES}); <code>.derivative_graph.to_svg()</code> or "
                "<code>symgrad graph --format svg</code> draw it anyway.</p>")
    try:
        svg = graph.to_svg()
    except GraphvizError as error:
        return f"<p>No picture: {html.escape(str(error))}</p>"
    start = svg.find("<svg")  # the XML prologue and doctype do not belong inside HTML
    svg = svg[start:].replace("<svg ", '<svg style="max-width: 100%; height: auto" ', 1)
    return f'<div class="symgrad-picture">{svg}</div>'


def _name(lowered: "Lowered") -> str:
    function: Any = lowered.function
    return getattr(function, "__name__", "function")


def _where(lowered: "Lowered") -> str:
    if lowered.path is None:
        return "in memory"
    return ("from the disk cache: " if lowered.from_cache else "") + str(lowered.path)
