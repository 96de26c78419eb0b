"""The C backend's load-time check of its launcher: allow by grammar, as the numpy backend's.

launcher  := docstring FIXED constant* kernel* function
launcher  := docstring FIXED helper* constant* kernel* function
helper    := `import warnings`, or a numpy helper of the templates, node for node (the
             numpy grammar's own check; `_adjugate`, `_pair_reciprocals` of linalg steps)
FIXED     := the statements of `templates/c/launcher.py.j2` between its docstring and its
             first template tag, node for node (imports, `_library_path`, `_compile`,
             `_kernel`, `_launch`, `_unslice`, `_scatter_add`, the OpenMP wait policy, the
             library load), its one value (`header.fp_flag`) one of FP_FLAGS
constant  := what the numpy grammar accepts as a module constant
kernel    := kernel_N = _kernel("kernel_N", INT, (INT, ...))
function  := the numpy grammar's function, whose statements may also be
             `_launch(kernel_N, NAME, ...)` with a kernel bound above

The numpy grammar (`safety.py`, `grammar.py`) checks the constants and the function with the
`_launch` calls taken out; what it refuses, and any other statement, raises
`GeneratedCodeError` naming the line. The compiled library beside the launcher is one of the
entry's signed files (`cache.store(..., artefacts=...)`): it loads only if this user's key
signed it.
"""
from __future__ import annotations

import ast
import copy
import re
from functools import lru_cache

from ...errors import GeneratedCodeError

_KERNEL = re.compile(r"kernel_\d+")
NUMPY_HELPERS = ("_unslice", "_scatter_add")  # pure numpy: the generated function calls them
# The floating-point flag of an exported launcher's own compile: exact, or fast math.
FP_FLAGS = ("-ffp-contract=off", "-ffast-math")


def _refuse(filename: str, node: ast.AST | None, what: str) -> None:
    line = getattr(node, "lineno", "?")
    raise GeneratedCodeError(f"{filename}:{line}: generated launcher refused before execution: "
                             f"{what}; a cache entry like this was not written by symgrad.")


@lru_cache(maxsize=None)
def fixed_part(template: str, fp_flag: str | None = None) -> tuple[str, ...]:
    """A launcher template's fixed statements (between its docstring and its first tag),
    dumped; `fp_flag` in place of its one value, where it has one (C's)."""
    from ...cache.key import templates_dir

    text = (templates_dir() / template).read_text(encoding="utf-8")
    start = text.index('"""', text.index('"""') + 3) + 3
    end = text.index("{%", start)
    fixed = text[start:end]
    if fp_flag is not None:
        fixed = fixed.replace("{{ header.fp_flag }}", fp_flag)
    return tuple(ast.dump(s) for s in ast.parse(fixed).body)


def _is_kernel(statement: ast.stmt) -> bool:
    if not (isinstance(statement, ast.Assign) and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Name)):
        return False
    name, value = statement.targets[0].id, statement.value
    return (bool(_KERNEL.fullmatch(name)) and isinstance(value, ast.Call)
            and isinstance(value.func, ast.Name) and value.func.id == "_kernel"
            and not value.keywords and len(value.args) == 3
            and isinstance(value.args[0], ast.Constant) and value.args[0].value == name
            and _is_int(value.args[1]) and isinstance(value.args[2], ast.Tuple)
            and all(_is_int(item) for item in value.args[2].elts))


def _is_int(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) is int


def _is_launch(statement: ast.stmt, kernels: set[str]) -> bool:
    if not (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call)):
        return False
    call = statement.value
    return (isinstance(call.func, ast.Name) and call.func.id == "_launch" and not call.keywords
            and len(call.args) >= 2 and isinstance(call.args[0], ast.Name)
            and call.args[0].id in kernels
            and all(isinstance(a, ast.Name) for a in call.args[1:]))


def parse_launcher(source: str, filename: str) -> ast.Module:
    """A launcher's tree, once its text passes the numpy grammar's text check, it parses and
    it opens with its docstring (the start of every fused backend's launcher check)."""
    from ..numpy.safety import check_text

    check_text(source, filename)
    try:
        tree = ast.parse(source, filename)
    except (SyntaxError, RecursionError, MemoryError, ValueError) as error:
        raise GeneratedCodeError(f"{filename}: generated launcher does not parse "
                                 f"({type(error).__name__})") from None
    body = tree.body
    if not (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)):
        _refuse(filename, body[0] if body else None, "no docstring first")
    return tree


def check_launcher(source: str, filename: str = "<generated launcher>") -> ast.Module:
    """Check a launcher against the grammar above; its tree, ready for `compile`."""
    from ..numpy.grammar import Checker, helper_name
    from ..numpy.safety import template_helper

    tree = parse_launcher(source, filename)
    body = tree.body
    variants = [fixed_part("c/launcher.py.j2", flag) for flag in FP_FLAGS]
    fixed = variants[0]
    got = body[1:1 + len(fixed)]
    dumped = [ast.dump(s) for s in got]
    if not any(len(got) == len(v) and dumped == list(v) for v in variants):
        wrong = next((s for s, d, f in zip(got, dumped, fixed) if d != f), None)
        _refuse(filename, wrong, "its fixed part differs from the launcher template's")
    constants, helpers, kernels, function = [], [], set(), None
    for statement in body[1 + len(fixed):]:
        if (isinstance(statement, ast.Import) or helper_name(statement) is not None) \
                and not constants and not kernels:
            helpers.append(statement)  # checked by the numpy grammar below
        elif _is_kernel(statement) and function is None:
            kernels.add(statement.targets[0].id)
        elif isinstance(statement, ast.Assign) and function is None and not kernels:
            constants.append(statement)
        elif isinstance(statement, ast.FunctionDef) and function is None:
            function = statement
        else:
            _refuse(filename, statement, "a statement the launcher template does not write")
    if function is None:
        _refuse(filename, None, "no generated function")
    plain = copy.deepcopy(function)
    plain.body = [s for s in plain.body if not _is_launch(s, kernels)]
    if any(isinstance(s, ast.Expr) and isinstance(s.value, ast.Call) for s in plain.body):
        _refuse(filename, function, "a call statement other than _launch(kernel, ...)")
    # The launcher's own numpy helpers (`_unslice`, `_scatter_add`) are the template's, node
    # for node (checked above); the function may call them as the numpy grammar's helpers.
    own = {s.name: s for s in got if isinstance(s, ast.FunctionDef) and s.name in NUMPY_HELPERS}
    numpy_import = ast.parse("import numpy as np").body[0]
    module = ast.Module(body=[body[0], numpy_import, *own.values(), *helpers, *constants,
                              plain],
                        type_ignores=[])
    ast.fix_missing_locations(module)

    def trusted(name: str) -> str | None:
        return ast.dump(own[name]) if name in own else template_helper(name)

    Checker(filename, trusted).module(module)
    return tree
