"""The numpy backend's grammar as one walk over a parsed module: the tables of what generated
code may name, and the checker (`safety.check_source` is the entry point; `safety.py`'s
docstring writes the grammar out)."""
from __future__ import annotations

import ast
from functools import lru_cache
from types import ModuleType
from typing import Callable

import numpy as np

from ...errors import GeneratedCodeError
from .grammar_loops import LOOP_BLOCKS, loop_block, tuple_element
from ...schedule.sanitise import is_safe_identifier

NUMPY_ALIAS = "np"
MAX_DEPTH = 100  # the printers keep expressions about 10 deep; CPython refuses 200 parentheses
PURE_BUILTINS = frozenset({"slice", "tuple", "len", "range", "int", "float", "bool", "abs",
                           "min", "max"})
HELPER_MODULES = frozenset({"os", "threading", "contextvars", "warnings"})
BLOCKS_HELPER = "_in_blocks"
# Public numpy names that read or write files, take Python callables, change process-wide
# state, or are whole subpackages: never needed by generated code.
NUMPY_REFUSED = frozenset({
    "load", "save", "savez", "savez_compressed", "savetxt", "loadtxt", "genfromtxt", "fromfile",
    "fromregex", "memmap", "DataSource", "tofile", "ctypeslib", "lib", "testing", "f2py",
    "distutils", "show_config", "show_runtime", "info", "seterr", "seterrcall", "setbufsize",
    "set_printoptions", "vectorize", "frompyfunc", "apply_along_axis", "apply_over_axes",
    "piecewise", "fromfunction", "fromiter", "get_include", "char", "rec", "ma", "polynomial",
    "random", "dtypes", "exceptions", "typing", "version", "core", "matlib", "strings",
    "emath", "os", "sys", "who", "source", "lookfor", "test", "_core", "from_dlpack", "errstate",
    "nditer", "nested_iters", "frombuffer", "set_string_function", "add_newdoc", "bmat",
    "geterrcall", "printoptions", "sctypeDict",
})
NUMPY_SUBMODULES = frozenset({"linalg", "fft"})
NUMPY_VALUES = frozenset({"inf", "nan", "pi", "e", "euler_gamma", "newaxis", "s_"})
CONSTANT_MAKERS = frozenset({"array", "arange", "eye", "zeros"})
UFUNC_METHODS = frozenset({"reduce", "accumulate", "reduceat", "outer", "at"})
ERRSTATE = (frozenset({"all", "divide", "over", "under", "invalid"}),
            frozenset({"ignore", "warn", "raise"}))
ARRAY_REFUSED = frozenset({"tofile", "dump", "dumps", "ctypes", "setflags", "setfield",
                           "itemset", "resize", "newbyteorder", "data", "base", "flat"})
_ARRAY_ATTRIBUTES = frozenset(n for n in dir(np.ndarray) if not n.startswith("_")) - ARRAY_REFUSED

_ARITHMETIC = (ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp, ast.Tuple,
               ast.List, ast.Slice, ast.Subscript)
_OPERATORS = (ast.operator, ast.unaryop, ast.boolop, ast.cmpop, ast.expr_context)
_CONSTANT_TYPES = (int, float, complex, str, bool, type(None), type(Ellipsis))


@lru_cache(maxsize=1024)
def _numpy_name_allowed(name: str) -> bool:
    if name.startswith("_") or name in NUMPY_REFUSED:
        return False
    try:
        value = getattr(np, name)
    except AttributeError:
        return False
    return not isinstance(value, ModuleType) or name in NUMPY_SUBMODULES


@lru_cache(maxsize=256)
def _numpy_value_allowed(name: str) -> bool:
    """`np.NAME` read as a value (not called): a scalar type (`dtype=np.float32`) or a
    constant, never a function."""
    if name in NUMPY_VALUES:
        return True
    value = getattr(np, name, None)
    return isinstance(value, type) and issubclass(value, np.generic)


def helper_name(statement: ast.stmt) -> str | None:
    """The name a top-level statement binds if it is helper-shaped (`_name`), else None."""
    if isinstance(statement, ast.FunctionDef):
        name = statement.name
    elif isinstance(statement, ast.Assign) and len(statement.targets) == 1 \
            and isinstance(statement.targets[0], ast.Name):
        name = statement.targets[0].id
    else:
        return None
    return name if name.startswith("_") and not name.startswith("__") else None


