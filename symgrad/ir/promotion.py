"""The one dtype promotion numpy does silently and a float32 program rarely means: a float32
array meets a numpy float64 *scalar* (`x * (1.0 / np.sqrt(d))`: np.sqrt of a Python int is an
np.float64, which numpy 2 treats as strong) and the whole computation becomes float64, twice
the time and memory. symgrad follows numpy, and says so once per line, as JAX's dtype
promotion checks do. `SYMGRAD_DTYPE_PROMOTION=error` makes it an error, `=ignore` silences it.
"""
from __future__ import annotations

import os
import warnings
from typing import Any, Sequence

import numpy as np

from ..errors import DtypePromotionError
from .graph import Builder, Node

ENVIRONMENT_VARIABLE = "SYMGRAD_DTYPE_PROMOTION"
_NARROW = ("float16", "float32")


class DtypePromotionWarning(UserWarning):
    """A float32 (or float16) array promoted to float64 by a numpy float64 scalar."""


def check_promotion(b: Builder, op: str, operands: Sequence[Any], dtype: str) -> None:
    """Warn (or raise) when `op` makes float64 of a narrower float array and a numpy scalar."""
    if dtype != "float64":
        return
    narrow = [o.dtype for o in operands if isinstance(o, Node) and o.dtype in _NARROW]
    scalars = [o for o in operands if _strong_float64_scalar(o)]
    if not narrow or not scalars:
        return
    mode = os.environ.get(ENVIRONMENT_VARIABLE, "warn").strip().lower()
    if mode == "ignore":
        return
    site = b.site
    where = f"{site}: " if site is not None else ""
    message = (f"{where}{op} of a {narrow[0]} array and a numpy float64 scalar is float64 "
               f"(numpy's promotion), and so is everything computed from it. Write the "
               f"scalar as a Python float (float(...)) or np.{narrow[0]}(...) to stay in "
               f"{narrow[0]}; {ENVIRONMENT_VARIABLE}=error makes this an error, =ignore "
               "silences it.")
    if mode == "error":
        raise DtypePromotionError(message)
    if site is not None:
        warnings.warn_explicit(message, DtypePromotionWarning, site.filename, site.lineno)
    else:
        warnings.warn(message, DtypePromotionWarning, stacklevel=2)


def _strong_float64_scalar(operand: Any) -> bool:
    if isinstance(operand, Node):  # a numpy float64 constant, or one computed (np.sqrt(d))
        if operand.shape != () or operand.dtype != "float64" or operand.param("weak"):
            return False
        return bool(operand.param("strong")) if operand.op == "const" else operand.op != "input"
    return isinstance(operand, np.floating) and operand.dtype == np.float64 or (
        isinstance(operand, np.ndarray) and operand.shape == () and operand.dtype == np.float64)
