"""Generated code is checked against an allowlist before it runs; user text never becomes code."""
from __future__ import annotations

import ast
import builtins
import keyword
import textwrap
import time
import types
from pathlib import Path

import numpy as np
import pytest

import symgrad as sg
from symgrad.cache import import_source
from symgrad.safety import PURE_BUILTINS, check_source

REPO = Path(__file__).resolve().parent.parent

GOOD = textwrap.dedent('''\
    """A module like the ones symgrad writes."""
    import numpy as np

    C0 = np.array([1.0, 2.0], dtype=np.float64)


    def _helper(values, shape, index):
        """Docstring."""
        full = np.zeros(shape, dtype=values.dtype)
        full[index] = values
        return full


    def f_grad(x, w):
        # model.py:3  z = x @ w
        z = x @ w
        t0, t1 = z.T, -z[:, None, 1:3:2]
        t0 += 1
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            t2 = np.where(z > 0, np.log(z), 0.0)
        t3 = np.add.reduce(t2, axis=0) + np.linalg.norm(z) + np.sum(x).astype(np.float32)
        t4 = _helper(t3, (3, 2), np.s_[0, ...]) if True else None
        t5 = np.empty((3, 2))

        # a block of rows, as the templates write them
        def block(rows, out):
            out[...] = rows * 2
            return np.sum(rows),

        block(t4, t5)
        np.add(t5, 1, out=t5)
        return (t5 ** 2 - C0[0]) / max(1, len(x.shape)), [t1, np.inf, -np.nan]
''')

REFUSED = {
    "import subprocess": "import subprocess",
    "from numpy import load": "from numpy import load",
    "import numpy": "import numpy",
    "dunder builtins": "def f(x):\n    return __import__('os')",
    "open": "def f(x):\n    return open('/etc/passwd')",
    "exec": "def f(x):\n    return exec('1')",
    "getattr": "def f(x):\n    return getattr(x, 'T')",
    "np.load": "def f(x):\n    return np.load('a.npy')",
    "np.lib": "def f(x):\n    return np.lib.format.read_array(x)",
    "np.ctypeslib": "def f(x):\n    return np.ctypeslib.as_array(x)",
    "tofile": "def f(x):\n    return x.tofile('/tmp/a')",
    "private attribute": "def f(x):\n    return x.__class__",
    "dunder via np": "def f(x):\n    return np.__builtins__",
    "lambda": "def f(x):\n    return np.vectorize(lambda v: v)(x)",
    "for loop": "def f(x):\n    for i in x:\n        x = x + 1\n    return x",
    "for range of a value": "def f(x):\n    for i in range(x):\n        x = x + 1\n    return x",
    "for else": "def f(x):\n    for i in range(3):\n        x = x + 1\n    else:\n        x = 0\n    return x",
    "for nested": "def f(x):\n    for i in range(3):\n        for j in range(3):\n            x = x + 1\n    return x",
    "while": "def f(x):\n    while x:\n        pass\n    return x",
    "if other than a branch": "def f(x):\n    if x:\n        return x\n    return x",
    "if": "def f(x):\n    if x:\n        return x\n    return x",
    "f-string": "def f(x):\n    return f'{x}'",
    "global": "def f(x):\n    global y\n    return x",
    "class": "class A:\n    pass",
    "decorator": "@np.vectorize\ndef f(x):\n    return x",
    "assign np": "def f(x):\n    np = x\n    return np",
    "module assign np": "np = 1",
    "module call": "print(1)",
    "with open": "def f(x):\n    with open('a') as h:\n        return x",
    "starred": "def f(x):\n    return np.add(*x)",
    "kwargs splat": "def f(x):\n    return np.sum(x, **{'axis': 0})",
    "unbound name": "def f(x):\n    return os.system('true')",
    "call of a local": "def f(x):\n    y = x\n    return y(1)",
    "bytes": "def f(x):\n    return b'abc'",
    "dict": "def f(x):\n    return {'a': x}",
    "comprehension": "def f(x):\n    return [v for v in x]",
    "walrus": "def f(x):\n    return (y := x)",
    "try": "def f(x):\n    try:\n        return x\n    except Exception:\n        return x",
    "delete": "def f(x):\n    del x\n    return 1",
    "varargs": "def f(*x):\n    return x",
    "attribute store": "def f(x):\n    x.shape = (3,)\n    return x",
    "attribute of constant": "def f(x):\n    return 'a'.join(x)",
    "helper attribute": "def h(x):\n    return x\n\ndef f(x):\n    return h.__globals__",
    "annotation": "def f(x: 'evil'):\n    return x",
    "seterr": "def f(x):\n    np.seterr(all='ignore')\n    return x",
    "np.random": "def f(x):\n    return np.random.random(3)",
    "dunder name": "def f(__x):\n    return __x",
    "nested function decorator": "def f(x):\n    @np.vectorize\n    def g(y):\n"
                                 "        return y\n    return g(x)",
    "expression statement": "def f(x):\n    x + 1\n    return x",
    "closure escapes": "def f(x):\n    def g(y):\n        return os\n    return g(x)",
}


