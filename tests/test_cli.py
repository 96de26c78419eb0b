"""The `symgrad` command line: every command's help, output, and one-line errors."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from symgrad.cli import COMMANDS, main, parse_age, parse_size
from symgrad.tools import Progress

REPO = Path(__file__).resolve().parent.parent
MODEL = textwrap.dedent("""
    import numpy as np
    import symgrad as sg


    def loss(x, y, w, b):
        z = x @ w + b
        return np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))


    @sg.grad(wrt="w")
    def decorated(x, w):
        return np.sum(np.tanh(x @ w))


    def spectrum(x):
        return np.sum(np.linalg.eig(x.reshape(2, 2))[0].real)


    def vector(x):
        return x * 2


    def scaled(x, power, mode):
        return np.sum(x ** power) if mode == "sum" else np.mean(x ** power)
""")
ARGS = ["--arg", "x=f64[5]", "--arg", "y=f64[3]", "--arg", "w=f64[5,3]", "--arg", "b=f64[3]"]


@pytest.fixture
def model(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "model.py"
    path.write_text(MODEL)
    return path


def symgrad(*argv: str, cwd: Path | None = None, env: dict | None = None):
    """`python -m symgrad ...` in a subprocess: (returncode, stdout, stderr)."""
    full_env = {**os.environ, **(env or {}),
                "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO),
                                                            os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, "-m", "symgrad", *argv], capture_output=True,
                            text=True, cwd=cwd, env=full_env, timeout=120)
    return result.returncode, result.stdout, result.stderr


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """The command in this process (fast): (returncode, stdout, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


HELPS = [[name] for name in COMMANDS if name != "cache"] + [
    ["cache"], ["cache", "info"], ["cache", "clear"], ["cache", "prune"], ["cache", "why"]]


@pytest.mark.parametrize("command", HELPS, ids=" ".join)
def test_every_command_has_help_with_an_example(command, capsys):
    with pytest.raises(SystemExit) as done:
        main([*command, "--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0
    assert "example" in out and f"symgrad {command[0]}" in out.split("example", 1)[1]


def test_top_level_help_and_python_m():
    code, out, err = symgrad("--help")
    assert code == 0 and "codegen" in out and "cache" in out and "examples:" in out
    code, out, err = symgrad()
    assert code == 2 and out == "" and err.startswith("usage: symgrad")
    assert err.strip().splitlines()[-1].startswith("symgrad: error: a command is required")


def test_version_names_symgrad_numpy_sympy_python():
    import numpy
    import sympy

    from symgrad import __version__

    code, out, err = symgrad("--version")
    assert code == 0 and err == ""
    assert out.splitlines()[:3] == [f"symgrad {__version__}", f"numpy {numpy.__version__}",
                                    f"sympy {sympy.__version__}"]
    assert out.splitlines()[3].startswith(f"python {sys.version.split()[0]}")


def test_show_prints_the_generated_module(model, capsys):
    code, out, err = run(capsys, "show", f"{model}:loss", *ARGS, "--wrt", "w,b")
    assert code == 0, err
    assert "def loss_value_and_grad(x, y, w, b):" in out and "# model.py:7  z = x @ w + b" in out
    assert "signature: x=f64[5], y=f64[3], w=f64[5,3], b=f64[3]" in out


def test_decorated_function_brings_mode_and_wrt(model, capsys):
    code, out, err = run(capsys, "show", f"{model}:decorated", "--arg", "x=f32[2,3]",
                         "--arg", "w=f32[3,4]")
    assert code == 0, err
    assert "def decorated_grad(x, w):" in out and "transform: grad, wrt=(w)" in out


def test_static_arguments_and_vjp_cotangent(model, capsys):
    code, out, err = run(capsys, "show", f"{model}:scaled", "--arg", "x=f64[3]",
                         "--arg", "power=3", "--arg", "mode='sum'", "--mode", "grad")
    assert code == 0, err
    assert "def scaled_grad(x, power, mode):" in out and "mode='sum'" in out
    code, out, err = run(capsys, "show", f"{model}:vector", "--arg", "x=f64[3]",
                         "--mode", "vjp")
    assert code == 0, err
    assert "def vector_vjp(x, cotangent):" in out


def test_graph_prints_forward_and_backward_with_lines(model, capsys):
    code, out, err = run(capsys, "graph", f"{model}:loss", *ARGS, "--wrt", "w,b",
                         "--mode", "grad")
    assert code == 0, err
    forward, backward = out.split("# with the backward pass")
    assert "matmul x w  # model.py:7" in forward and "in ( " in forward
    assert "ew expr=" in backward and "float64[5, 3]" in backward


def test_math_pretty_and_latex(model, capsys):
    code, out, err = run(capsys, "math", f"{model}:loss", *ARGS, "--wrt", "b")
    assert code == 0 and "b_bar =" in out and "sigmoid" in out
    code, out, err = run(capsys, "math", f"{model}:loss", *ARGS, "--wrt", "b", "--latex")
    assert code == 0 and r"\operatorname{sigmoid}" in out and r"\bar{b} = " in out
    assert ".sum(" not in out and "texttt" not in out and "@" not in out  # pure math


def test_codegen_writes_module_and_test(model, tmp_path, capsys):
    out_dir = tmp_path / "generated"
    code, out, err = run(capsys, "codegen", f"{model}:loss", *ARGS, "--wrt", "w,b",
                         "--mode", "value_and_grad", "--backend", "numpy", "-o", str(out_dir),
                         "--test")
    assert code == 0, err
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "loss_value_and_grad.py", "test_loss_value_and_grad.py"]
    code, shown, _ = run(capsys, "show", f"{model}:loss", *ARGS, "--wrt", "w,b")
    assert (out_dir / "loss_value_and_grad.py").read_text() == shown


@pytest.mark.parametrize("argv, message", [
    (["show", "missing.py:loss", *ARGS], "no such file: missing.py"),
    (["show", "{model}:nothing", *ARGS], "has no function 'nothing' (it has: decorated, loss"),
    (["show", "{model}", *ARGS], "expected FILE.py:FUNCTION"),
    (["show", "{model}:loss", "--arg", "x=f64[5", "--arg", "y=f64[3]"], "bad signature 'f64[5'"),
    (["show", "{model}:loss", "--arg", "x=q8[5]"], "unknown dtype 'q8'"),
    (["show", "{model}:loss", "--arg", "x=f64[5]"], "missing --arg for y, w, b"),
    (["show", "{model}:loss", *ARGS, "--arg", "z=f64[1]"], "has no parameter 'z'"),
    (["show", "{model}:loss", *ARGS, "--wrt", "q"], "wrt='q' names no parameter"),
    (["show", "{model}:spectrum", "--arg", "x=f64[4]"], "is not supported by symgrad (at model.py:17)"),
    (["show", "{model}:vector", "--arg", "x=f64[4]", "--mode", "grad"], "returns one scalar"),
    (["show", "{model}:loss", *ARGS, "--backend", "tpu"], "backend='tpu' is not available"),
    (["codegen", "{model}:loss", *ARGS, "--mode", "jit", "--test", "-o", "{tmp}"],
     "needs a derivative"),
])
def test_errors_are_one_line(model, tmp_path, capsys, argv, message):
    argv = [a.format(model=model, tmp=tmp_path / "o") for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert message in lines[0] and "Traceback" not in err
    assert lines[0].startswith("symgrad")


@pytest.mark.parametrize("argv, message", [
    (["cache", "prune", "--max-size", "12 parsecs"], "bad size"),
    (["cache", "prune", "--older-than", "soon"], "bad age"),
    (["cache", "prune"], "give --max-size and/or --older-than"),
    (["cache"], "an action is required"),
    ([], "a command is required"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["show", "{model}:loss", "--no-such-option"], "unrecognized arguments"),
    (["show"], "the following arguments are required: FILE.py:FUNCTION"),
])
def test_usage_errors_print_usage_and_exit_2(model, capsys, argv, message):
    """As argparse and the field: the usage, then one error line, on stderr; exit status 2."""
    argv = [a.format(model=model) for a in argv]
    with pytest.raises(SystemExit) as done:
        main(argv)
    out, err = capsys.readouterr()
    assert done.value.code == 2 and out == ""
    lines = err.strip().splitlines()
    assert lines[0].startswith("usage: symgrad") and "Traceback" not in err
    assert lines[-1].startswith("symgrad") and message in lines[-1]


def test_errors_from_a_real_process_and_debug_traceback(model):
    code, out, err = symgrad("show", f"{model}:spectrum", "--arg", "x=f64[4]")
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    code, out, err = symgrad("show", f"{model}:spectrum", "--arg", "x=f64[4]", "--debug")
    assert code == 1 and "Traceback" in err and "UnsupportedFunctionError" in err


def test_import_error_in_the_users_file(tmp_path, capsys):
    broken = tmp_path / "broken.py"
    broken.write_text("import numpy as np\n1 / 0\n")
    code, out, err = run(capsys, "show", f"{broken}:f", "--arg", "x=f64[1]")
    assert code == 1 and "importing" in err and "ZeroDivisionError" in err
    assert len(err.strip().splitlines()) == 1


def test_cache_info_why_prune_clear(model, tmp_path, capsys):
    cache = tmp_path / "cache"
    code, out, err = run(capsys, "cache", "info")
    assert code == 0 and f"location: {cache}" in out
    code, out, err = run(capsys, "cache", "why", f"{model}:loss", *ARGS, "--wrt", "w,b")
    assert code == 0 and out.startswith("miss: no entry")
    run(capsys, "show", f"{model}:loss", *ARGS, "--wrt", "w,b")
    code, out, err = run(capsys, "cache", "why", f"{model}:loss", *ARGS, "--wrt", "w,b")
    assert out.startswith("hit: entry")
    bigger = [a.replace("[5", "[6") for a in ARGS]
    code, out, err = run(capsys, "cache", "why", f"{model}:loss", *bigger, "--wrt", "w,b")
    assert out.splitlines()[1:] == ["  argument x: its shape or dtype: was f64[5], now f64[6]",
                                    "  argument w: its shape or dtype: was f64[5,3], now f64[6,3]"]
    code, out, err = run(capsys, "cache", "why", f"{model}:scaled", "--arg", "x=f64[3]",
                         "--arg", "power=2", "--arg", "mode='sum'", "--mode", "grad")
    run(capsys, "show", f"{model}:scaled", "--arg", "x=f64[3]", "--arg", "power=2",
        "--arg", "mode='sum'", "--mode", "grad")
    code, out, err = run(capsys, "cache", "why", f"{model}:scaled", "--arg", "x=f64[3]",
                         "--arg", "power=3", "--arg", "mode='sum'", "--mode", "grad")
    assert out.splitlines()[1:] == ["  argument power: its static value: was 2, now 3"]
    run(capsys, "cache", "clear")
    run(capsys, "show", f"{model}:loss", *ARGS, "--wrt", "w,b")
    code, out, err = run(capsys, "cache", "info", "--verbose")
    assert "entries:  1" in out and "loss_value_and_grad(x=f64[5]" in out
    code, out, err = run(capsys, "cache", "prune", "--older-than", "1d", "--max-size", "1M")
    assert code == 0 and out.startswith("removed 0 entries; 1 left")
    code, out, err = run(capsys, "cache", "prune", "--max-size", "0")
    assert out.startswith("removed 1 entry; 0 left")
    run(capsys, "show", f"{model}:loss", *ARGS, "--wrt", "w,b")
    code, out, err = run(capsys, "cache", "clear", "--dir", str(cache))
    assert code == 0 and out.startswith("removed 1 entry")
    assert list(cache.glob("*.py")) == []


def test_regenerate_and_check(model, tmp_path, capsys):
    manifest = tmp_path / "codegen.txt"
    manifest.write_text("# comment\n\nmodel.py:loss --arg x=f64[5] --arg y=f64[3] "
                        "--arg w=f64[5,3] --arg b=f64[3] --wrt w,b --test\n"
                        "model.py:vector --arg x=f64[2] --mode jit\n")
    out_dir = tmp_path / "generated"
    code, out, err = run(capsys, "regenerate", str(out_dir), "--manifest", str(manifest))
    assert code == 0, err
    assert sorted(p.name for p in out_dir.glob("*.py")) == [
        "loss_value_and_grad.py", "test_loss_value_and_grad.py", "vector.py"]
    code, out, err = run(capsys, "regenerate", "--check", str(out_dir), "--manifest",
                         str(manifest))
    assert code == 0 and "matches" in out
    module = out_dir / "vector.py"
    module.write_bytes(module.read_bytes() + b"\n")  # one byte of difference
    (out_dir / "stale.py").write_text('"""Generated by symgrad 0.0"""\n')
    code, out, err = run(capsys, "regenerate", "--check", str(out_dir), "--manifest",
                         str(manifest))
    assert code == 1 and f"differs: {module}" in out and "stale.py" in out
    run(capsys, "regenerate", str(out_dir), "--manifest", str(manifest))
    assert not (out_dir / "stale.py").exists()


def test_progress_line_for_slow_compilations(model, tmp_path):
    code, out, err = symgrad("show", f"{model}:loss", *ARGS, "--wrt", "w,b",
                             env={"SYMGRAD_PROGRESS_AFTER": "0"})
    assert code == 0
    stages = [line for line in err.splitlines() if line.startswith("symgrad: compiling")]
    assert [line.split(": ")[-1].split(" (")[0] for line in stages] == [
        "trace", "load", "differentiate", "simplify", "render", "write"]
    assert "symgrad: compiled loss_value_and_grad in" in err
    code, out, err = symgrad("show", f"{model}:loss", *ARGS, "--wrt", "w,b")
    assert err == ""  # a warm, quick compilation prints nothing


def test_progress_threshold_is_read_from_the_setting(monkeypatch):
    """SYMGRAD_PROGRESS_AFTER starts the timer (it once started with None and never showed)."""
    import io

    monkeypatch.setenv("SYMGRAD_PROGRESS_AFTER", "0.01")
    stream = io.StringIO()
    progress = Progress("f_grad(x=f64[3])", stream=stream, active=True)
    progress.stage("differentiate")
    assert progress._timer is not None and progress._timer.interval == 0.01
    progress._timer.join(10)  # the timer fires: the slow compilation shows its stage
    progress.stage("simplify")
    progress.done()
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("symgrad: compiling f_grad(x=f64[3]): differentiate (")
    assert lines[1].startswith("symgrad: compiling f_grad(x=f64[3]): simplify (")
    assert lines[2].startswith("symgrad: compiled f_grad in ") and "differentiate " in lines[2]


def test_progress_in_a_terminal_is_one_line_rewritten(monkeypatch):
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    progress = Progress("f_grad(x=f64[3])", show_after=0, stream=stream, active=True)
    progress.stage("trace")
    progress.stage("render")
    progress.done()
    text = stream.getvalue()
    assert text.count("\n") == 1 and text.endswith(")\n")
    assert text.count("\r\x1b[K") == 3 and "render (" in text


def test_progress_is_on_in_a_notebook(monkeypatch):
    from symgrad.tools import progress

    class OutStream:  # what ipykernel puts in sys.stderr
        def isatty(self):
            return False

    OutStream.__module__ = "ipykernel.iostream"
    monkeypatch.delenv("SYMGRAD_PROGRESS", raising=False)
    monkeypatch.setattr(sys, "stderr", OutStream())
    assert progress.enabled()


def test_progress_stays_quiet_for_quick_work():
    import io

    stream = io.StringIO()
    progress = Progress("f_grad(x=f64[3])", stream=stream, active=True)
    progress.stage("trace")
    progress.done()
    assert stream.getvalue() == ""


def test_size_and_age_parsing():
    assert parse_size("500k") == 500 * 1024 and parse_size("2M") == 2 * 1024 ** 2
    assert parse_size("1.5G") == int(1.5 * 1024 ** 3) and parse_size("77") == 77
    assert parse_age("30d") == 30 * 86400 and parse_age("12h") == 43200
    assert parse_age("2w") == 14 * 86400 and parse_age("45s") == 45
