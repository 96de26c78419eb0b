"""docs/walkthrough.md runs: its code blocks, in order, in one namespace, with their real line
numbers (so the traced source lines are the document's own)."""
import re
from pathlib import Path

WALKTHROUGH = Path(__file__).resolve().parent.parent / "docs" / "walkthrough.md"


def test_walkthrough_code_runs():
    text = WALKTHROUGH.read_text()
    blocks = list(re.finditer(r"```python\n(.*?)```", text, flags=re.S))
    assert len(blocks) >= 5
    namespace: dict = {}
    for block in blocks:
        first_line = text.count("\n", 0, block.start(1))
        code = "\n" * first_line + block.group(1)
        exec(compile(code, str(WALKTHROUGH), "exec"), namespace)
