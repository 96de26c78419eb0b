"""Notebook display: `_repr_html_` / `_repr_latex_` of `.lower(...)` results and compiled
functions, the LaTeX pure math; and the HTML typeset and drawn in a real headless browser
(Debian's Chromium, KaTeX from Debian's libjs-katex: no network address)."""
from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import symgrad as sg
from symgrad.tools import picture
from symgrad.symbolic import code_latex, name_latex

REPO = Path(__file__).resolve().parent.parent
KATEX = Path(os.environ.get("SYMGRAD_KATEX_DIR", "/usr/share/javascript/katex"))  # libjs-katex
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOTS = Path(os.environ.get("SYMGRAD_SCREENSHOTS", REPO / "build" / "screenshots"))


def loss(x, y, w, b):
    z = x @ w + b
    return np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))


def mlp(x, labels, w1, b1, w2, b2):
    h = np.tanh(x @ w1 + b1)
    logits = h @ w2 + b2
    m = logits.max(axis=1, keepdims=True)
    lse = m + np.log(np.exp(logits - m).sum(axis=1, keepdims=True))
    return np.mean(np.sum(labels * (lse - logits), axis=1)) + np.sum(x.T[0])


SPECS = ("f64[5]", "f64[3]", "f64[5,3]", "f64[3]")
MLP_SPECS = ("f32[8,6]", "f32[8,4]", "f32[6,5]", "f32[5]", "f32[5,4]", "f32[4]")


@pytest.fixture(scope="module")
def lowered():
    return sg.value_and_grad(loss, wrt=("w", "b")).lower(*SPECS)


# -- LaTeX: pure math --------------------------------------------------------------------------
@pytest.mark.parametrize("code, latex", [
    ("h @ w2", r"h \, w_{2}"),
    ("t1.sum()", r"\sum t_{1}"),
    ("x.sum(axis=1)", r"\sum_{\text{axis } 1} x"),
    ("np.max(logits, axis=1, keepdims=True)", r"\max_{\text{axis } 1} \mathit{logits}"),
    ("x[:, None]", r"x_{:,\,\mathrm{new}}"),
    ("t5[0]", r"{t_{5}}_{0}"),
    ("x.T @ g", r"x^{\mathsf{T}} \, g"),
    ("np.einsum('ij,ij->i', a, b)", r"\sum_{j} a_{ij} b_{ij}"),
    ("np.reshape(x, (5, 1))", r"\operatorname{reshape}\left(x, (5, 1)\right)"),
    ("np.concatenate((a, b), axis=0)",
     r"\operatorname{concatenate}_{\text{axis}=0}\left((a, b)\right)"),
    ("np.sqrt(s) / 3", r"\frac{\sqrt{s}}{3}"),
])
def test_structural_code_as_math(code, latex):
    assert code_latex(code) == latex


def test_names_as_math():
    assert [name_latex(n) for n in ("b_bar", "w2_bar", "t0", "value", "logits_bar", "x")] == [
        r"\bar{b}", r"\bar{w}_{2}", "t_{0}", r"\mathit{value}", r"\bar{\mathit{logits}}", "x"]


def _pure_math(latex: str) -> None:
    for python in (".sum(", "@", "np.", "texttt", "_bar", "[", "keepdims", ".T"):
        assert python not in latex, (python, latex)
    assert latex.count("{") == latex.count("}") and latex.count(r"\left") == latex.count(r"\right")


def test_math_latex_is_pure_math(lowered):
    latex = lowered.latex()
    _pure_math(latex)
    assert latex.splitlines() == [
        r"z = x \, w + b",
        r"t_{0} = - y z + \operatorname{softplus}{\left(z \right)}",
        r"\mathit{value} = \frac{\sum t_{0}}{3}",
        r"\bar{b} = - \frac{y}{3} + \frac{\operatorname{sigmoid}{\left(z \right)}}{3}",
        r"\bar{w} = x_{:,\,\mathrm{new}} \bar{b}"]
    mlp_latex = sg.value_and_grad(mlp, wrt=("w1", "b1", "w2", "b2")).lower(*MLP_SPECS).latex()
    _pure_math(mlp_latex)
    assert r"\bar{w}_{2} = h^{\mathsf{T}} \, \bar{\mathit{logits}}" in mlp_latex
    assert r"\bar{b}_{2} = \sum_{\text{axis } 0} \bar{\mathit{logits}}" in mlp_latex


