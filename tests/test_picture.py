"""Graph pictures: the dot text (inputs, wrt, source lines, the backward pass drawn apart), SVG
and PNG through Graphviz, the `symgrad graph --format` command, and the error without `dot`."""
from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import symgrad as sg
from symgrad.tools import picture
from symgrad.cli import main

needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz's `dot` is not installed (apt-get install "
                                      "graphviz; .ci/run installs it)")


def loss(x, y, w, b):
    z = x @ w + b
    return np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))


LINE = loss.__code__.co_firstlineno + 1  # z = x @ w + b
SPECS = ("f64[5]", "f64[3]", "f64[5,3]", "f64[3]")


@pytest.fixture(scope="module")
def lowered():
    return sg.value_and_grad(loss, wrt=("w", "b")).lower(*SPECS)


def _edges(dot_text: str) -> list[str]:
    return [line for line in dot_text.splitlines() if " -> " in line]


def test_forward_picture_marks_inputs_wrt_and_source_lines(lowered):
    dot_text = lowered.graph.to_dot()
    assert dot_text == lowered.graph.to_dot()  # the same bytes every time
    assert 'label="w (wrt)\\nf64[5,3]"' in dot_text and 'label="b (wrt)\\nf64[3]"' in dot_text
    assert 'label="x\\nf64[5]"' in dot_text and "x (wrt)" not in dot_text
    assert dot_text.count('fillcolor="#9ecae1"') == 2  # exactly the two differentiated inputs
    assert f'label="test_picture.py:{LINE}  z = x @ w + b";' in dot_text
    assert 'label="z =\\nadd\\nf64[3]"' in dot_text
    operands = sum(len(node.inputs) for node in lowered.graph.nodes())
    assert len(_edges(dot_text)) == operands and "dashed" not in "".join(_edges(dot_text))


def test_derivative_picture_draws_the_backward_pass_apart(lowered):
    graph = lowered.derivative_graph
    assert str(graph).startswith("{ lambda x:float64[5], y:float64[3]")
    assert str(graph) == graph.pretty() and "in ( " in str(graph)
    dot_text = graph.to_dot()
    edges = _edges(dot_text)
    backward = [node for node in graph.nodes() if node not in graph.forward]
    into_backward = sum(len(node.inputs) for node in backward)
    assert len(edges) == sum(len(node.inputs) for node in graph.nodes())
    assert sum("dashed" in edge for edge in edges) == into_backward > 5
    # The gradients are the outputs named after their parameters, drawn with a double border.
    for name in ("value", "w_bar", "b_bar"):
        line = next(line for line in dot_text.splitlines() if f'label="{name} =' in line)
        assert 'peripheries="2"' in line
    assert 'fillcolor="#fdd0a2"' in next(l for l in dot_text.splitlines() if "w_bar =" in l)
    assert f"from test_picture.py:{LINE}" in dot_text and "backward pass (gradient flow)" in dot_text


@needs_dot
def test_svg_and_png_are_rendered_by_graphviz(lowered):
    graph = lowered.derivative_graph
    svg = graph.to_svg()
    root = ET.fromstring(svg)
    groups = [g.get("class") for g in root.iter("{http://www.w3.org/2000/svg}g")]
    assert groups.count("edge") == len(_edges(graph.to_dot()))
    assert groups.count("node") == len(set(graph.nodes()) | set(graph.inputs))
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "w_bar =" in texts and "w (wrt)" in texts
    png = graph.to_png()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert width > 300 and height > 300
    assert graph._repr_svg_() == svg


def test_without_graphviz_a_clear_error(lowered, monkeypatch):
    monkeypatch.setattr(picture.shutil, "which", lambda name: None)
    with pytest.raises(picture.GraphvizMissingError, match=r"SVG picture needs the Graphviz "
                       r"program `dot`.*apt-get install graphviz"):
        lowered.graph.to_svg()
    assert lowered.graph._repr_svg_() is None  # a notebook falls back to the text
    assert lowered.graph.to_dot().startswith("digraph symgrad {")


MODEL = '''import numpy as np


def loss(x, w):
    z = x @ w
    return np.sum(np.tanh(z))
'''
ARGS = ["--arg", "x=f64[4]", "--arg", "w=f64[4,2]", "--wrt", "w"]


@needs_dot
@pytest.mark.parametrize("fmt, magic", [("svg", b"<?xml"), ("png", b"\x89PNG"),
                                        ("dot", b"digraph symgrad {")])
def test_cli_graph_formats_to_a_file(tmp_path, capsys, fmt, magic):
    model = tmp_path / "model.py"
    model.write_text(MODEL)
    out = tmp_path / f"loss.{fmt}"
    assert main(["graph", f"{model}:loss", *ARGS, "--format", fmt, "-o", str(out)]) == 0
    assert capsys.readouterr().err.strip() == str(out)
    data = out.read_bytes()
    assert data.startswith(magic) and len(data) > 1000
    if fmt != "png":
        assert b"w (wrt)" in data and b"w_bar =" in data


def test_cli_graph_text_is_the_default_and_dot_goes_to_stdout(tmp_path, capsys):
    model = tmp_path / "model.py"
    model.write_text(MODEL)
    assert main(["graph", f"{model}:loss", *ARGS]) == 0
    text = capsys.readouterr().out
    assert text.startswith("# forward: loss(x=f64[4], w=f64[4,2])\n{ lambda x:float64[4]")
    assert "# with the backward pass (value_and_grad, wrt=(w))" in text
    assert main(["graph", f"{model}:loss", *ARGS, "--format", "dot"]) == 0
    dot_text = capsys.readouterr().out
    assert 'label="loss(x=f64[4], w=f64[4,2])\\nforward and backward\\nblue: ' in dot_text


def test_cli_picture_without_graphviz_is_one_line(tmp_path, capsys, monkeypatch):
    model = tmp_path / "model.py"
    model.write_text(MODEL)
    monkeypatch.setattr(picture.shutil, "which", lambda name: None)
    assert main(["graph", f"{model}:loss", *ARGS, "--format", "png"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "PNG picture needs the Graphviz program `dot`" in err[0]
