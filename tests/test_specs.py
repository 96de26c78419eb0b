"""The compact signature form: f32[1024,784], i64[8], f64[] -- one spelling everywhere."""
from __future__ import annotations

import numpy as np
import pytest

import symgrad as sg
from symgrad.specs import Spec, format_spec, looks_like_spec, parse_spec


@pytest.mark.parametrize("text, shape, dtype", [
    ("f32[1024,784]", (1024, 784), "float32"),
    ("i64[8]", (8,), "int64"),
    ("f64[]", (), "float64"),
    (" f16 [ 2 , 3 ] ", (2, 3), "float16"),
    ("bool[3]", (3,), "bool"),
    ("u8[0]", (0,), "uint8"),
    ("float32[2]", (2,), "float32"),
])
def test_parse(text, shape, dtype):
    spec = parse_spec(text)
    assert spec == Spec(shape, dtype)
    assert parse_spec(str(spec)) == spec
    assert sg.spec(text) == spec and sg.spec(shape, dtype) == spec


@pytest.mark.parametrize("text, message", [
    ("f64[5", "expected dtype\\[shape\\]"),
    ("f64", "expected dtype\\[shape\\]"),
    ("q64[5]", "unknown dtype 'q64'"),
    ("c128[2]", "unknown dtype"),
    ("f64[-1]", "expected dtype"),
    ("f64[a,b]", "expected dtype"),
    ("f64[2,,3]", "must be integers"),
])
def test_bad_strings_say_why(text, message):
    with pytest.raises(sg.ArgumentError, match=message):
        parse_spec(text)


def test_format_and_repr():
    assert format_spec((5, 3), "float64") == "f64[5,3]"
    assert format_spec((), "int32") == "i32[]"
    assert repr(sg.spec("f32[2]")) == "sg.spec('f32[2]')"
    assert sg.spec("f32[2,3]").zeros().shape == (2, 3)
    assert looks_like_spec("f64[5") and not looks_like_spec("mean")


def test_signature_text_in_generated_header(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path))
    lowered = sg.grad(lambda x, n: np.sum(x ** n), static_argnames="n").lower("f32[2,3]", 3)
    assert "signature: x=f32[2,3], n=3" in lowered.source
