"""The numpy backend's load-time grammar: every module symgrad writes passes it, anything else
is refused before it runs; user text never becomes code."""
from __future__ import annotations

import ast
import builtins
import inspect
import keyword
import textwrap
import time
import types
from pathlib import Path

import numpy as np
import pytest

import symgrad as sg
from symgrad.cache import import_source
from symgrad.backends.numpy import PURE_BUILTINS, check_source, template_helpers
from symgrad.schedule import comment_text, identifier, is_safe_identifier

REPO = Path(__file__).resolve().parent.parent
HEAD = '"""A module like the ones symgrad writes."""\nimport numpy as np\n\n'

GOOD = HEAD + textwrap.dedent('''\
    C0 = np.array([1.0, -2.0, np.inf, -np.nan], dtype=np.float64)
    const = np.eye(3, dtype=np.bool)


    def _sigmoid(x):
        """1 / (1 + exp(-x)), computed without overflow for any x."""
        return np.exp(-np.logaddexp(0, -x))


    def f_grad(x, w):
        # model.py:3  z = x @ w
        z = x @ w
        t0, t1 = z.T, -z[:, None, 1:3:2]
        t0 += 1
        (t7,) = (z,)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            t2 = np.where(z > 0, np.log(z), 0.0)
        t3 = np.add.reduce(t2, axis=0) + np.linalg.norm(z) + np.sum(x).astype(np.float32)
        t4 = _sigmoid(t3) if True else None
        t5 = np.empty((3, 2), dtype=np.float64)
        t5[..., 0] = 0
        np.add(t5, 1, out=t5)
        t6 = np.s_[0, ...]
        return (t5 ** 2 - C0[0]) / max(1, len(x.shape)), [t1, np.inf, -np.nan, t4, t6, t7]
''')
ONE_FUNCTION = "\n\ndef f_grad(x):\n    return x\n"

