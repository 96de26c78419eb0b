"""Names in generated code: valid, unique identifiers, the user's where the user gave one.

Nothing from the user becomes code except as a name, and every name passes the one sanitiser
(`backends/sanitise.py`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from .sanitise import RESERVED, identifier


@dataclass
class ModuleNames:
    """Names at module level (functions, constants) and every name any function claimed: a
    module-level name is claimed after, and avoids, every name claimed so far, and a local
    claimed later avoids every module-level name, so no function's local hides a module-level
    function or constant it calls. (Locals of different functions may share a name.)"""

    names: set[str] = field(default_factory=set)
    everything: set[str] = field(default_factory=set)
    made: dict[tuple, str] = field(default_factory=dict)  # (what, body, used) -> function


class Names(dict):
    """Symbol -> generated name; `inlined` holds the symbols written inside their reader,
    `kept` those whose name the user gave once (lift.kept_name): never inlined.

    `reads` gives, for an inlined symbol, the values its printed form reads (a view written
    inside its reader: its operands; a second name for an array: that array's value)."""

    def __init__(self) -> None:
        super().__init__()
        self.inlined: set[sp.Symbol] = set()
        self.kept: set[sp.Symbol] = set()
        self.reads: dict[sp.Symbol, frozenset[sp.Symbol]] = {}


class Namer:
    """Valid, unique identifiers for one function.

    `module` is shared by the functions of one module (loop bodies): a local name avoids the
    module-level names, a module-level name avoids every name."""

    def __init__(self, reserved: set[str], module: ModuleNames | None = None):
        self.taken = set(reserved)
        self.temporaries = 0
        self.module = module if module is not None else ModuleNames()

    def _unavailable(self, name: str, module_level: bool) -> bool:
        return name in self.taken or name in RESERVED or name in self.module.names or (
            module_level and name in self.module.everything)

    def claim(self, wish: str, module_level: bool = False) -> str:
        name = identifier(wish)  # the one sanitiser of names (sanitise.py)
        base, k = name, 1
        while self._unavailable(name, module_level):
            name = f"{base}{k}"
            k += 1
        self.taken.add(name)
        self.module.everything.add(name)
        if module_level:
            self.module.names.add(name)
        return name

    def temporary(self) -> str:
        while self._unavailable(f"t{self.temporaries}", False):
            self.temporaries += 1
        name = f"t{self.temporaries}"
        self.taken.add(name)
        self.module.everything.add(name)
        return name
