"""Run a script in a fresh Python process with its own cache directory and hash seed."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_script(tmp_path: Path, script: str, seed: str) -> str:
    """Write `script` to tmp_path/model.py, run it with PYTHONHASHSEED=seed, return stdout."""
    path = tmp_path / "model.py"
    path.write_text(script)
    env = {**os.environ, "PYTHONHASHSEED": seed,
           "SYMGRAD_CACHE_DIR": str(tmp_path / f"cache{seed}")}
    result = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout
