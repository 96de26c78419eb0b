"""The op table is complete: every op has every fact its stages need, in one test.

Adding an elementwise op touches `ir/ops.py` and one row of `tests/elementwise_cases.py`;
adding a structural op, the table plus its rules (VJP, numpy text, batching, the C backend's
support or refusal). This test names whatever is missing.
"""
from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from elementwise_cases import CASES as ELEMENTWISE_CASES
from structural_cases import CASES as STRUCTURAL_CASES
from symgrad.autodiff import NOT_BATCHED, NO_RULE_YET, VJP_RULES, rule_for
from symgrad.backends import BACKENDS, C_NOT_YET, backend_module
from symgrad.backends.numpy import STRUCTURAL
from symgrad.ir import NORMALISERS, OPS, Group, Memory, Result
from symgrad.symbolic import KINKED, STEPPED, namespace

# "ew" holds its expression in its params (a user's op, or a region folded into one node)
ELEMENTWISE = sorted(n for n, r in OPS.items() if r.group is Group.ELEMENTWISE and n != "ew")
STRUCTURAL_OPS = sorted(n for n, r in OPS.items() if r.group not in (Group.ELEMENTWISE,
                                                                       Group.SOURCE))


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_op_has_a_form_with_the_kinks_it_declares(name):
    record = OPS[name]
    symbols = sp.symbols(f"a0:{record.arity}", real=True)
    expr = record.sympy(namespace, *symbols)
    assert isinstance(expr, sp.Basic), f"{name}: its form gives {type(expr).__name__}"
    assert expr.free_symbols <= set(symbols), f"{name}: its form reads other symbols"
    # a Piecewise choosing by a boolean operand (np.where) has no kink of its own
    has_kink = any(not (isinstance(k, sp.Piecewise) and all(
        c.is_Symbol or c is sp.true for _, c in k.args)) for k in expr.atoms(*KINKED, *STEPPED))
    if record.result is Result.BOOL:
        assert not record.differentiable, f"{name}: a comparison marked differentiable"
    elif has_kink:
        assert record.kinked, f"{name}: its form has a kink ({expr}) but kinked=False"
    assert record.memory is Memory.EITHER, f"{name}: memory is a structural op's fact"


def test_every_elementwise_op_has_an_oracle_case():
    cased = {c.op for c in ELEMENTWISE_CASES}
    assert not set(ELEMENTWISE) - cased, f"no case: {sorted(set(ELEMENTWISE) - cased)}"


@pytest.mark.parametrize("name", STRUCTURAL_OPS)
def test_structural_op_has_every_rule(name):
    record = OPS[name]
    missing = []
    looped = record.group is Group.LOOP or name == "loop_out"  # rules in loop_rules.py
    if record.differentiable and name not in VJP_RULES and not looped:
        missing.append("a VJP rule (autodiff/vjp_rules*.py) or differentiable=False")
    if name not in STRUCTURAL and name not in NORMALISERS and not looped:
        missing.append("numpy text (backends/numpy/printer*.py)")
    if name not in NOT_BATCHED and name not in NO_RULE_YET and rule_for(name) is None:
        missing.append("a batching rule (autodiff/batching.py) or a NO_RULE_YET reason")
    assert not missing, f"{name} has no " + "; no ".join(missing)


@pytest.mark.parametrize("name", sorted(n for n, r in OPS.items() if r.memory.shares_operand))
def test_view_ops_read_one_operand(name):
    record = OPS[name]
    assert record.arity == 1 and record.group in (Group.MOVEMENT, Group.INDEXING), name


def test_loop_ops_have_rules_of_their_own():
    from symgrad.autodiff import MULTI_OUTPUT  # noqa: F401 (the loops' VJPs)
    from symgrad.backends.numpy import body_function  # noqa: F401 (their code)

    loops = [n for n, r in OPS.items() if r.group is Group.LOOP]
    assert loops and all(n not in VJP_RULES for n in loops)


def test_fresh_and_view_facts_match_numpy():
    """A FRESH op's numpy function gives a new array, a VIEW op's may share its operand, a
    READ_ONLY op's shares it and cannot be written."""
    x = np.arange(12.0).reshape(3, 4)
    numpy_of = {"transpose": lambda a: a.T, "reshape": lambda a: a.reshape(4, 3),
                "getitem": lambda a: a[1:], "astype": lambda a: a.astype(np.float32),
                "matmul": lambda a: a @ a.T, "sum": lambda a: a.sum(0),
                "concatenate": lambda a: np.concatenate([a, a]),
                "pad": lambda a: np.pad(a, 1),
                "broadcast_to": lambda a: np.broadcast_to(a, (2, 3, 4))}
    for name, function in numpy_of.items():
        result = function(x)
        assert np.shares_memory(result, x) == OPS[name].memory.shares_operand, name
        assert result.flags.writeable == (OPS[name].memory is not Memory.READ_ONLY), name


def test_backend_refusals_name_real_ops_and_every_backend_has_the_seam():
    assert C_NOT_YET <= set(OPS)
    for name in BACKENDS:
        module = backend_module(name)
        assert module.NAME == name
        assert callable(module.compile_signature)
        assert module.SPEED_RULES.before and module.SPEED_RULES.after


def test_every_structural_op_is_exercised_by_a_case():
    from symgrad.autodiff import Transform, differentiate  # noqa: F401
    from symgrad.ir import topological_order
    from symgrad.specs import ArgSpec
    from symgrad.trace import trace_function

    seen = set()
    for case in STRUCTURAL_CASES:
        specs = [ArgSpec(f"a{i}", a.shape, str(a.dtype))
                 for i, a in enumerate(case.make_args())]
        graph, _ = trace_function(case.f, specs)
        seen |= {n.op for n in topological_order(graph.outputs)}
    exempt = {n for n, r in OPS.items() if r.group is Group.LOOP} | {
        "custom_rule", "while_vjp", "loop_out", "pair_reciprocals", "adjugate", "overwrite",
        "unslice", "scatter_add"} | set(NORMALISERS)
    assert not set(STRUCTURAL_OPS) - seen - exempt, sorted(set(STRUCTURAL_OPS) - seen - exempt)


def test_numpy_ufuncs_trace_to_the_op_table():
    """An elementwise op's ufunc (of its own name, or named in `also`) traces to it: the front
    end's UFUNC_OPS is read off the table, so a new op needs no second list."""
    from symgrad.trace import UFUNC_OPS

    for name, record in OPS.items():
        for alias in record.also:
            assert isinstance(getattr(np, alias, None), np.ufunc), f"{name}: np.{alias}"
            assert UFUNC_OPS[getattr(np, alias)] == name
        if record.group is Group.ELEMENTWISE and isinstance(getattr(np, name, None), np.ufunc):
            assert UFUNC_OPS[getattr(np, name)] == name
    assert UFUNC_OPS[np.fabs] == UFUNC_OPS[np.absolute] == "abs"
    assert UFUNC_OPS[np.rad2deg] == "degrees" and np.isinf in UFUNC_OPS
