"""The CUDA backend's load-time check of its launcher: allow by grammar, as the C backend's.

launcher  := docstring FIXED constant* module kernel* function
FIXED     := the statements of `templates/cuda/launcher.py.j2` between its docstring and its
             first template tag, node for node (`import os`, `import cupy as np`, `_module`,
             `_without_tf32`, `_kernel`, `_launch`, `_on_host`, `_returned`, `_unslice`,
             `_scatter_add`, the `_without_tf32()` call)
constant  := what the numpy grammar accepts as a module constant
module    := _MODULE = _module(fast_math=False) | _MODULE = _module(fast_math=True)
kernel    := kernel_N = _kernel("kernel_N", INT, INT)
             | kernel_N_finish = _kernel("kernel_N_finish", INT, INT)
function  := the numpy grammar's function, whose statements may also be
             `_launch(kernel, NAME, ...)` with a kernel bound above, and whose first
             statement is `NAME = _on_host(NAME, ...)` and return `return _returned(NAME, expr)`

The numpy grammar (`safety.py`, `grammar.py`) checks the constants and the function with the
`_launch` calls taken out and `_on_host`/`_returned` as the template's helpers; `np` in the
launcher is CuPy, whose numpy API the grammar's names are. Anything else raises
`GeneratedCodeError` naming the line. The `.cu` and `.cubin` beside the launcher are signed
files of the entry (`cache.store(..., artefacts=...)`): they load only if this user's key
signed them.
"""
from __future__ import annotations

import ast
import copy
import re

from ..c.check import _is_launch, _refuse, fixed_part, parse_launcher

_KERNEL = re.compile(r"kernel_\d+(_finish)?")
# The template's helpers the generated function may call (pure array code).
CALLED_HELPERS = ("_unslice", "_scatter_add", "_on_host", "_returned")
_MODULE_LINES = tuple(ast.dump(ast.parse(f"_MODULE = _module(fast_math={flag})").body[0])
                      for flag in (False, True))


def _is_kernel(statement: ast.stmt) -> bool:
    if not (isinstance(statement, ast.Assign) and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Name)):
        return False
    name, value = statement.targets[0].id, statement.value
    return (bool(_KERNEL.fullmatch(name)) and isinstance(value, ast.Call)
            and isinstance(value.func, ast.Name) and value.func.id == "_kernel"
            and not value.keywords and len(value.args) == 3
            and isinstance(value.args[0], ast.Constant) and value.args[0].value == name
            and all(isinstance(a, ast.Constant) and type(a.value) is int
                    for a in value.args[1:]))


def _is_call(node: ast.AST, helper: str) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == helper and not node.keywords)


def check_launcher(source: str, filename: str = "<generated launcher>") -> ast.Module:
    """Check a launcher against the grammar above; its tree, ready for `compile`."""
    from ..numpy.grammar import Checker
    from ..numpy.safety import template_helper

    tree = parse_launcher(source, filename)
    body = tree.body
    fixed = fixed_part("cuda/launcher.py.j2")
    got = body[1:1 + len(fixed)]
    if len(got) != len(fixed) or any(ast.dump(s) != f for s, f in zip(got, fixed)):
        wrong = next((s for s, f in zip(got, fixed) if ast.dump(s) != f), None)
        _refuse(filename, wrong, "its fixed part differs from the launcher template's")
    constants, kernels, function, module = [], set(), None, False
    for statement in body[1 + len(fixed):]:
        if not module and ast.dump(statement) in _MODULE_LINES:
            module = True
        elif module and _is_kernel(statement) and function is None:
            kernels.add(statement.targets[0].id)
        elif isinstance(statement, ast.Assign) and not module:
            constants.append(statement)
        elif isinstance(statement, ast.FunctionDef) and module and function is None:
            function = statement
        else:
            _refuse(filename, statement, "a statement the launcher template does not write")
    if function is None:
        _refuse(filename, None, "no generated function")
    body_ = function.body
    first, last = body_[0], body_[-1]
    if not (isinstance(first, ast.Assign) and len(first.targets) == 1
            and isinstance(first.targets[0], ast.Name) and _is_call(first.value, "_on_host")
            and [a.id for a in first.value.args if isinstance(a, ast.Name)]
            == [a.arg for a in function.args.args] == [a.id for a in first.value.args]):
        _refuse(filename, first, "a first statement other than `NAME = _on_host(params)`")
    if not (isinstance(last, ast.Return) and _is_call(last.value, "_returned")
            and len(last.value.args) == 2 and isinstance(last.value.args[0], ast.Name)
            and last.value.args[0].id == first.targets[0].id):
        _refuse(filename, last, "a return other than `return _returned(on_host, results)`")
    plain = copy.deepcopy(function)
    plain.body = [s for s in plain.body if not _is_launch(s, kernels)]
    if any(isinstance(s, ast.Expr) and isinstance(s.value, ast.Call) for s in plain.body):
        _refuse(filename, function, "a call statement other than _launch(kernel, ...)")
    own = {s.name: s for s in got if isinstance(s, ast.FunctionDef) and s.name in CALLED_HELPERS}
    numpy_import = ast.parse("import numpy as np").body[0]
    checked = ast.Module(body=[body[0], numpy_import, *own.values(), *constants, plain],
                         type_ignores=[])
    ast.fix_missing_locations(checked)

    def trusted(name: str) -> str | None:
        return ast.dump(own[name]) if name in own else template_helper(name)

    Checker(filename, trusted).module(checked)
    return tree
