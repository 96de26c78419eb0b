"""The stage packages' public names, imported on first use (PEP 562).

A stage's `__init__.py` is its public internal entry point: the tests, the CLI and the tools
import from `symgrad.ir`, `symgrad.cache`, ... and never from the modules inside. Importing a
stage package must stay as cheap as before (a warm call never imports SymPy), so a package
names each public value's module instead of importing it::

    __getattr__, __dir__, __all__ = lazy_exports(__name__, modules=("blocking",),
                                                 names={"printer": ("STRUCTURAL",)})

`modules` are submodules offered as module objects: what a test monkeypatches is the module
where the code reads the name, never a copy re-exported here. `names` maps a submodule to the
names it defines; each is looked up there on every access (nothing is copied into the
package, so a patched module attribute is what the package returns).
"""
from __future__ import annotations

import importlib
import sys
from typing import Any, Callable, Mapping, Sequence


def lazy_exports(package: str, modules: Sequence[str] = (),
                 names: Mapping[str, Sequence[str]] | None = None,
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """`__getattr__`, `__dir__` and the lazily offered part of `__all__` for `package`."""
    home = {name: module for module, group in (names or {}).items() for name in group}
    offered = [*modules, *home]
    if len(set(offered)) != len(offered):
        raise ValueError(f"{package}: a name is offered twice in {offered}")

    def __getattr__(name: str) -> Any:
        if name in modules:
            return importlib.import_module(f"{package}.{name}")
        if name in home:
            return getattr(importlib.import_module(f"{package}.{home[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *offered})

    return __getattr__, __dir__, offered
