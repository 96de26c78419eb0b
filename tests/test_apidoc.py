"""docs/api.md is what `python -m symgrad.tools.apidoc` generates from the docstrings now, and every
transform in it comes with an example (the examples themselves run in test_docs_code.py)."""
from __future__ import annotations

import re
from pathlib import Path

from symgrad.tools import apidoc

API = Path(__file__).resolve().parent.parent / "docs" / "api.md"
TRANSFORMS = ("grad", "value_and_grad", "vjp", "jvp", "hvp", "jacfwd", "jacrev", "jacobian",
              "hessian", "jit", "stop_gradient", "vmap", "custom_jvp", "custom_vjp", "elementwise",
              "check_grads")


def test_api_reference_is_current():
    assert API.read_text() == apidoc.render(), (
        "docs/api.md is stale: run `python -m symgrad.tools.apidoc > docs/api.md`")


def test_every_transform_has_arguments_returns_and_an_example():
    sections = re.split(r"\n(?=## )", apidoc.render())
    for name in TRANSFORMS:
        section = next(s for s in sections  # a class's title has no signature
                       if s.startswith((f"## `sg.{name}(", f"## `sg.{name}`")))
        assert "```python\n" in section and "assert " in section, name
        assert "Returns" in section or "returns" in section, name
    lower = next(s for s in re.split(r"\n(?=### )", apidoc.render()) if s.startswith("### `.lower("))
    assert "```python\n" in lower
