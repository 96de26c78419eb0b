"""Argument specs: shapes and dtypes without data, in one compact text form used everywhere.

    f32[1024,784]   a float32 array of shape (1024, 784)
    i64[8]          an int64 vector
    f64[]           a float64 scalar (0-d array)
    bool[3]         booleans

The same strings are accepted by the CLI (`--arg x=f64[5]`), by `f.lower("f64[5]", ...)`, and by
`sg.spec("f64[5]")`; the generated files' headers print signatures in this form.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ArgumentError

__all__ = ["Spec", "spec", "ArgSpec", "parse_spec", "format_spec", "looks_like_spec",
           "DTYPE_CODES", "EXAMPLE"]

# dtype code -> numpy dtype name; the codes are the only spellings printed.
DTYPE_CODES = {
    "f16": "float16", "f32": "float32", "f64": "float64",
    "i8": "int8", "i16": "int16", "i32": "int32", "i64": "int64",
    "u8": "uint8", "u16": "uint16", "u32": "uint32", "u64": "uint64",
    "bool": "bool",
}
CODE_OF_DTYPE = {name: code for code, name in DTYPE_CODES.items()}
_SPEC = re.compile(r"\s*([A-Za-z]+\d*)\s*\[\s*([0-9,\s]*?)\s*\]\s*")
_LOOKS_LIKE_SPEC = re.compile(r"\s*[A-Za-z]+\d*\s*\[")
EXAMPLE = "f32[1024,784], i64[8] or f64[] (a scalar)"


@dataclass(frozen=True)
class Spec:
    """A traced argument given by shape and dtype only (no data): `Spec((5, 3), "float64")`."""

    shape: tuple[int, ...]
    dtype: str  # a numpy dtype name: "float64", "int32", "bool"

    def __post_init__(self) -> None:
        if self.dtype not in CODE_OF_DTYPE:
            raise ArgumentError(f"spec dtype {self.dtype!r} is not supported "
                                f"(supported: {', '.join(DTYPE_CODES)})")
        if not all(isinstance(d, int) and d >= 0 for d in self.shape):
            raise ArgumentError(f"spec shape {self.shape!r} must hold non-negative integers")

    def __str__(self) -> str:
        return format_spec(self.shape, self.dtype)

    def __repr__(self) -> str:
        return f"sg.spec({str(self)!r})"

    def zeros(self) -> np.ndarray:
        """An array of this shape and dtype (what tracing needs to know, nothing more)."""
        return np.zeros(self.shape, dtype=self.dtype)


def format_spec(shape: tuple[int, ...], dtype: str) -> str:
    code = CODE_OF_DTYPE.get(str(dtype), str(dtype))
    return f"{code}[{','.join(str(int(d)) for d in shape)}]"


def looks_like_spec(text: str) -> bool:
    """`f32[3]`, `f64[5` (a typo, to be reported): what `.lower()` reads as a spec, not as a
    static string."""
    return _LOOKS_LIKE_SPEC.match(text) is not None


def parse_spec(text: str) -> Spec:
    """`"f32[3,4]"` -> `Spec((3, 4), "float32")`; a bad string raises ArgumentError saying why."""
    match = _SPEC.fullmatch(text)
    if not match:
        raise ArgumentError(f"bad signature {text!r}: expected dtype[shape], e.g. {EXAMPLE}")
    code, dims = match[1].lower(), match[2]
    dtype = DTYPE_CODES.get(code)
    if dtype is None:
        # Long numpy names ("float32") are accepted too; only codes are printed.
        dtype = code if code in CODE_OF_DTYPE else None
    if dtype is None:
        raise ArgumentError(f"bad signature {text!r}: unknown dtype {match[1]!r} "
                            f"(one of {', '.join(DTYPE_CODES)})")
    parts = [p.strip() for p in dims.split(",")] if dims.strip() else []
    if any(not p.isdigit() for p in parts):
        raise ArgumentError(f"bad signature {text!r}: the shape must be integers separated "
                            f"by commas, e.g. {EXAMPLE}")
    return Spec(tuple(int(p) for p in parts), dtype)


def spec(text_or_shape: Any, dtype: str | None = None) -> Spec:
    """An argument spec for `.lower()` and the export: `sg.spec("f32[3,4]")` or
    `sg.spec((3, 4), "float32")`."""
    if isinstance(text_or_shape, Spec):
        return text_or_shape
    if isinstance(text_or_shape, str) and dtype is None:
        return parse_spec(text_or_shape)
    if dtype is None:
        raise ArgumentError("sg.spec takes a string like 'f32[3,4]' or a shape and a dtype")
    name = DTYPE_CODES.get(dtype, None) or np.dtype(dtype).name
    return Spec(tuple(int(d) for d in text_or_shape), name)


@dataclass(frozen=True)
class ArgSpec:
    """What the traced function receives for one parameter: an array (traced) or static value."""

    name: str
    shape: tuple[int, ...] | None  # None: a static (non-array) argument
    dtype: str | None
    static_value: Any = None
    weak: bool = False  # a Python int or float traced as a weakly typed 0-d value
