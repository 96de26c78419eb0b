"""Numerical agreement check, run on every system before anything is timed."""

from __future__ import annotations

import numpy as np

# Error metric: max |got - ref| / max |ref| per output (scale-aware, so tiny
# gradient entries do not blow up a pure relative error).  The reference is
# computed in float64 from the same data.
TOLERANCE = {np.dtype(np.float64): 1e-8, np.dtype(np.float32): 1e-4}


def tolerance(dtype) -> float:
    return TOLERANCE.get(np.dtype(dtype), 1e-4)


def scaled_error(got, ref) -> float:
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    diff = float(np.max(np.abs(got - ref))) if ref.size else 0.0
    if not np.isfinite(diff):
        return float("inf")
    return diff / scale if scale > 0 else diff


def compare(wl, args, value, grads, ref_value, ref_grads):
    """Return (ok, worst_error, problems, notes).

    problems: reasons the output is wrong (shape, count, value, a gradient);
    notes: harmless-but-worth-knowing differences (e.g. dtype promotion).
    """
    tol = tolerance(wl.dtype)
    problems, notes = [], []
    worst = 0.0
    if len(grads) != len(wl.wrt):
        return False, float("inf"), [f"returned {len(grads)} gradients, expected {len(wl.wrt)}"], notes

    outputs = [("value", value, ref_value, ())]
    for name, g, rg in zip(wl.wrt, grads, ref_grads):
        outputs.append((f"grad {name}", g, rg, np.shape(args[name])))

    for label, got, ref, shape in outputs:
        got = np.asarray(got)
        if label == "value":
            if got.size != 1:
                problems.append(f"value has shape {got.shape}, expected a scalar")
                continue
        elif got.shape != shape:
            problems.append(f"{label} has shape {got.shape}, expected {shape}")
            continue
        if got.dtype != np.dtype(wl.dtype) and label != "value":
            notes.append(f"{label} is {got.dtype}, inputs are {np.dtype(wl.dtype)}")
        err = scaled_error(got, ref)
        worst = max(worst, err)
        if not err <= tol:
            problems.append(f"{label}: error {err:.1e} > tol {tol:.0e}")
    return not problems, worst, problems, notes