REFUSED = {
    "import subprocess": "import subprocess",
    "from numpy import load": "from numpy import load",
    "import numpy": "import numpy",
    "import os as np": "import os as np",
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
    "numpy function as a value": "def f(x):\n    t = np.save\n    return x",
    "helper as a value": "def _sigmoid(x):\n    \"\"\"1 / (1 + exp(-x)), computed without "
                         "overflow for any x.\"\"\"\n    return np.exp(-np.logaddexp(0, -x))\n\n"
                         "def f(x):\n    t = _sigmoid\n    return x",
    "errstate call": "def f(x):\n    with np.errstate(call=x):\n        t = x\n    return x",
    "errstate as a call": "def f(x):\n    t = np.errstate(all='ignore')\n    return x",
    "for loop": "def f(x):\n    for i in range(3):\n        x = x + 1\n    return x",
    "while": "def f(x):\n    while x:\n        pass\n    return x",
    "if": "def f(x):\n    if x:\n        return x\n    return x",
    "f-string": "def f(x):\n    return f'{x}'",
    "global": "def f(x):\n    global y\n    return x",
    "class": "class A:\n    pass",
    "decorator": "@np.vectorize\ndef f(x):\n    return x",
    "assign np": "def f(x):\n    np = x\n    return np",
    "module assign np": "np = 1",
    "module call": "print(1)",
    "module constant call": "C = np.sum(1)",
    "module constant from a name": "C = np.array(C0, dtype=np.float64)",
    "module constant dtype": "C = np.array([1.0], dtype=x)",
    "module constant string": "C = np.array(['import os'], dtype=np.str_)",
    "with open": "def f(x):\n    with open('a') as h:\n        return x",
    "starred": "def f(x):\n    return np.add(*x)",
    "kwargs splat": "def f(x):\n    return np.sum(x, **{'axis': 0})",
    "unbound name": "def f(x):\n    return os.system('true')",
    "module name": "import os\n\ndef f(x):\n    return os",
    "call of a local": "def f(x):\n    y = x\n    return y(1)",
    "call of a parameter": "def f(x):\n    return x(1)",
    "bytes": "def f(x):\n    return b'abc'",
    "dict": "def f(x):\n    return {'a': x}",
    "comprehension": "def f(x):\n    return [v for v in x]",
    "walrus": "def f(x):\n    return (y := x)",
    "try": "def f(x):\n    try:\n        return x\n    except Exception:\n        return x",
    "delete": "def f(x):\n    del x\n    return 1",
    "varargs": "def f(*x):\n    return x",
    "default": "def f(x=print):\n    return x",
    "attribute store": "def f(x):\n    x.shape = (3,)\n    return x",
    "attribute of constant": "def f(x):\n    return 'a'.join(x)",
    "annotation": "def f(x: 'evil'):\n    return x",
    "seterr": "def f(x):\n    np.seterr(all='ignore')\n    return x",
    "np.random": "def f(x):\n    return np.random.random(3)",
    "dunder name": "def f(__x):\n    return __x",
    "builtin parameter": "def f(exec):\n    return exec",
    "nested function decorator": "def f(x):\n    @np.vectorize\n    def g(y):\n"
                                 "        return y\n    return g(x)",
    "expression statement": "def f(x):\n    x + 1\n    return x",
    "call for effect without out": "def f(x):\n    np.sum(x)\n    return x",
    "closure escapes": "def f(x):\n    def g(y):\n        return os\n    return g(x)",
    "call of a nested function": "def f(x):\n    def g(y):\n        return y\n    return g(x)",
    "two functions": "def f(x):\n    return x\n\ndef g(x):\n    return x",
    # loop drivers (grammar_loops.py): only `for NAME in range(ints)`, `while f(...)[0]`,
    # `if NAME == INT: return f(...)`, plain assignments inside, loop functions only called
    "for over a value": "def d(x):\n    for i in x:\n        x = x + 1\n    return x\n\n"
                        "def f(x):\n    return d(x)",
    "for over range of a value": "def d(x):\n    for i in range(x):\n        x = x + 1\n"
                                 "    return x\n\ndef f(x):\n    return d(x)",
    "for with else": "def d(x):\n    for i in range(3):\n        x = x + 1\n    else:\n"
                     "        x = x\n    return x\n\ndef f(x):\n    return d(x)",
    "nested for": "def d(x):\n    for i in range(3):\n        for j in range(3):\n"
                  "            x = x + 1\n    return x\n\ndef f(x):\n    return d(x)",
    "while on a value": "def d(x):\n    while x:\n        x = x\n    return x\n\n"
                        "def f(x):\n    return d(x)",
    "if on a value": "def b(x):\n    return x\n\ndef d(x):\n    if x:\n        return b(x)\n"
                     "    return b(x)\n\ndef f(x):\n    return d(x)",
    "loop in the generated function": "def b(x):\n    return x\n\ndef f(x):\n"
                                      "    for i in range(3):\n        x = b(x)\n    return x",
    "loop function as a value": "def b(x):\n    return x\n\ndef f(x):\n    y = b\n"
                                "    return b(x)",
    "call in a loop of a non-loop function": "def d(x):\n    for i in range(2):\n"
                                             "        x = exec(x)\n    return x\n\n"
                                             "def f(x):\n    return d(x)",
    "no return": "def f(x):\n    y = x",
    "return in the middle": "def f(x):\n    return x\n    y = x\n    return y",
    "late binding of exec": "X = exec('1')\n\ndef exec(code):\n    return code",
    "late binding of open": "def f(x):\n    return open(x)\n\ndef open(x):\n    return x",
    "rebinding a builtin": "def len(x):\n    return x",
    "helper not as the templates hold it": "def _sigmoid(x):\n    return exec(x)",
    "helper constant changed": "_THREADS = exec('1')",
    "twice bound": "C = np.eye(2, dtype=np.float64)\nC = np.eye(3, dtype=np.float64)",
    "chained assignment": "def f(x):\n    a = b = x\n    return a",
    "deep expression": "def f(x):\n    return " + "-" * 150 + "x",
}


