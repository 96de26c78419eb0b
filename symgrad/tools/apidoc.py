"""docs/api.md, generated from the public docstrings: `python -m symgrad.tools.apidoc > docs/api.md`.

Every name in `symgrad.__all__` in order: transforms and functions with their signatures and
docstrings, the public methods and properties of the classes, then the errors, one line each.
A docstring's `Example::` block becomes a Python block, and the tests run every Python block
of docs/, so the examples cannot go stale; a test also checks that the file is current.
"""
from __future__ import annotations

import inspect
import textwrap
from typing import Any, Callable

HEADER = """# API reference

Generated from symgrad's docstrings by `python -m symgrad.tools.apidoc > docs/api.md` (a test
checks that this file is current, and the tests run every example below). The transforms
follow JAX's signatures; each works as a call, a bare decorator and a decorator with options.
"""


def render() -> str:
    import symgrad

    sections = [HEADER]
    errors = []
    for name in symgrad.__all__:
        value = getattr(symgrad, name)
        if isinstance(value, type) and issubclass(value, Exception):
            errors.append(value)
        elif isinstance(value, type):
            sections.append(_class(f"sg.{name}", value))
        else:
            sections.append(_function(f"sg.{name}", value, level="##"))
    sections.append("## Errors\n\nEvery error is a `symgrad.SymgradError`; each names the op, "
                    "the shapes and the user's line where they apply.\n\n" + "\n".join(
                        f"- `{error.__name__}`"
                        f"{' (a ' + error.__mro__[1].__name__ + ')' if error.__mro__[1] is not Exception else ''}"
                        f": {_first_line(error)}" for error in errors) + "\n")
    return "\n".join(sections)


def _function(title: str, function: Callable, level: str) -> str:
    try:
        full = inspect.signature(function)
    except (TypeError, ValueError):
        signature = "(...)"
    else:  # names and defaults; the types are in the text
        empty = inspect.Parameter.empty
        parameters = [p.replace(annotation=empty) for p in full.parameters.values()
                      if p.name != "self"]
        signature = str(full.replace(parameters=parameters, return_annotation=empty))
    return f"{level} `{title}{signature}`\n\n{_docstring(function)}"


def _class(title: str, cls: type) -> str:
    parts = [f"## `{title}`\n\n{_docstring(cls)}"]
    for name, member in cls.__dict__.items():
        if name.startswith("_") or not (member.__doc__ or "").strip():
            continue
        if isinstance(member, property):
            parts.append(f"### `.{name}`\n\n{_docstring(member.fget)}")
        elif callable(member):
            parts.append(_function(f".{name}", member, level="###"))
    return "\n".join(parts)


def _first_line(value: Any) -> str:
    return " ".join((inspect.getdoc(value) or "").split("\n\n")[0].split())


def _docstring(value: Any) -> str:
    """The docstring as markdown: paragraphs as they are, `Example::` blocks as Python."""
    text = inspect.getdoc(value) or ""
    lines = text.splitlines()
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.rstrip().endswith("::"):
            out.append(line.rstrip()[:-1])
            block = []
            index += 1
            while index < len(lines) and (not lines[index].strip()
                                          or lines[index].startswith(" ")):
                block.append(lines[index])
                index += 1
            code = textwrap.dedent("\n".join(block)).strip("\n")
            out.extend(["", "```python", code, "```"])
            continue
        out.append(line)
        index += 1
    return "\n".join(out).strip() + "\n"


if __name__ == "__main__":
    import sys

    sys.stdout.write(render())
