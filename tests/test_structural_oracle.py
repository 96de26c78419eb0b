"""Structural ops (reductions, contractions, shape functions, indexing) checked against
central differences in float64 and PyTorch autograd, float32 preserved; plus the completeness
test: every structural op of the op table has a VJP rule (or is marked non-differentiable), a
numpy printer entry, and is exercised by the case table."""
from __future__ import annotations

import numpy as np
import pytest

import symgrad as sg
from gradcheck import central_difference, torch_gradients
from structural_cases import CASES, Int
from symgrad.autodiff import VJP_RULES, Transform, differentiate
from symgrad.backends.numpy import STRUCTURAL
from symgrad.ir import NORMALISERS  # written out as max, exp, sum before printing
from symgrad.ir import OPS, Group, topological_order
from symgrad.specs import ArgSpec
from symgrad.symbolic import rewrite_graph
from symgrad.trace import trace_function

IDS = [c.name for c in CASES]


def test_case_names_are_unique():
    assert len(set(IDS)) == len(IDS)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_float64_matches_central_differences_and_torch(case):
    args = case.make_args()
    value, grads = sg.value_and_grad(case.f, wrt=case.wrt)(*args)
    np.testing.assert_allclose(value, case.f(*args), rtol=1e-12, atol=1e-12)
    torch_value, torch_grads = torch_gradients(case.torch_f, args, case.wrt)
    np.testing.assert_allclose(value, torch_value, rtol=1e-10, atol=1e-12)
    for k, i in enumerate(case.wrt):
        assert grads[k].shape == args[i].shape and grads[k].dtype == np.float64
        if case.finite_differences:
            np.testing.assert_allclose(grads[k], central_difference(case.f, args, i),
                                       rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(grads[k], torch_grads[k], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_float32_stays_float32(case):
    args = case.make_args(seed=1, dtype=np.float32)
    value, grads = sg.value_and_grad(case.f, wrt=case.wrt)(*args)
    assert np.asarray(value).dtype == np.asarray(case.f(*args)).dtype  # numpy's own promotion
    reference = sg.value_and_grad(case.f, wrt=case.wrt)(
        *[a.astype(np.float64) if a.dtype == np.float32 else a for a in args])[1]
    for k, i in enumerate(case.wrt):
        assert grads[k].dtype == np.float32 and grads[k].shape == args[i].shape
        np.testing.assert_allclose(grads[k], reference[k], rtol=1e-4, atol=1e-4)


def _ops_of_case(case) -> set[str]:
    """The ops of a case's forward graph and of its derivative graph."""
    args = case.make_args()
    specs = [ArgSpec(f"a{i}", a.shape, a.dtype.name) for i, a in enumerate(args)]
    graph, structure = trace_function(case.f, specs)
    graph, _ = rewrite_graph(graph)
    outputs, *_ = differentiate(graph, structure, specs, Transform("grad", case.wrt, False))
    return {n.op for n in topological_order(list(graph.outputs) + list(outputs))}


def test_every_structural_op_has_rule_printer_and_case():
    structural = {name for name, record in OPS.items()
                  if record.group not in (Group.ELEMENTWISE, Group.SOURCE, Group.LOOP)
                  and name != "loop_out"}  # loops: tests/test_loops.py checks them
    exercised = set().union(*(_ops_of_case(c) for c in CASES))
    for name in sorted(structural):
        record = OPS[name]
        assert name in VJP_RULES or not record.differentiable, f"{name}: no VJP rule"
        assert name in STRUCTURAL or name in NORMALISERS, f"{name}: no numpy printer entry"
        assert name in exercised, f"{name}: no case in tests/structural_cases.py uses it"
    assert not set(VJP_RULES) - structural, "a VJP rule for an op that is not structural"
