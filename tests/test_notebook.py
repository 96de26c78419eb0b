"""examples/autograd_tutorial.ipynb runs top to bottom in a real Jupyter kernel (nbclient), its
cells' own asserts check the numbers, the `.lower(...)` cell displays as rich HTML (source,
math, picture), and compilation progress reaches the notebook's stderr."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="the test extra installs nbformat")
nbclient = pytest.importorskip("nbclient", reason="the test extra installs nbclient")
pytest.importorskip("ipykernel", reason="the test extra installs ipykernel")

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = REPO / "examples" / "autograd_tutorial.ipynb"


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    cache = tmp_path_factory.mktemp("notebook-cache")
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "SYMGRAD_CACHE_DIR",
                                             "SYMGRAD_PROGRESS_AFTER", "SYMGRAD_PROGRESS")}
    os.environ.update({  # the kernel is a subprocess: it inherits these
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), saved["PYTHONPATH"]])),
        "SYMGRAD_CACHE_DIR": str(cache), "SYMGRAD_PROGRESS_AFTER": "0"})
    os.environ.pop("SYMGRAD_PROGRESS", None)
    try:
        notebook = nbformat.read(NOTEBOOK, as_version=4)
        nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return notebook


def _outputs(notebook, kind: str) -> list:
    return [o for cell in notebook.cells if cell.cell_type == "code"
            for o in cell.get("outputs", []) if o.get("output_type") == kind]


def test_the_notebook_runs_and_its_checks_pass(executed):
    code_cells = [c for c in executed.cells if c.cell_type == "code"]
    assert len(code_cells) >= 7 and all(c.execution_count for c in code_cells)
    assert not _outputs(executed, "error")
    text = "".join(o["text"] for o in _outputs(executed, "stream") if o["name"] == "stdout")
    assert "agreement with central finite differences: max |error| = " in text
    assert "same gradient twice, nothing accumulated" in text


def test_the_lowered_cell_displays_source_math_and_picture(executed):
    rich = [o["data"] for o in _outputs(executed, "execute_result") if "text/html" in o["data"]]
    assert len(rich) == 1
    page = rich[0]["text/html"]
    assert "symgrad-source" in page and r"$$\begin{aligned}" in page and r"\bar{b} &= " in page
    assert "<svg" in page or "The picture needs Graphviz" in page
    assert rich[0]["text/latex"].startswith(r"$$\begin{aligned}")


def test_progress_reaches_the_notebook(executed):
    err = "".join(o["text"] for o in _outputs(executed, "stream") if o["name"] == "stderr")
    assert "symgrad: compiling loss_value_and_grad(" in err
    assert "symgrad: compiled loss_value_and_grad in " in err and "differentiate " in err
