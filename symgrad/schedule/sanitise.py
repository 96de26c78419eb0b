"""The one sanitiser for everything from the user that is written into generated files.

User text reaches generated code in three ways only, each through one function here:
* a name (a parameter, a value named after a line of the user's source, the function's name):
  `identifier` makes it a plain ASCII identifier that can never be a keyword, a builtin, `np`,
  a module the templates import, or one of the templates' helpers (those start with `_`);
* a comment (a file name and a source line): `comment_text` keeps printable characters only,
  so nothing can end the comment (no line break of any kind: `\\n`, `\\r`, U+2028, `\\x0c`, ...);
* the module docstring: `docstring_text` is `comment_text` that also cannot end the docstring.

What these produce is exactly what the numpy backend's load-time grammar (`safety.py`) accepts
as names, and it rejects any source holding a line break other than `\\n`.
"""
from __future__ import annotations

import builtins
import keyword
import re

# Names a generated binding may never take: Python's own, and what the templates bind.
MODULE_NAMES = frozenset({"np", "numpy", "os", "threading", "contextvars"})
RESERVED = (MODULE_NAMES | frozenset(dir(builtins)) | frozenset(keyword.kwlist)
            | frozenset(keyword.softkwlist))
MAX_IDENTIFIER = 40
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def identifier(wish: object, fallback: str = "v", max_length: int = MAX_IDENTIFIER) -> str:
    """`wish` as a safe ASCII identifier: non-word characters become `_`, leading underscores
    move to the end and a reserved name gets a trailing `_` (`sum` -> `sum_`)."""
    name = re.sub(r"\W", "_", str(wish), flags=re.ASCII)[:max_length] or fallback
    if name[0].isdigit():
        name = "_" + name
    if name in RESERVED or name.startswith("_"):
        stripped = name.strip("_")
        name = stripped + "_" if stripped else fallback
    return "v" + name if name[0].isdigit() else name


def is_safe_identifier(name: str) -> bool:
    """Whether `name` is one `identifier` could have made: what generated code may bind."""
    return (isinstance(name, str) and _IDENTIFIER.fullmatch(name) is not None
            and name not in RESERVED)


def comment_text(text: object) -> str:
    """User text for a comment: printable characters only, so it cannot end the comment. It
    never becomes code."""
    return "".join(c if c.isprintable() else " " for c in str(text))


def docstring_text(text: object) -> str:
    """User text for the module docstring: one line, no backslash escapes, no quote that could
    end the docstring."""
    return comment_text(text).replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
