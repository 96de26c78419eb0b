"""Element math as CUDA C++: the C printer (`backends/c/printer.py`) with CUDA's spelling of types.

The math is the C printer's: `CudaExpressionPrinter("float32")` prints `expf(x)`, `2.0f`,
`sg_sigmoidf(x)`; `"float64"` prints `exp(x)`, `2.0`, `sg_sigmoid(x)`. CUDA declares every
C99 math function for the device in both precisions (NVRTC without any header), so the one
table `MATH_FUNCTIONS` serves both targets; the stable primitives are the C helpers rendered
`__host__ __device__ inline`. What differs is the integer types: NVRTC has no
<stdint.h>, so `int64_t` is spelled `long long` (`CUDA_TYPES`, which the renderer declares
values with). A CUDA-only form of an expression belongs in this subclass.
"""
from __future__ import annotations

from ..c.printer import CExpressionPrinter

CUDA_TYPES = {"float64": "double", "float32": "float", "int64": "long long", "int32": "int",
              "int16": "short", "int8": "signed char", "uint8": "unsigned char", "bool": "bool"}


class CudaExpressionPrinter(CExpressionPrinter):
    """SymPy -> one CUDA C++ expression computed in `dtype`; `names` maps symbols to text."""

    printmethod = "_symgrad_cudacode"