class _Scope:
    """The names one generated function binds."""

    def __init__(self, parent: "_Scope | None"):
        self.parent = parent
        self.names: set[str] = set()
        self.blocks: set[str] = set()  # nested block functions, handed to _in_blocks only

    def reads(self, name: str) -> bool:
        scope: _Scope | None = self
        while scope is not None:
            if name in scope.names:
                return True
            if name in scope.blocks:
                return False
            scope = scope.parent
        return False


class Checker:
    def __init__(self, filename: str, trusted: Callable[[str], str | None]):
        self.filename = filename
        self.trusted = trusted  # helper name -> its tree as the templates hold it, or None
        self.constants: set[str] = set()
        self.helpers: set[str] = set()  # helper functions present in the module
        self.bound: set[str] = set()  # every module-level name
        self.loop_functions: set[str] = set()  # loop bodies and drivers (grammar_loops.py)
        self.current = ""  # the module-level function being checked

    def refuse(self, node: ast.AST | None, what: str) -> None:
        line = getattr(node, "lineno", "?")
        raise GeneratedCodeError(
            f"{self.filename}:{line}: generated code refused before execution: {what}. "
            "Generated modules may hold only what symgrad's templates and printers write "
            "(see symgrad/backends/numpy/safety.py); a cache entry like this was not written by symgrad.")

    # -- module level --------------------------------------------------------------------------
    def module(self, tree: ast.Module) -> None:
        body = list(tree.body)
        if body and _is_docstring(body[0]):
            body.pop(0)
        trusted = self.trusted
        functions = []
        for statement in body:
            helper = helper_name(statement)
            if isinstance(statement, ast.Import):
                self.import_(statement)
            elif helper is not None:
                if trusted(helper) != ast.dump(statement):
                    self.refuse(statement, f"{helper!r} is not one of the templates' helpers "
                                           "as they hold it")
                self.bind(statement, helper, module=True)
                if isinstance(statement, ast.FunctionDef):
                    self.helpers.add(helper)
            elif isinstance(statement, ast.Assign):
                self.constant(statement)
            elif isinstance(statement, ast.FunctionDef):
                functions.append(statement)
                self.bind(statement, statement.name)
            else:
                self.refuse(statement, f"a module-level {type(statement).__name__} statement")
        if NUMPY_ALIAS not in self.bound:
            self.refuse(None, "no `import numpy as np`")
        if not functions:
            self.refuse(None, "0 generated functions (symgrad writes one)")
        # Every function before the last is a loop body or driver, only ever called.
        self.loop_functions = {f.name for f in functions[:-1]}
        for function in functions:
            self.function(function, _Scope(None))
        called = {n.func.id for f in functions for n in ast.walk(f)
                  if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        for function in functions[:-1]:
            if function.name not in called:
                self.refuse(function, f"{len(functions)} generated functions (symgrad writes "
                                      f"one, and loop functions it calls; {function.name!r} "
                                      "is never called)")

    def import_(self, node: ast.Import) -> None:
        names = [(a.name, a.asname) for a in node.names]
        if names == [("numpy", NUMPY_ALIAS)]:
            self.bind(node, NUMPY_ALIAS, module=True)
        elif len(names) == 1 and names[0][0] in HELPER_MODULES and names[0][1] is None:
            self.bind(node, names[0][0], module=True)
        else:
            self.refuse(node, "an import other than numpy (as np) and the helpers' os, "
                              "threading, contextvars and warnings")

    def bind(self, node: ast.AST, name: str, module: bool = False) -> None:
        """A module-level binding: each name once; generated names are safe identifiers."""
        if not module and not is_safe_identifier(name):
            self.refuse(node, f"a binding of the name {name!r}")
        if name in self.bound:
            self.refuse(node, f"a second binding of {name!r}")
        self.bound.add(name)

    def constant(self, node: ast.Assign) -> None:
        target = node.targets[0] if len(node.targets) == 1 else None
        if not isinstance(target, ast.Name):
            self.refuse(node, "a module-level assignment other than `NAME = <constant array>`")
        value = node.value
        if not (isinstance(value, ast.Call) and _is_numpy_attribute(value.func)
                and value.func.attr in CONSTANT_MAKERS and len(value.args) == 1
                and len(value.keywords) == 1 and value.keywords[0].arg == "dtype"
                and _is_numpy_attribute(value.keywords[0].value)
                and _numpy_value_allowed(value.keywords[0].value.attr)):
            self.refuse(node, "a module-level value other than np.array / np.arange / np.eye "
                              "/ np.zeros of literal numbers with a numpy dtype")
        if value.func.attr == "array":
            self.literal(value.args[0], 0)
        elif value.func.attr == "zeros":  # a size-0 constant, which np.array([]) cannot shape
            shape = value.args[0]
            if not (isinstance(shape, ast.Tuple) and all(
                    isinstance(d, ast.Constant) and type(d.value) is int for d in shape.elts)):
                self.refuse(node, "np.zeros of something other than a tuple of ints")
        elif not (isinstance(value.args[0], ast.Constant) and type(value.args[0].value) is int):
            self.refuse(node, f"np.{value.func.attr} of something other than an int")
        self.bind(node, target.id)
        self.constants.add(target.id)

    def literal(self, node: ast.expr, depth: int) -> None:
        if depth > MAX_DEPTH:
            self.refuse(node, "a constant nested too deeply")
        if isinstance(node, ast.List):
            for element in node.elts:
                self.literal(element, depth + 1)
            return
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            node = node.operand
        if isinstance(node, ast.Constant) and type(node.value) in (int, float, bool, complex):
            return
        if _is_numpy_attribute(node) and node.attr in ("inf", "nan"):
            return
        self.refuse(node, "a constant array holding something other than numbers")

    # -- functions -----------------------------------------------------------------------------
    def function(self, node: ast.FunctionDef, parent: _Scope) -> _Scope:
        arguments = node.args
        if node.decorator_list or node.returns is not None or node.type_comment is not None:
            self.refuse(node, f"decorators or annotations on function {node.name!r}")
        if (arguments.vararg or arguments.kwarg or arguments.kwonlyargs or arguments.posonlyargs
                or arguments.defaults or arguments.kw_defaults):
            self.refuse(node, f"*args, **kwargs, defaults or keyword-only parameters on "
                              f"{node.name!r}")
        scope = _Scope(parent)
        if parent.parent is None:
            self.current = node.name  # loops only in loop drivers (grammar_loops.py)
        for param in arguments.args:
            if param.annotation is not None or param.type_comment is not None:
                self.refuse(param, "a parameter annotation")
            self.local(scope, param, param.arg)
        statements = _own_statements(node)
        for statement in statements:
            if isinstance(statement, ast.FunctionDef):
                if parent.parent is not None:
                    self.refuse(statement, "a function nested two deep")
                if not self.may_bind(statement.name) or statement.name in scope.blocks:
                    self.refuse(statement, f"a block function named {statement.name!r}")
                scope.blocks.add(statement.name)
            for target in _targets(statement):
                self.store(scope, target)
        if scope.names & scope.blocks:
            self.refuse(node, f"a block function named like a value of {node.name!r}")
        body = node.body
        if parent.parent is None and (not body or not isinstance(body[-1], ast.Return)):
            self.refuse(node, f"the function {node.name!r} does not end with `return`")
        for index, statement in enumerate(body):
            last = index == len(body) - 1
            if isinstance(statement, ast.Return):
                if not last or statement.value is None:
                    self.refuse(statement, "a `return` that is not the function's last line")
                self.expression(statement.value, scope, 0)
            else:
                self.statement(statement, scope)
        return scope

    def local(self, scope: _Scope, node: ast.AST, name: str) -> None:
        if not self.may_bind(name):
            self.refuse(node, f"a binding of the name {name!r}")
        if name in scope.names:
            self.refuse(node, f"a second parameter named {name!r}")
        scope.names.add(name)

    @staticmethod
    def may_bind(name: str) -> bool:
        """A local may take any safe identifier: it can shadow a module constant or the
        function's own name (data only), never a helper, module or builtin."""
        return is_safe_identifier(name)

    def store(self, scope: _Scope, target: ast.expr) -> None:
        if isinstance(target, ast.Name):
            if not self.may_bind(target.id):
                self.refuse(target, f"a binding of the name {target.id!r}")
            scope.names.add(target.id)
        elif isinstance(target, ast.Tuple) and target.elts \
                and all(tuple_element(e) for e in target.elts):
            for element in target.elts:
                self.store(scope, element)
        elif not (isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name)):
            self.refuse(target, f"an assignment to a {type(target).__name__}")

    def statement(self, node: ast.stmt, scope: _Scope) -> None:
        kind = type(node)
        if kind is ast.Assign:
            if len(node.targets) != 1:
                self.refuse(node, "a chained assignment")
            target = node.targets[0]
            for item in target.elts if isinstance(target, ast.Tuple) else [target]:
                if isinstance(item, ast.Subscript):
                    self.name(item.value, scope)
                    self.expression(item.slice, scope, 1)
            self.expression(node.value, scope, 0)
        elif kind is ast.AugAssign:
            if not isinstance(node.target, ast.Name):
                self.refuse(node, "an augmented assignment to something other than a name")
            self.name(node.target, scope)
            self.expression(node.value, scope, 0)
        elif kind is ast.Expr and _is_docstring(node):
            return
        elif kind is ast.Expr and isinstance(node.value, ast.Call):
            call = node.value
            in_place = _is_numpy_attribute(call.func) and any(k.arg == "out"
                                                              for k in call.keywords)
            if not (in_place or _is_name(call.func, BLOCKS_HELPER)):
                self.refuse(node, "a call for its effect other than np.F(..., out=...) or "
                                  "_in_blocks(...)")
            self.call(call, scope, 0)
        elif kind is ast.With:
            self.errstate(node, scope)
        elif kind is ast.FunctionDef:
            self.function(node, scope)
        elif kind in LOOP_BLOCKS and scope.parent.parent is None \
                and self.current in self.loop_functions:
            loop_block(self, node, scope)  # a loop driver's loop (grammar_loops.py)
        else:
            self.refuse(node, f"a {kind.__name__} statement")

    def errstate(self, node: ast.With, scope: _Scope) -> None:
        names, modes = ERRSTATE
        for item in node.items:
            call = item.context_expr
            if (item.optional_vars is not None or not isinstance(call, ast.Call)
                    or not _is_numpy_attribute(call.func, "errstate") or call.args
                    or not all(k.arg in names and isinstance(k.value, ast.Constant)
                               and k.value.value in modes for k in call.keywords)):
                self.refuse(node, "a `with` block other than `with np.errstate(all=\"ignore\")`")
        for statement in node.body:
            if isinstance(statement, (ast.FunctionDef, ast.Return)):
                self.refuse(statement, "a function or return inside np.errstate")
            self.statement(statement, scope)

    # -- expressions ---------------------------------------------------------------------------
    def expression(self, node: ast.expr, scope: _Scope, depth: int) -> None:
        if depth > MAX_DEPTH:
            self.refuse(node, f"an expression nested more than {MAX_DEPTH} deep")
        kind = type(node)
        if kind is ast.Name:
            self.name(node, scope)
        elif kind is ast.Constant:
            if not isinstance(node.value, _CONSTANT_TYPES):
                self.refuse(node, f"a constant of type {type(node.value).__name__}")
        elif kind is ast.Call:
            self.call(node, scope, depth)
        elif kind is ast.Attribute:
            self.attribute(node, scope, depth)
        elif isinstance(node, _ARITHMETIC):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.expr):
                    self.expression(child, scope, depth + 1)
                elif not isinstance(child, _OPERATORS):
                    self.refuse(child, f"a {type(child).__name__} inside an expression")
        else:
            self.refuse(node, f"a {kind.__name__} expression")

    def name(self, node: ast.expr, scope: _Scope) -> None:
        if not isinstance(node, ast.Name):
            self.refuse(node, f"a {type(node).__name__} where a name belongs")
        if not (scope.reads(node.id) or node.id in self.constants):
            self.refuse(node, f"the unbound or forbidden name {node.id!r}")

    def attribute(self, node: ast.Attribute, scope: _Scope, depth: int,
                  called: bool = False) -> None:
        attr = node.attr
        if attr.startswith("_"):
            self.refuse(node, f"the private attribute {attr!r}")
        base = node.value
        if _is_name(base, NUMPY_ALIAS):
            allowed = _numpy_name_allowed(attr) if called else _numpy_value_allowed(attr)
            if not allowed:
                self.refuse(node, f"np.{attr}{'(...)' if called else ' as a value'}")
            return
        if _is_numpy_attribute(base):
            parent = base.attr
            owner = getattr(np, parent, None)
            if not called or not _numpy_name_allowed(parent):
                self.refuse(node, f"np.{parent}.{attr}")
            if parent in NUMPY_SUBMODULES and _numpy_function(owner, attr):
                return
            if isinstance(owner, np.ufunc) and attr in UFUNC_METHODS:
                return
            self.refuse(node, f"np.{parent}.{attr}")
        if isinstance(base, ast.Constant):
            self.refuse(node, f"an attribute of a constant ({attr!r})")
        if attr not in _ARRAY_ATTRIBUTES:
            self.refuse(node, f"the attribute or method {attr!r}")
        self.expression(base, scope, depth + 1)

    def call(self, node: ast.Call, scope: _Scope, depth: int) -> None:
        func = node.func
        arguments = list(node.args)
        if isinstance(func, ast.Name):
            if func.id == BLOCKS_HELPER:
                self.blocks_call(node, scope)
                arguments = arguments[1:]
            elif func.id in self.helpers and func.id != BLOCKS_HELPER:
                pass
            elif func.id in self.loop_functions:
                pass  # a loop body or driver of this module
            elif func.id not in PURE_BUILTINS:
                self.refuse(node, f"a call of {func.id!r} (neither numpy nor a helper of this "
                                  "module)")
        elif isinstance(func, ast.Attribute):
            self.attribute(func, scope, depth, called=True)
        else:
            self.refuse(node, f"a call of a {type(func).__name__}")
        for argument in arguments:
            if isinstance(argument, ast.Starred):
                self.refuse(argument, "a starred argument")
            self.expression(argument, scope, depth + 1)
        for keyword in node.keywords:
            if keyword.arg is None:
                self.refuse(node, "a **keywords argument")
            self.expression(keyword.value, scope, depth + 1)

    def blocks_call(self, node: ast.Call, scope: _Scope) -> None:
        """`_in_blocks(block, rows, block_rows, a, b, ...)`: a block of this very function."""
        args = node.args
        if (BLOCKS_HELPER not in self.helpers or len(args) < 3 or node.keywords
                or not isinstance(args[0], ast.Name) or args[0].id not in scope.blocks
                or not all(isinstance(a, ast.Constant) and type(a.value) is int
                           for a in args[1:3])
                or not all(isinstance(a, ast.Name) for a in args[3:])):
            self.refuse(node, "an _in_blocks call other than (block of this function, rows, "
                              "block rows, arrays...)")


def _numpy_function(owner: object, attr: str) -> bool:
    value = getattr(owner, attr, None)
    return value is not None and not isinstance(value, ModuleType) and callable(value)


def _own_statements(function: ast.FunctionDef) -> list[ast.stmt]:
    """The statements of `function` itself, those in `with` blocks included, nested functions'
    bodies not."""
    found, pending = [], list(function.body)
    while pending:
        statement = pending.pop()
        found.append(statement)
        if isinstance(statement, (ast.With,) + LOOP_BLOCKS):
            pending.extend(statement.body)
    return found


def _targets(statement: ast.stmt) -> list[ast.expr]:
    if isinstance(statement, ast.Assign):
        return list(statement.targets)
    if isinstance(statement, ast.AugAssign):
        return [statement.target]
    if isinstance(statement, ast.For):
        return [statement.target]
    return []


def _is_docstring(node: ast.stmt) -> bool:
    return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str))


def _is_name(node: ast.expr, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def _is_numpy_attribute(node: ast.expr, attr: str | None = None) -> bool:
    return (isinstance(node, ast.Attribute) and _is_name(node.value, NUMPY_ALIAS)
            and (attr is None or node.attr == attr))
