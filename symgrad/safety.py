"""The check every generated module passes before it is executed, fresh or from the cache.

Loading cached source is code execution, so what may run is an allowlist of what the templates
and printers produce:

* module level: the docstring, `import numpy as np`, constants (`NAME = <expression>`),
  functions, and any top-level statement that is, whole line for whole line, plain text of one
  of symgrad's templates (the helpers the templates hold: their imports, constants and
  functions are symgrad's code, whatever they do);
* in functions: assignments (to names, tuples of names, or items of a local array), augmented
  assignments, calls for their effect (`np.add(a, b, out=t0)`), `with np.errstate(...):`,
  nested functions (blocks of rows handed to a helper), `return`;
* expressions: names that are bound (parameters, locals and enclosing locals, the module's
  constants and functions, `np`, a few pure builtins), numbers and strings, arithmetic,
  comparisons, conditional expressions, tuples, lists, slices and subscripts; attributes of `np`
  from the public numpy namespace except I/O and callback-taking functions (`NUMPY_REFUSED`),
  ufunc methods (`np.add.reduce`), `np.linalg.*`, and the public array attributes and methods
  except those that write files (`ARRAY_REFUSED`); calls of those, of the module's functions,
  of nested functions and of `PURE_BUILTINS`.

Anything else (imports of other modules, `exec`, dunder attributes, lambdas, loops, `global`,
f-strings, names a template imports, ...) raises `GeneratedCodeError` naming the line. A new
construct in the printers' output is added to these tables, with a test; a new helper in a
template needs nothing. The check imports neither SymPy nor jinja2 and walks the tree once; the
caller compiles the checked tree, so the source is parsed only once.
"""
from __future__ import annotations

import ast
from functools import lru_cache
from types import ModuleType

import numpy as np

from .errors import GeneratedCodeError

NUMPY_ALIAS = "np"
PURE_BUILTINS = frozenset({"slice", "tuple", "len", "range", "int", "float", "bool", "abs",
                           "min", "max"})
# Public numpy names that read or write files, take Python callables, change process-wide
# state, or are whole subpackages: never needed by generated code.
NUMPY_REFUSED = frozenset({
    "load", "save", "savez", "savez_compressed", "savetxt", "loadtxt", "genfromtxt", "fromfile",
    "fromregex", "memmap", "DataSource", "tofile", "ctypeslib", "lib", "testing", "f2py",
    "distutils", "show_config", "show_runtime", "info", "seterr", "seterrcall", "setbufsize",
    "set_printoptions", "vectorize", "frompyfunc", "apply_along_axis", "apply_over_axes",
    "piecewise", "fromfunction", "fromiter", "get_include", "char", "rec", "ma", "polynomial",
    "random", "fft", "dtypes", "exceptions", "typing", "version", "core", "matlib", "strings",
    "emath", "os", "sys", "who", "source", "lookfor", "test", "_core", "from_dlpack",
})
NUMPY_SUBMODULES = frozenset({"linalg"})
UFUNC_METHODS = frozenset({"reduce", "accumulate", "reduceat", "outer", "at"})
ARRAY_REFUSED = frozenset({"tofile", "dump", "dumps", "ctypes", "setflags", "setfield",
                           "itemset", "resize", "newbyteorder", "data", "base", "flat"})
_ARRAY_ATTRIBUTES = frozenset(n for n in dir(np.ndarray) if not n.startswith("_")) - ARRAY_REFUSED

_ARITHMETIC = (ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp, ast.Tuple,
               ast.List, ast.Slice, ast.Subscript, ast.Starred)
_OPERATORS = (ast.operator, ast.unaryop, ast.boolop, ast.cmpop, ast.expr_context)
_CONSTANT_TYPES = (int, float, complex, str, bool, type(None), type(Ellipsis))


def check_source(source: str, filename: str = "<generated>") -> ast.Module:
    """Parse `source` and check it against the allowlist; the tree, ready for `compile`."""
    try:
        tree = ast.parse(source, filename)
    except SyntaxError as error:
        raise GeneratedCodeError(f"{filename}:{error.lineno}: generated code does not parse "
                                 f"({error.msg})") from None
    _Checker(filename).module(tree, source)
    return tree


@lru_cache(maxsize=1024)
def _numpy_name_allowed(name: str) -> bool:
    if name.startswith("_") or name in NUMPY_REFUSED:
        return False
    try:
        value = getattr(np, name)
    except AttributeError:
        return False
    return not isinstance(value, ModuleType) or name in NUMPY_SUBMODULES


