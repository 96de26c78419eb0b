"""symgrad's import graph: cycles (strongly connected components) and stage back-edges.

    python tools/imports.py            # a summary; exit status 1 if a cycle exists

A cycle counts imports at module level only (those run when a module is first imported); an
import inside a function runs later and is listed as a back-edge when it points from a later
stage to an earlier stage's *dependent* (for example the trace stage importing a backend).
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "symgrad"
# The stages in the order data flows; a module may import its own stage and earlier ones.
STAGES = ["errors", "_version", "_lazy", "specs", "pytree", "ir", "trace", "symbolic",
          "autodiff", "schedule", "cache", "backends", "compiler", "transforms", "distributed",
          "api", "tools", "cli", "__init__", "__main__"]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, at module level) for each symgrad import in `path`."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(n) for n in tree.body} | {id(c) for n in tree.body if isinstance(n, ast.If)
                                         for c in n.body}
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or (node.level == 0 and not
                                                    (node.module or "").startswith("symgrad")):
            continue
        if node.level:
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module
        for alias in node.names:
            sub = f"{target}.{alias.name}"
            is_module = (PACKAGE.parent / (sub.replace(".", "/") + ".py")).exists() or \
                (PACKAGE.parent / sub.replace(".", "/") / "__init__.py").exists()
            found.append((sub if is_module else target, id(node) in top))
    return found


def stage(module: str) -> int:
    parts = module.split(".")
    head = parts[1] if len(parts) > 1 else "__init__"
    return STAGES.index(head) if head in STAGES else len(STAGES)


def graph() -> dict[str, list[tuple[str, bool]]]:
    return {module_name(p): imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def cycles(edges: dict[str, list[tuple[str, bool]]]) -> list[list[str]]:
    """Strongly connected components of the module-level imports (Tarjan's algorithm)."""
    adjacent = {m: sorted({t for t, top in e if top and t in edges and t != m})
                for m, e in edges.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    result = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in adjacent[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in adjacent:
        if v not in index:
            visit(v)
    return result


def back_edges(edges: dict[str, list[tuple[str, bool]]]) -> list[tuple[str, str, bool]]:
    """Imports from a module to one of a later stage (data flowing backwards)."""
    return sorted({(m, t, top) for m, e in edges.items() for t, top in e
                   if t in edges and stage(t) > stage(m) and not m.endswith("__init__")
                   and m != "symgrad"})


def main() -> int:
    edges = graph()
    found = cycles(edges)
    back = back_edges(edges)
    print(f"{len(edges)} modules, {sum(len(e) for e in edges.values())} imports")
    print(f"import cycles at module level: {len(found)}")
    for component in found:
        print("  " + " <-> ".join(component))
    print(f"back-edges (a module importing a later stage): {len(back)}")
    for m, t, top in back:
        print(f"  {m} -> {t}{'' if top else '   (inside a function)'}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