def test_good_module_passes_and_runs():
    module = import_source(GOOD, None, "good_example", check_source)
    value, rest = module.f_grad(np.ones((2, 2)), np.ones((2, 2)))
    assert value.shape == (3, 2) and np.isinf(rest[1])
    # z is 3 after `t0 += 1` (t0 is a view of it): 2 log 3 + ||z|| + sum(x)
    np.testing.assert_allclose(rest[3], 1 / (1 + np.exp(-(2 * np.log(3) + 6 + 4))))


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused(name):
    case = REFUSED[name]
    whole_function = any(line.startswith("def ") and not line.startswith("def _")
                         for line in case.splitlines())
    source = HEAD + case + ("\n" if whole_function else ONE_FUNCTION)
    with pytest.raises(sg.GeneratedCodeError, match="refused before execution|does not parse") \
            as error:
        check_source(source, "entry.py")
    if name not in ("two functions", "no return"):
        assert "generated functions (symgrad writes one)" not in str(error.value)


def test_template_helpers_are_compared_node_for_node():
    """Helpers run as the templates hold them (threads, loops, os.environ); the same helper
    changed anywhere is refused, whatever its layout."""
    helpers = template_helpers()
    assert {"_sigmoid", "_unslice", "_scatter_add", "_in_blocks", "_cpu_count", "_THREADS",
            "_erf", "_gammaln", "_LGAMMA_NEAR_2", "_digamma", "_trigamma", "_logit"} <= set(helpers)
    helper = ("def _sigmoid(x):\n    \"\"\"1 / (1 + exp(-x)), computed without overflow for any "
              "x.\"\"\"\n    return np.exp(-np.logaddexp(0, -x))\n")
    check_source(HEAD + helper + ONE_FUNCTION)
    check_source(HEAD + helper.replace("(0, -x)", "( 0,-x )") + ONE_FUNCTION)  # layout: same tree
    with pytest.raises(sg.GeneratedCodeError, match="not one of the templates' helpers"):
        check_source(HEAD + helper.replace("(0, -x)", "(1, -x)") + ONE_FUNCTION)


@pytest.mark.parametrize("separator", ["\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e",
                                       "\x85", "\u2028", "\u2029", "\t", "\x00"])
def test_any_line_break_but_newline_is_refused(separator):
    """A line separator in a comment shifted the old check's line numbers against the
    parser's; now any such character anywhere refuses the whole module."""
    source = GOOD.replace("# model.py:3  z = x @ w", f"# model.py:3 {separator} z = x @ w")
    assert source != GOOD
    with pytest.raises(sg.GeneratedCodeError, match="the character"):
        check_source(source, "entry.py")


def test_refused_source_never_runs(tmp_path):
    marker = tmp_path / "ran"
    source = f"import numpy as np\n__import__('os').mkdir({str(marker)!r})\n"
    with pytest.raises(sg.GeneratedCodeError, match="entry.py:2"):
        import_source(source, tmp_path / "entry.py", "evil", check_source)
    assert not marker.exists()


def test_every_checked_in_generated_module_passes():
    modules = sorted((REPO / "generated").glob("*.py"))
    assert modules
    from symgrad.backends.c import check_launcher
    from symgrad.backends.cuda import check_launcher as check_cuda_launcher

    for path in modules:
        if path.name.startswith("test_"):
            continue
        if path.with_suffix(".c").exists():  # a C backend launcher: that backend's grammar
            check_launcher(path.read_text(), str(path))
        elif path.with_suffix(".cu").exists():  # a CUDA backend launcher: its own grammar
            check_cuda_launcher(path.read_text(), str(path))
        else:
            check_source(path.read_text(), str(path))


