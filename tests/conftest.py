"""Every test session compiles into its own cache directory (never the user's)."""
import os
import sys
import tempfile
from pathlib import Path

import pytest

_CACHE = tempfile.mkdtemp(prefix="symgrad-test-cache-")
os.environ["SYMGRAD_CACHE_DIR"] = _CACHE
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture
def cache_dir() -> str:
    return _CACHE