class _Checker:
    def __init__(self, filename: str):
        self.filename = filename
        self.module_names: set[str] = {NUMPY_ALIAS}
        self.helpers: set[str] = set()
        self.scopes: list[set[str]] = []  # the names bound in each enclosing function
        self.local_names: set[str] = set()  # their union: what a closure may read
        self.nested_functions: set[str] = set()  # functions defined inside functions

    def refuse(self, node: ast.AST, what: str) -> None:
        line = getattr(node, "lineno", "?")
        raise GeneratedCodeError(
            f"{self.filename}:{line}: generated code refused before execution: {what}. "
            "Generated modules may hold only what symgrad's templates and printers produce "
            "(see symgrad/safety.py); a cache entry like this was not written by symgrad.")

    # -- module level --------------------------------------------------------------------------
    def module(self, tree: ast.Module, source: str) -> None:
        lines = source.splitlines()
        trusted = {id(statement) for statement in tree.body
                   if _verbatim_from_templates(statement, lines)}
        for statement in tree.body:  # bind every module-level name first (order-free reads)
            if isinstance(statement, ast.FunctionDef):
                self.check_store_name(statement, statement.name)
                self.helpers.add(statement.name)
                self.module_names.add(statement.name)
            elif isinstance(statement, ast.Assign) and id(statement) not in trusted:
                for target in statement.targets:
                    self.module_names.update(self.stored_names(target, module=True))
        for statement in tree.body:
            if id(statement) in trusted:
                continue  # the templates' own code (helpers), not generated from user input
            if isinstance(statement, ast.Expr) and _is_string(statement.value):
                continue
            if isinstance(statement, ast.Import):
                if [(a.name, a.asname) for a in statement.names] != [("numpy", NUMPY_ALIAS)]:
                    self.refuse(statement, "an import other than `import numpy as np`")
            elif isinstance(statement, ast.Assign):
                self.expression(statement.value)
            elif isinstance(statement, ast.FunctionDef):
                self.function(statement)
            else:
                self.refuse(statement, f"a module-level {type(statement).__name__} statement")

    def enter(self, scope: set[str]) -> None:
        self.scopes.append(scope)
        self.local_names = set().union(*self.scopes)

    def leave(self) -> None:
        self.scopes.pop()
        self.local_names = set().union(*self.scopes) if self.scopes else set()

    def function(self, node: ast.FunctionDef) -> None:
        if node.decorator_list or node.returns is not None:
            self.refuse(node, f"decorators or annotations on function {node.name!r}")
        arguments = node.args
        if arguments.vararg or arguments.kwarg or arguments.kwonlyargs:
            self.refuse(node, f"*args, **kwargs or keyword-only parameters on {node.name!r}")
        params = arguments.posonlyargs + arguments.args
        for default in arguments.defaults:
            if not isinstance(default, ast.Constant):
                self.refuse(default, "a parameter default that is not a constant")
        scope: set[str] = set()
        for param in params:
            if param.annotation is not None:
                self.refuse(param, "a parameter annotation")
            self.check_store_name(param, param.arg)
            scope.add(param.arg)
        for statement in _own_statements(node):
            if isinstance(statement, (ast.Assign, ast.AugAssign)):
                targets = statement.targets if isinstance(statement, ast.Assign) else [
                    statement.target]
                for target in targets:
                    scope.update(self.stored_names(target))
            elif isinstance(statement, ast.FunctionDef):
                self.check_store_name(statement, statement.name)
                scope.add(statement.name)
                self.nested_functions.add(statement.name)
        self.enter(scope)
        self.body(node.body)
        self.leave()

    def body(self, statements: list[ast.stmt]) -> None:
        for statement in statements:
            kind = type(statement)
            if kind is ast.Assign:
                for target in statement.targets:
                    self.target(target)
                self.expression(statement.value)
            elif kind is ast.AugAssign:
                self.target(statement.target)
                self.expression(statement.value)
            elif kind is ast.Return:
                if statement.value is not None:
                    self.expression(statement.value)
            elif kind is ast.With:
                self.with_block(statement)
            elif kind is ast.Expr and _is_string(statement.value):
                continue
            elif kind is ast.Expr and isinstance(statement.value, ast.Call):
                self.call(statement.value)  # np.add(a, b, out=t0): a call for its effect
            elif kind is ast.FunctionDef:
                self.function(statement)  # a block of rows, called through a helper
            elif kind is ast.Pass:
                continue
            else:
                self.refuse(statement, f"a {kind.__name__} statement")

    def with_block(self, node: ast.With) -> None:
        for item in node.items:
            call = item.context_expr
            if (item.optional_vars is not None or not isinstance(call, ast.Call)
                    or not _is_numpy_attribute(call.func, "errstate")):
                self.refuse(node, "a `with` block other than `with np.errstate(...)`")
            self.expression(call)
        self.body(node.body)

    # -- names ---------------------------------------------------------------------------------
    def stored_names(self, target: ast.expr, module: bool = False) -> list[str]:
        if isinstance(target, ast.Name):
            self.check_store_name(target, target.id)
            if target.id in self.helpers and not module:
                self.refuse(target, f"an assignment to the helper {target.id!r}")
            return [target.id]
        if isinstance(target, ast.Tuple) and not module:
            return [n for element in target.elts for n in self.stored_names(element)]
        if isinstance(target, ast.Subscript) and not module:
            return []
        self.refuse(target, f"an assignment to a {type(target).__name__}")
        return []

    def check_store_name(self, node: ast.AST, name: str) -> None:
        if name.startswith("__") or name == NUMPY_ALIAS:
            self.refuse(node, f"a binding of the name {name!r}")

    def target(self, target: ast.expr) -> None:
        if isinstance(target, ast.Name):
            return
        if isinstance(target, ast.Tuple):
            for element in target.elts:
                self.target(element)
            return
        if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name) \
                and target.value.id in self.local_names:
            self.expression(target.slice)
            return
        self.refuse(target, "an assignment target that is not a local name or array item")

    # -- expressions ---------------------------------------------------------------------------
    def expression(self, node: ast.expr) -> None:
        kind = type(node)
        if kind is ast.Name:
            self.name(node)
        elif kind is ast.Constant:
            if not isinstance(node.value, _CONSTANT_TYPES):
                self.refuse(node, f"a constant of type {type(node.value).__name__}")
        elif kind is ast.Call:
            self.call(node)
        elif kind is ast.Attribute:
            self.attribute(node)
        elif isinstance(node, _ARITHMETIC):
            if kind is ast.Starred:
                self.refuse(node, "a starred expression")
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.expr):
                    self.expression(child)
                elif not isinstance(child, _OPERATORS):
                    self.refuse(child, f"a {type(child).__name__} inside an expression")
        else:
            self.refuse(node, f"a {kind.__name__} expression")

    def name(self, node: ast.Name) -> None:
        name = node.id
        if name in self.local_names or name in self.module_names:
            return
        if name in PURE_BUILTINS:
            return
        self.refuse(node, f"the unbound or forbidden name {name!r}")

    def attribute(self, node: ast.Attribute) -> None:
        attr = node.attr
        if attr.startswith("_"):
            self.refuse(node, f"the private attribute {attr!r}")
        base = node.value
        if isinstance(base, ast.Name) and base.id == NUMPY_ALIAS:
            if not _numpy_name_allowed(attr):
                self.refuse(node, f"np.{attr}")
            return
        if _is_numpy_attribute(base):
            parent = base.attr
            if not _numpy_name_allowed(parent):
                self.refuse(node, f"np.{parent}")
            owner = getattr(np, parent)
            if parent in NUMPY_SUBMODULES:
                if not hasattr(owner, attr):
                    self.refuse(node, f"np.{parent}.{attr}")
                return
            if isinstance(owner, np.ufunc) and attr in UFUNC_METHODS:
                return
            self.refuse(node, f"np.{parent}.{attr}")
        if isinstance(base, ast.Constant):
            self.refuse(node, f"an attribute of a constant ({attr!r})")
        if attr not in _ARRAY_ATTRIBUTES:
            self.refuse(node, f"the attribute or method {attr!r}")
        if isinstance(base, ast.Name) and base.id in self.helpers:
            self.refuse(node, f"an attribute of the helper function {base.id!r}")
        self.expression(base)

    def call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name):
            if func.id in self.local_names:
                if func.id not in self.nested_functions:
                    self.refuse(node, f"a call of the local value {func.id!r}")
            elif func.id not in self.helpers and func.id not in PURE_BUILTINS:
                self.refuse(node, f"a call of {func.id!r} (neither numpy nor a helper of this "
                                  "module)")
        elif isinstance(func, ast.Attribute):
            self.attribute(func)
        else:
            self.refuse(node, f"a call of a {type(func).__name__}")
        for argument in node.args:
            self.expression(argument)
        for keyword in node.keywords:
            if keyword.arg is None:
                self.refuse(node, "a **keywords argument")
            self.expression(keyword.value)


