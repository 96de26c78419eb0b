"""The differential fuzzer's fixed-seed slice (tools/fuzz.py): random plain-numpy programs
through symgrad's jit, value_and_grad and vjp, against numpy and PyTorch (torch.func) in
float64, with dtypes, writeability, aliasing, input immutability and edge values checked.
The long campaign and what it found: tools/README.md."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import fuzz  # noqa: E402

SEED = 20261201
PROGRAMS = 160


@pytest.mark.parametrize("index", range(PROGRAMS))
def test_fuzzed_program(index):
    outcome = fuzz.check(fuzz.generate(SEED, index))
    assert not outcome.failures, "\n" + outcome.report()


def test_the_slice_covers_the_op_table_dtypes_and_shapes():
    programs = [fuzz.generate(SEED, i) for i in range(PROGRAMS)]
    used = {op for p in programs for op in p.ops}
    assert len(used) >= 0.9 * len(fuzz.OPS), sorted({o.name for o in fuzz.OPS} - used)
    assert {p.dtype for p in programs} == {"float32", "float64"}
    shapes = [s for p in programs for s in p.shapes]
    assert () in shapes and any(0 in s for s in shapes) and any(1 in s for s in shapes)


def test_the_checker_reports_a_wrong_gradient_and_a_wrong_value():
    program = fuzz.Program(0, 0, "float64", [(3,)])
    program.lines = [("v1", "np.sin(x0)", "torch.sin(x0) * 1.001")]  # an oracle that disagrees
    program.outputs = ["v1"]
    failures = fuzz.check(program).failures
    assert any("gradient 0 differs" in f for f in failures)
    assert any("value" in f for f in failures)


def test_the_edge_check_reports_a_fold_numpy_does_not_make():
    program = fuzz.Program(0, 1, "float64", [(40,)])
    program.lines = [("v1", "x0 - x0", "x0 - x0")]
    program.outputs = ["v1"]
    f = fuzz._compile(program, "numpy")

    class Folding:  # a symgrad whose jit folds x - x to 0, as SymPy does
        @staticmethod
        def jit(fn):
            class Compiled:
                def __call__(self, x):
                    return np.zeros_like(x)

                def lower(self, *args):
                    return type("Lowered", (), {"rewrites": []})()
            return Compiled()

    problems = fuzz._edge_check(program, f, Folding)
    assert any("NaN where numpy" in p for p in problems)
