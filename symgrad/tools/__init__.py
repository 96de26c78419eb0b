"""Reading what was made: explain (cache misses), export, the op catalogue, the API docs,
pictures, LaTeX display, progress lines.

The public internal entry point (for the tests, the CLI and the tools), each imported on
first use: the modules `catalog` (docs/ops.md: `catalog.render()`), `apidoc` (docs/api.md:
`apidoc.render()`), `picture` (a graph drawn with graphviz), `display` (a lowering shown in
a notebook) and `progress` (the stage lines of SYMGRAD_PROGRESS), each patched where its
code reads a name; and `Progress`, one compilation's progress lines.
"""
from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__, modules=("catalog", "apidoc", "picture", "display", "progress"),
    names={"progress": ("Progress",)})