def test_check_is_fast_and_needs_no_sympy():
    import subprocess
    import sys

    code = ("import sys, time; from symgrad.backends.numpy import check_source; "
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
    from symgrad.autodiff import Transform
    from symgrad.backends import generated_name

    for name in ["lambda", "<lambda>", "np", "sum", "x" * 500, "", "0day", "a-b", "é", "def",
                 "os", "threading", "contextvars", "_in_blocks", "__import__"]:
        fn = types.FunctionType((lambda: None).__code__, {})
        fn.__name__ = name
        for kind in ("jit", "grad"):
            generated = generated_name(fn, Transform(kind, (0,)))
            assert generated.isidentifier() and generated.isascii()
            assert not keyword.iskeyword(generated) and not hasattr(builtins, generated)
            assert generated not in ("np", "numpy") and len(generated) <= 80
            assert is_safe_identifier(generated)


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


# -- the one sanitiser -------------------------------------------------------------------------
HOSTILE_TEXT = ["x\nimport os", "x\u2028import os", "a\rb", "a\x0cb", "a\x1cb", "a\x85b",
                "a\u2029b", "\"\"\"", "\\", "sum", "np", "os", "threading", "_in_blocks", "__x",
                "0day", "", "_", "é", "lambda", "match", "a" * 300, "x y", "t0"]


@pytest.mark.parametrize("text", HOSTILE_TEXT, ids=range(len(HOSTILE_TEXT)))
def test_sanitiser_names_and_comments(text):
    name = identifier(text)
    assert is_safe_identifier(name) and name.isidentifier() and not keyword.iskeyword(name)
    comment = comment_text(text)
    assert all(c.isprintable() for c in comment) and len(comment) == len(text)
    assert len(("# " + comment + "\n").splitlines()) == 1


def _forged(name: str):
    """A function whose signature names a parameter `name` (inspect.Parameter refuses such a
    name; a forged __signature__ does not)."""
    def fn(x, w):
        return np.sum((x * w) ** 2)

    params = [inspect.Parameter("x", inspect.Parameter.POSITIONAL_OR_KEYWORD),
              inspect.Parameter("w", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    params[1]._name = name
    fn.__signature__ = inspect.Signature(params)
    return fn


@pytest.mark.parametrize("separator", ["\n", "\u2028", "\r", "\x0c", "\x85"])
def test_forged_parameter_name_never_becomes_code(tmp_path, monkeypatch, separator):
    """A parameter name holding a line break and code: in the generated module it is a plain
    identifier; in the exported pytest file's WRT comment it stays one line of comment."""
    from symgrad.cli import export

    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path / "cache"))
    marker = tmp_path / "ran"
    name = f"w{separator}__import__('os').mkdir({str(marker)!r}){separator}#"
    g = sg.grad(_forged(name), wrt=name)
    x, w = np.array([1.0, 2.0]), np.array([3.0, -1.0])
    np.testing.assert_allclose(g(x, w), 2 * x * x * w)
    source = g.lower(x, w).source
    tree = check_source(source)
    assert {n.id for n in ast.walk(tree) if isinstance(n, ast.Call)
            and isinstance(n.func, ast.Name)} <= {"_sigmoid"}
    exported = export.export(g, [x, w], tmp_path / "out", test=True)
    text = exported.test.read_text()
    assert all(c.isprintable() or c == "\n" for c in text)
    test_tree = ast.parse(text)
    calls = {n.func.id for n in ast.walk(test_tree) if isinstance(n, ast.Call)
             and isinstance(n.func, ast.Name)}
    assert "__import__" not in calls
    wrt_line = next(line for line in text.splitlines() if line.startswith("WRT = "))
    assert wrt_line.startswith("WRT = [1]  # positions of w")
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             exported.test.name], cwd=exported.test.parent, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not marker.exists()