# -- the HTML ----------------------------------------------------------------------------------
def test_lowered_html_has_source_math_and_picture(lowered):
    page = lowered._repr_html_()
    assert page.count("<details") == 3 and "loss_value_and_grad(x=f64[5]" in page
    assert r"$$\begin{aligned}" in page and r"\bar{b} &= " in page
    # highlighted source: the statements are all there once the markup is stripped
    text = html.unescape(re.sub(r"<[^>]+>", "", page.split("symgrad-math")[0]))
    assert "b_bar = (_sigmoid(z) - y)/3" in text and "return value, (w_bar, b_bar)" in text
    if picture.graphviz_available():
        svg = page.split('<div class="symgrad-picture">')[1]
        assert svg.startswith("<svg") and svg.count('class="node"') == len(
            set(lowered.derivative_graph.nodes()) | set(lowered.derivative_graph.inputs))
    assert lowered._repr_latex_() == "$$" + page.split("$$")[1] + "$$"


def test_html_without_graphviz_says_how_to_install(lowered, monkeypatch):
    monkeypatch.setattr(picture.shutil, "which", lambda name: None)
    page = lowered._repr_html_()
    assert "The picture needs Graphviz" in page and "apt-get install graphviz" in page
    assert "<svg" not in page and "{ lambda x:float64[5]" in page


def test_html_of_a_large_graph_skips_the_picture(lowered, monkeypatch):
    from symgrad.tools import display

    monkeypatch.setattr(display, "MAX_PICTURE_NODES", 10)
    page = lowered._repr_html_()
    size = len(set(lowered.derivative_graph.nodes()) | set(lowered.derivative_graph.inputs))
    assert f"{size} nodes: more than a picture in a notebook can show (10)" in page
    assert "<svg" not in page and r"\bar{b} &= " in page


def test_compiled_function_html_lists_its_signatures():
    f = sg.grad(loss, wrt="b")
    assert "not compiled yet" in f._repr_html_()
    x, y, w, b = np.ones(5), np.zeros(3), np.full((5, 3), 0.1), np.zeros(3)
    gradient = f(x, y, w, b)
    z = x @ w + b
    np.testing.assert_allclose(gradient, (1 / (1 + np.exp(-z)) - y) / 3, rtol=1e-13)
    page = f._repr_html_()
    assert "1 signature compiled" in page and "loss_grad" in html.unescape(
        re.sub(r"<[^>]+>", "", page))


# -- in a real browser -------------------------------------------------------------------------
PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>symgrad display</title>
<link rel="stylesheet" href="{katex}/katex.min.css">
<script src="{katex}/katex.min.js"></script>
<script src="{katex}/contrib/auto-render.js"></script>
</head><body>
<div id="html-output">{html_output}</div>
<div id="latex-output">{latex_output}</div>
<script>
renderMathInElement(document.body, {{delimiters: [{{left: "$$", right: "$$", display: true}}],
                                    throwOnError: false}});
document.body.setAttribute("data-typeset", "done");
</script>
</body></html>
"""


def _chromium(page: Path, *options: str) -> str:
    done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                           "--allow-file-access-from-files", "--virtual-time-budget=5000",
                           *options, page.as_uri()], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.skipif(CHROMIUM is None or not (KATEX / "katex.min.js").exists(),
                    reason="needs Debian's chromium and libjs-katex (apt-get install chromium "
                           "libjs-katex; .ci/run installs them)")
def test_display_typesets_and_draws_in_a_headless_browser(lowered, tmp_path):
    page = tmp_path / "display.html"
    page.write_text(PAGE.format(katex=KATEX.as_uri(), html_output=lowered._repr_html_(),
                                latex_output=lowered._repr_latex_()))
    dom = _chromium(page, "--dump-dom")
    assert 'data-typeset="done"' in dom
    # The math: KaTeX replaced both $$...$$ blocks by typeset display math, with no error.
    assert dom.count('class="katex-display"') == 2 and "katex-error" not in dom
    assert "$$" not in dom.split('id="html-output"')[1].split("<script>")[0]
    mathml = re.findall(r'<annotation encoding="application/x-tex">(.*?)</annotation>', dom, re.S)
    assert len(mathml) == 2 and all(r"\bar{b} &amp;= " in m for m in mathml)
    typeset = re.sub(r"<[^>]+>", "", dom.split('class="katex-html"')[1])
    assert "sigmoid" in typeset and "softplus" in typeset
    # The picture: an inline SVG with one group per node and per edge of the graph.
    if picture.graphviz_available():
        graph = lowered.derivative_graph
        edges = sum(len(node.inputs) for node in graph.nodes())
        assert dom.count('class="node"') == len(set(graph.nodes()) | set(graph.inputs))
        assert dom.count('class="edge"') == edges
    # Kept for a person to look at.
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / "notebook_display.png"
    _chromium(page, f"--screenshot={shot}", "--window-size=1200,2600")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