def _own_statements(function: ast.FunctionDef) -> list[ast.stmt]:
    """The statements of `function` itself, nested blocks included, nested functions not."""
    found, pending = [], list(function.body)
    while pending:
        statement = pending.pop()
        found.append(statement)
        if isinstance(statement, ast.With):
            pending.extend(statement.body)
    return found


@lru_cache(maxsize=None)
def _template_texts() -> tuple[str, ...]:
    from .key import templates_dir

    return tuple("\n" + path.read_text(encoding="utf-8") + "\n"
                 for path in sorted(templates_dir().glob("*.j2"))
                 + sorted(templates_dir().glob("c/*.py.j2")))  # the C backend's launcher


def _verbatim_from_templates(statement: ast.stmt, lines: list[str]) -> bool:
    """Whether a top-level statement is, whole line for whole line, top-level text of one of
    symgrad's templates: a helper (its imports, constants and functions) that the templates
    hold as plain text. Its code is symgrad's, whatever it does; only what is generated from
    the user's function needs the allowlist."""
    first = min([statement.lineno] + [d.lineno for d in getattr(statement, "decorator_list", [])])
    text = "\n".join(lines[first - 1:statement.end_lineno])
    if not text or text[0].isspace():
        return False
    needle = "\n" + text + "\n"
    return any(needle in template for template in _template_texts())


def _is_string(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _is_numpy_attribute(node: ast.expr, attr: str | None = None) -> bool:
    return (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and node.value.id == NUMPY_ALIAS and (attr is None or node.attr == attr))