# -- the grammar accepts everything symgrad writes --------------------------------------------
def test_every_zoo_module_passes_blocked_and_in_place(tmp_path, monkeypatch):
    """Every model of the zoo in float32 with every size threshold at zero: row blocks, the
    blocks helper and its imports, in-place `out=` calls and updates, column-by-column sums."""
    from models_zoo import MODELS

    from symgrad.backends.numpy import blocking, buffers, statements

    monkeypatch.setattr(buffers, "REUSE_MIN_BYTES", 0)
    monkeypatch.setattr(statements, "COLUMNWISE_MIN_BYTES", 0)
    monkeypatch.setattr(blocking, "BLOCKING_MIN_BYTES", 0)
    monkeypatch.setattr(blocking, "BLOCK_BYTES", 64)
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path / "cache"))
    seen = {"_in_blocks(": 0, "out=": 0, " += ": 0, "def block": 0}
    for model in MODELS:
        args = model.make_args(np.random.default_rng(0), np.float32)
        source = sg.value_and_grad(model.numpy_fn, wrt=model.wrt).lower(**args).source
        _, pullback = sg.vjp(model.numpy_fn, *args.values(), wrt=model.wrt)
        for text in [source] + [part.source for part in pullback.lower()]:
            check_source(text, model.name)  # value_and_grad, vjp's forward and pullback
        for form in seen:
            seen[form] += form in source
    assert all(count > 0 for count in seen.values()), seen


def test_every_property_program_passes(tmp_path, monkeypatch):
    """The property tests' programs (every elementwise op, helpers such as _erf included),
    whole and in row blocks."""
    from hypothesis import given, settings
    from test_property_elementwise import _data, _loss, programs

    from symgrad.backends.numpy import blocking

    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path / "cache"))
    helpers = set()

    @settings(max_examples=8, deadline=None, derandomize=True, database=None)
    @given(programs())
    def check(program):
        shapes, steps, seed = program
        args, weights = _data(shapes, seed)
        fn = sg.value_and_grad(_loss(steps, weights, len(args)), wrt=tuple(range(len(args))))
        source = fn.lower(*args).source
        check_source(source)
        helpers.update(n for n in template_helpers() if f"def {n}(" in source)

    check()
    monkeypatch.setattr(blocking, "BLOCKING_MIN_BYTES", 0)
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path / "blocked"))
    check()
    assert {"_sigmoid", "_in_blocks"} <= helpers, helpers


@pytest.mark.parametrize("name", ["const", "block", "parts", "os", "threading", "_in_blocks",
                                  "t0", "value", "x"])
def test_function_named_like_generated_names(name, tmp_path, monkeypatch):
    """Found by the grammar: a jit'd function named `const` once shared its name with a module
    constant (`const = np.eye(...)`), which the function's own def then replaced."""
    from symgrad.backends.numpy import blocking

    monkeypatch.setattr(blocking, "BLOCKING_MIN_BYTES", 0)
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path))
    eye = np.eye(3)

    def f(x, w):
        t = np.tanh(x * w) + eye * x
        return np.sum(t * t)

    f.__name__ = f.__qualname__ = name
    x, w = np.linspace(-1, 1, 9).reshape(3, 3), np.linspace(0.5, 1.5, 9).reshape(3, 3)
    t = np.tanh(x * w) + eye * x
    np.testing.assert_allclose(sg.jit(f)(x, w), np.sum(t * t), rtol=1e-12)
    value, (gx, gw) = sg.value_and_grad(f, wrt=(0, 1))(x, w)
    np.testing.assert_allclose(gw, 2 * t * (1 - np.tanh(x * w) ** 2) * x, rtol=1e-12)


def test_size_zero_constants_pass_the_grammar():
    w = np.zeros((0, 3))
    f = sg.value_and_grad(lambda x: np.sum(x * w) + np.sum(x))
    value, g = f(np.ones((0, 3)))
    assert value == 0.0 and g.shape == (0, 3)