def test_good_module_passes_and_runs():
    module = import_source(GOOD, None, "good_example")
    t4, rest = module.f_grad(np.ones((2, 2)), np.ones((2, 2)))
    assert np.isinf(rest[1])


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused(name):
    source = '"""doc"""\nimport numpy as np\n\n' + REFUSED[name] + "\n"
    with pytest.raises(sg.GeneratedCodeError, match="refused before execution|does not parse"):
        check_source(source, "entry.py")


def test_template_helpers_are_trusted_verbatim_only(monkeypatch):
    """Helpers that the templates hold as plain text run as they are (threads, loops); the
    same text changed by one character is generated code and must pass the allowlist."""
    import symgrad.safety as safety

    helper = ("def _in_steps(body, n):\n    for k in range(n):\n        body(k)\n"
              "    return n\n")
    template = '"""{{ header }}"""\nimport numpy as np\nimport threading\n\n\n' + helper
    monkeypatch.setattr(safety, "_template_texts", lambda: ("\n" + template + "\n",))
    module = '"""doc"""\nimport numpy as np\nimport threading\n\n\n' + helper + \
        "\n\ndef f(x):\n    return _in_steps(np.sum, 3)\n"
    check_source(module)
    with pytest.raises(sg.GeneratedCodeError, match="a For statement|a `for` loop other than"):
        check_source(module.replace("range(n)", "range(n + 1)"))
    with pytest.raises(sg.GeneratedCodeError, match="unbound or forbidden name 'threading'"):
        check_source(module.replace("return _in_steps(np.sum, 3)", "return threading"))


def test_refused_source_never_runs(tmp_path):
    marker = tmp_path / "ran"
    source = f"import numpy as np\n__import__('os').mkdir({str(marker)!r})\n"
    with pytest.raises(sg.GeneratedCodeError, match="entry.py:2"):
        import_source(source, tmp_path / "entry.py", "evil")
    assert not marker.exists()


def test_every_checked_in_generated_module_passes():
    modules = sorted((REPO / "generated").glob("*.py"))
    assert modules
    for path in modules:
        if not path.name.startswith("test_"):
            check_source(path.read_text(), str(path))


def test_check_is_fast_and_needs_no_sympy():
    import subprocess
    import sys

    code = ("import sys, time; from symgrad.safety import check_source; "
            f"s = open({str(REPO / 'generated' / 'mlp_loss_value_and_grad.py')!r}).read(); "
            "check_source(s); t = time.perf_counter(); [check_source(s) for _ in range(50)]; "
            "print((time.perf_counter() - t) / 50, 'sympy' in sys.modules, "
            "'jinja2' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=REPO, timeout=60)
    seconds, sympy_loaded, jinja_loaded = result.stdout.split()
    assert (sympy_loaded, jinja_loaded) == ("False", "False")
    assert float(seconds) < 0.01  # about a millisecond for a two-layer network's module


# -- fuzz: hostile names and constants --------------------------------------------------------
HOSTILE_NAMES = ["np", "numpy", "sum", "len", "exec", "eval", "open", "print", "os", "sys",
                 "_sigmoid", "_unslice", "t0", "value", "x_bar", "cse0", "self", "match",
                 "case", "_", "__x", "a" * 300, "ñandú", "Σ", "slice", "float", "range"]
FLOATS = [0.0, -0.0, 1.0, 0.1, 1 / 3, 5e-324, 2.2250738585072014e-308, 1e-310,
          1.7976931348623157e308, float("inf"), -float("inf"), float("nan"),
          float(np.float32(0.1)), float(np.float16(0.1)), 2.0 ** 70, -123456789.125]

# numpy under a name no hostile name takes, so that parameters may be called `np`.
TEMPLATE = textwrap.dedent("""
    import numpy as numpy_

    def make({c}):
        def fn({a}, {b}):
            {t} = numpy_.tanh({a} * {b}) + {c} * {a}
            return numpy_.sum({t} * {t} - numpy_.exp(-numpy_.abs({b}))
                              + numpy_.sqrt({c} + 0 * {a}))
        return fn
""")


def _build(a: str, b: str, t: str, c: str, constant: float, name: str | None = None):
    namespace: dict = {}
    exec(TEMPLATE.format(a=a, b=b, t=t, c=c), namespace)
    fn = namespace["make"](constant)
    if name is not None:
        fn.__name__ = fn.__qualname__ = name
    return fn


def assert_no_user_text_in_code(source: str) -> None:
    """Bound names are fresh identifiers (never np, a builtin or a dunder); the only strings
    outside docstrings are symgrad's own."""
    tree = ast.parse(source)
    docstrings = {id(n.value) for n in ast.walk(tree)
                  if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)}
    for node in ast.walk(tree):
        bound = (node.arg if isinstance(node, ast.arg) else node.name
                 if isinstance(node, ast.FunctionDef) else node.id
                 if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) else None)
        if bound is not None:
            assert bound.isidentifier() and bound.isascii() and not bound.startswith("__")
            assert bound != "np" and not hasattr(builtins, bound), bound
            assert len(bound) <= 80, bound
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) \
                and hasattr(builtins, node.id):
            assert node.id in PURE_BUILTINS, node.id
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and id(node) not in docstrings:
            assert node.value == "ignore", node.value


