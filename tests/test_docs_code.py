"""Every Python block of the README and of docs/ runs as written (docs/walkthrough.md has its
own test). Blocks of one file run in order in one namespace. A block whose first line is
`# requires: cuda` or `# requires: data` is skipped (the reader may lack a GPU or the data);
a block whose first line is `# NAME.py` runs as that file, line 1 being that comment (as a
reader who saved it would see its source lines); a block introduced by a line starting with
"prints" is output: its lines must appear, in order, in what the block before it printed."""
from __future__ import annotations

import contextlib
import io
import linecache
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCUMENTS = [REPO / "README.md"] + sorted(p for p in (REPO / "docs").glob("*.md")
                                          if p.name != "walkthrough.md")
SKIPPED = ("# requires: cuda", "# requires: data")
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def blocks(text: str):
    """(first line number, code, introduced as output) for each Python block."""
    for match in BLOCK.finditer(text):
        before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        yield text.count("\n", 0, match.start(1)), match.group(1), \
            before.lower().startswith("prints")


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_every_python_block_runs_as_written(document, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = document.read_text()
    namespace: dict = {"__name__": "__main__"}
    printed = ""
    ran = 0
    for first_line, code, is_output in blocks(text):
        if is_output:
            position = 0
            for line in filter(str.strip, code.splitlines()):
                found = printed.find(line, position)
                assert found >= 0, f"{document.name}:{first_line}: not printed: {line!r}"
                position = found + len(line)
            continue
        if code.startswith(SKIPPED):
            continue
        name = re.match(r"# (\w+\.py)\n", code)
        if name:
            filename = str(tmp_path / name[1])
            Path(filename).write_text(code)
            linecache.checkcache(filename)
        else:
            filename, code = str(document), "\n" * first_line + code
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            exec(compile(code, filename, "exec"), namespace)
        printed = output.getvalue()
        ran += 1
    assert ran > 0 or document.name not in ("README.md", "coming-from-pytorch-jax.md", "api.md")


def test_the_skip_marks_are_honoured():
    text = "```python\n# requires: cuda\nraise SystemExit('needs a GPU')\n```\n"
    assert [code.startswith(SKIPPED) for _, code, _ in blocks(text)] == [True]
