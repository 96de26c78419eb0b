"""The loop drivers' part of the grammar (loop_code.py writes them; grammar.py checks them).

loops     := function+ before the generated function: loop bodies (a `function` as below)
             and their drivers, each bound once at module level and only ever called
driver    := def NAME(NAME, ...): [NAME = np.empty(shape, dtype=np.D)]* loop return expr
loop      := for NAME in range(INT[, INT, INT]): step+          (ints, negated ints)
           | while LOOPFN(NAME, ...)[INT]: step+
           | [if NAME == INT: return LOOPFN(NAME, ...)]+
step      := target = expr                                     (no nested block)
target    += (NAME | NAME[expr], ...)                           (`h, ys[step] = cell(...)`)
"""
from __future__ import annotations

import ast
from typing import Any

LOOP_BLOCKS = (ast.For, ast.While, ast.If)


def _is_int(node: ast.expr) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node = node.operand
    return isinstance(node, ast.Constant) and type(node.value) is int


def loop_block(checker: Any, node: ast.For | ast.While | ast.If, scope: Any) -> None:
    """Check one `for`, `while` or `if` of a loop driver (a method of grammar.Checker)."""
    if node.orelse:
        checker.refuse(node, "an `else` block on a loop or branch")
    if isinstance(node, ast.For):
        call = node.iter
        if not isinstance(node.target, ast.Name) or node.type_comment is not None or not (
                isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
                and call.func.id == "range" and not call.keywords
                and 1 <= len(call.args) <= 3 and all(_is_int(a) for a in call.args)):
            checker.refuse(node, "a `for` loop other than `for name in range(ints)`")
    elif isinstance(node, ast.While):
        test = node.test
        if not (isinstance(test, ast.Subscript) and isinstance(test.value, ast.Call)
                and isinstance(test.value.func, ast.Name)
                and test.value.func.id in checker.loop_functions and _is_int(test.slice)):
            checker.refuse(node, "a `while` other than `while loop_function(...)[int]:`")
        checker.expression(test, scope, 0)
    else:
        test = node.test
        if not (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name)
                and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)
                and _is_int(test.comparators[0])) or not all(
                    isinstance(s, ast.Return) and isinstance(s.value, ast.Call)
                    and isinstance(s.value.func, ast.Name)
                    and s.value.func.id in checker.loop_functions for s in node.body):
            checker.refuse(node, "an `if` other than `if name == int: return loop_function(...)`")
        checker.expression(test, scope, 0)
        for statement in node.body:
            checker.expression(statement.value, scope, 0)
        return
    for statement in node.body:
        if not isinstance(statement, ast.Assign):
            checker.refuse(statement, "a statement other than an assignment in a loop")
        checker.statement(statement, scope)


def tuple_element(target: ast.expr) -> bool:
    """An element of a tuple target: a name, or an item of a named array (`ys[step]`)."""
    return isinstance(target, ast.Name) or (
        isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name))
