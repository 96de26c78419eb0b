"""The numpy backend's load-time check: allow by grammar, never deny by pattern.

Loading cached source is code execution. A module runs only if its parsed tree has exactly the
shapes that `templates/numpy/module.py.j2` and the printers write:

module    := docstring import* constant* helper* function          (in any order after the
                                                                    docstring, each name once)
import    := `import numpy as np` | `import os` | `import threading` | `import contextvars`
             | `import warnings`                                    (for the helpers only)
constant  := NAME = np.array(literal, dtype=np.D) | np.arange(int, dtype=np.D)
             | np.eye(int, dtype=np.D) | np.zeros((int, ...), dtype=np.D)
                                                                    (no other module-level call)
helper    := a `_name` function or constant equal, node for node, to one the templates hold
function  := def NAME(NAME, ...): statement* return expr          (the generated function)
statement := target = expr | NAME op= expr | np.F(..., out=NAME) | _in_blocks(BLOCK, int, int,
             NAME, ...) | with np.errstate(K="ignore"|"warn"|"raise", ...): statement*
             | block                                                (nested functions: one level)
block     := def BLOCK(NAME, ...): statement* [return expr, ...]
loops     := the loop bodies and drivers of loop_code.py before the generated function, each
             called by a later one, never a value (grammar_loops.py writes their grammar)
target    := NAME | (NAME, ...) | NAME[index]
expr      := NAME | number | str | None | ... | arithmetic, comparisons, tuples, lists, slices,
             subscripts | np.F(...) | np.linalg.F(...) | np.UFUNC.METHOD(...) | np.DTYPE | np.inf
             | expr.ARRAY_ATTRIBUTE | expr.ARRAY_METHOD(...) | _helper(...) | PURE_BUILTIN(...)

Names: every binding (parameter, temporary, constant, block) is an identifier `sanitise.py`
could have made -- never a builtin, `np`, a module the templates import, a helper (`_...`) or a
keyword -- bound once at module level, a block's name bound once and only ever handed to
`_in_blocks`. Every name read is the current function's, an enclosing one's, a module constant
or (called) a helper or one of `PURE_BUILTINS`; helpers, blocks and numpy functions are never
values, so nothing callable can be passed around. `np.F` is from the public numpy namespace
except I/O, callback-taking and process-state functions (`NUMPY_REFUSED`).

Text: only printable characters and `\\n` (no `\\r`, U+2028, `\\x0c`, `\\x1c`, `\\x85`, ...), at
most `MAX_SOURCE_CHARS`; expressions nest at most `MAX_DEPTH` deep. Anything else raises
`GeneratedCodeError` naming the line. The check imports neither SymPy nor jinja2 and walks the
tree once; the caller compiles the checked tree, so what runs is what was checked.
"""
from __future__ import annotations

import ast
import re
from functools import lru_cache

from ...errors import GeneratedCodeError
from .grammar import PURE_BUILTINS, Checker, helper_name

MAX_SOURCE_CHARS = 64 << 20
_FAST_TEXT = re.compile(r"[\n\x20-\x7e]*")  # printable ASCII and \n: the usual whole source


def check_source(source: str, filename: str = "<generated>") -> ast.Module:
    """Check `source` against the grammar; its tree, ready for `compile`."""
    check_text(source, filename)
    try:
        tree = ast.parse(source, filename)
    except SyntaxError as error:
        raise GeneratedCodeError(f"{filename}:{error.lineno}: generated code does not parse "
                                 f"({error.msg})") from None
    except (RecursionError, MemoryError, ValueError) as error:
        raise GeneratedCodeError(f"{filename}: generated code refused before execution: it "
                                 f"nests too deeply to parse ({type(error).__name__})") from None
    Checker(filename, template_helper).module(tree)
    return tree


def check_text(source: str, filename: str = "<generated>") -> None:
    """Printable characters and `\\n` only, and not too long."""
    if not isinstance(source, str):
        raise GeneratedCodeError(f"{filename}: generated code is not text")
    if len(source) > MAX_SOURCE_CHARS:
        raise GeneratedCodeError(f"{filename}: generated code refused before execution: "
                                 f"{len(source)} characters (at most {MAX_SOURCE_CHARS})")
    if _FAST_TEXT.fullmatch(source):
        return
    for index, char in enumerate(source):
        if char != "\n" and not char.isprintable():
            line = source.count("\n", 0, index) + 1
            raise GeneratedCodeError(
                f"{filename}:{line}: generated code refused before execution: the character "
                f"{char!r} (symgrad writes printable characters and '\\n' only; any other line "
                "break would make lines mean different things to different readers)")


@lru_cache(maxsize=None)
def _helper_blocks() -> dict[str, str]:
    """Helper name -> the text of the template block (`{% if ... in helpers %}`) defining it.
    String work only: a block is parsed when a module holds one of its helpers."""
    from ...cache.key import templates_dir

    blocks: dict[str, str] = {}
    block = re.compile(r"^{%-? if [^%]*%}\n(.*?)^{%-? endif %}", re.MULTILINE | re.DOTALL)
    defines = re.compile(r"^(?:def (_\w+)\(|(_\w+) = )", re.MULTILINE)
    for path in sorted((templates_dir() / "numpy").glob("*.j2")):
        for match in block.finditer(path.read_text(encoding="utf-8")):
            text = match[1]
            if "{{" in text or "{%" in text or "{#" in text:
                continue  # generated layout, not a helper
            for name in defines.finditer(text):
                blocks[name[1] or name[2]] = text
    return blocks


@lru_cache(maxsize=None)
def template_helper(name: str) -> str | None:
    """The tree (`ast.dump`) of the helper `name` as the templates hold it; None if none."""
    text = _helper_blocks().get(name)
    return None if text is None else _block_trees(text).get(name)


@lru_cache(maxsize=None)
def _block_trees(text: str) -> dict[str, str]:
    try:
        statements = ast.parse(text).body
    except SyntaxError:
        return {}
    return {helper_name(s): ast.dump(s) for s in statements if helper_name(s) is not None}


def template_helpers() -> dict[str, str]:
    """Every helper the templates hold: its name and its tree."""
    return {name: tree for name in _helper_blocks()
            if (tree := template_helper(name)) is not None}


__all__ = ["PURE_BUILTINS", "check_source", "check_text", "template_helper", "template_helpers"]