@pytest.mark.parametrize("seed", range(8))
def test_hostile_names_and_constants(seed, tmp_path, monkeypatch):
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path / "cache"))
    rng = np.random.default_rng(seed)
    a, b, t, c = rng.choice(HOSTILE_NAMES, size=4, replace=False)
    if a == b or keyword.iskeyword(a):
        pytest.skip("needs two distinct parameter names")
    function_name = rng.choice(["lambda", "np", "sum", "__import__", "x" * 200, "évaluer",
                                "a b-c", "0day", "<lambda>", ""])
    x = rng.normal(size=(2, 3))
    w = rng.normal(size=(2, 3))
    for constant in FLOATS[seed::4]:
        hostile = _build(a, b, t, c, constant, name=str(function_name))
        plain = _build("x", "w", "h", "k", constant)
        g_hostile = sg.value_and_grad(hostile, wrt=(0, 1))
        g_plain = sg.value_and_grad(plain, wrt=(0, 1))
        with np.errstate(all="ignore"):
            got, expected = g_hostile(x, w), g_plain(x, w)
        np.testing.assert_array_equal(got[0], expected[0])
        for mine, theirs in zip(got[1], expected[1]):
            np.testing.assert_array_equal(mine, theirs)
        assert_no_user_text_in_code(g_hostile.lower(x, w).source)


def test_hostile_source_text_in_comments_and_docstring(tmp_path, monkeypatch):
    """Source lines and static strings go into comments and the docstring, never code."""
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path / "cache"))
    module = tmp_path / "hostile_model.py"
    module.write_text(
        'import numpy as np\n\n'
        'def f(x, mode):\n'
        '    z = x * 2  # """ \u2028 import os \\ \x0c \\n\n'
        '    return np.sum(z * z) if mode == \'"""\\nimport os\\n\' else np.sum(z)\n',
        encoding="utf-8")
    namespace: dict = {}
    exec(compile(module.read_text(encoding="utf-8"), str(module), "exec"), namespace)
    g = sg.grad(namespace["f"], wrt="x")
    hostile_mode = '"""\nimport os\n'
    np.testing.assert_array_equal(g(np.ones(2), hostile_mode), [8.0, 8.0])
    np.testing.assert_array_equal(g(np.ones(2), "plain"), [2.0, 2.0])
    source = g.lower(np.ones(2), hostile_mode).source
    tree = check_source(source)
    assert not any(isinstance(n, ast.Import) and n.names[0].name == "os" for n in ast.walk(tree))
    assert "import os" in source  # present, but only inside the docstring and a comment
    assert len(ast.get_docstring(tree).splitlines()) < 15


def test_generated_name_is_always_an_identifier():
    from symgrad.compiler import Transform, generated_name

    for name in ["lambda", "<lambda>", "np", "sum", "x" * 500, "", "0day", "a-b", "é", "def"]:
        fn = types.FunctionType((lambda: None).__code__, {})
        fn.__name__ = name
        for kind in ("jit", "grad"):
            generated = generated_name(fn, Transform(kind, (0,)))
            assert generated.isidentifier() and generated.isascii()
            assert not keyword.iskeyword(generated) and not hasattr(builtins, generated)
            assert generated not in ("np", "numpy") and len(generated) <= 80


def test_inlined_code_never_leaks_from_an_earlier_compilation(tmp_path, monkeypatch):
    """Found by the allowlist: SymPy's caches once returned `x @ w` inlined into a function
    of `a, b` (an unbound name the check refused; with matching names, wrong numbers)."""
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path / "cache"))

    def first(x, w):
        return np.sum(np.tanh(x @ w))

    def second(a, b):
        return np.sum(np.tanh(a @ b))

    sg.value_and_grad(first, wrt=(0, 1))(np.ones((3, 4)), np.ones((4, 2)))
    # What a long session does: Symbol's constructor cache evicts `v1` while the expression
    # cache still holds tanh(v1) with the old object (and its code).
    import sympy

    constructor = sympy.Symbol.__dict__.get("_Symbol__xnew_cached_")
    if hasattr(getattr(constructor, "__func__", None), "cache_clear"):
        constructor.__func__.cache_clear()
    a, b = np.linspace(0, 1, 12).reshape(3, 4), np.linspace(-1, 1, 8).reshape(4, 2)
    g = sg.value_and_grad(second, wrt=(0, 1))
    value, (ga, gb) = g(a, b)
    assert "x @ w" not in g.lower(a, b).source
    t = np.tanh(a @ b)
    np.testing.assert_allclose(ga, (1 - t ** 2) @ b.T, rtol=1e-12)
