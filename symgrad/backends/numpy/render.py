"""Rendering: a lowered `Program` into module source through the jinja2 templates.

Templates own the layout of the generated file; the printers own the expressions. Output is
deterministic: no timestamps, no absolute paths, nothing that depends on hash seeds.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jinja2

from ...cache.key import NUMPY_TEMPLATE, templates_dir
from .lower import BlockFunction, Program, Statement
from ...schedule.sanitise import comment_text, docstring_text


@lru_cache(maxsize=None)
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


@dataclass
class Block:
    comment: str | None
    guarded: bool
    statements: list[Statement]
    function: "RenderedFunction | None" = None  # a nested block function (blocking.py)


@dataclass
class RenderedFunction:
    name: str
    params: list[str]
    blocks: list[Block]
    returns: str | None
    rows: int
    block_rows: int


def _comment(statement: Statement) -> str | None:
    site = statement.site
    if site is None:
        return None
    text = " ".join(site.text.split())  # one line, whatever the source held
    where = f"{site.short_filename}:{site.lineno}"
    return one_line(f"{where}  {text}" if text else where)


one_line = comment_text  # user text for a comment: the one sanitiser (sanitise.py)


def _readable_header(header: dict) -> dict:
    return {name: [docstring_text(v) for v in value] if isinstance(value, list)
            else value if isinstance(value, bool) else docstring_text(value)
            for name, value in header.items()}


def blocks_of(statements: list[Statement | BlockFunction]) -> list[Block]:
    """Consecutive statements from the same user line share one comment."""
    blocks: list[Block] = []
    last_comment = None  # the comment in force (a guarded block of the same line has none)
    for statement in statements:
        if isinstance(statement, BlockFunction):
            blocks.append(Block(None, False, [], RenderedFunction(
                statement.name, statement.params, blocks_of(statement.statements),
                statement.returns, statement.rows, statement.block_rows)))
            last_comment = None  # after a block function, the next line names its source again
            continue
        comment = _comment(statement)
        same_line = blocks and blocks[-1].function is None and last_comment == comment
        if same_line and blocks[-1].guarded == statement.guarded:
            blocks[-1].statements.append(statement)
        elif same_line:
            blocks.append(Block(None, statement.guarded, [statement]))
        else:
            blocks.append(Block(comment, statement.guarded, [statement]))
        last_comment = comment
    return blocks


@dataclass
class RenderedLoopPart:
    """A loop body (its statements in blocks) or a loop driver, for the template."""

    kind: str  # 'body' or 'loop'
    name: str
    params: list[str]
    doc: str
    returns: str
    blocks: list[Block]
    setup: list[tuple[str, str]]
    header: str
    lines: list[tuple[str, str]]


def _loop_part(function: Any) -> RenderedLoopPart:
    if function.kind == "body":
        return RenderedLoopPart("body", function.name, function.params,
                                docstring_text(function.doc), function.returns,
                                blocks_of(function.statements), [], "", [])
    return RenderedLoopPart("loop", function.name, function.params, docstring_text(function.doc),
                            function.returns, [], function.setup, function.header,
                            function.lines)


def render_numpy(program: Program, header: dict) -> str:
    template = environment().get_template(NUMPY_TEMPLATE)
    return template.render(
        header=_readable_header(header),
        function_name=program.function_name,
        params=program.params,
        blocks=blocks_of(program.statements),
        returns=program.returns,
        constants=program.constants,
        helpers=program.helpers,
        loop_parts=[_loop_part(f) for f in program.functions],
    )
