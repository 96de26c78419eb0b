"""Every test session compiles into its own cache directory (never the user's) and signs with
its own key, kept outside that directory (never the user's key)."""
import os
import sys
import tempfile
from pathlib import Path

import pytest

_CACHE = tempfile.mkdtemp(prefix="symgrad-test-cache-")
_KEY_DIR = tempfile.mkdtemp(prefix="symgrad-test-key-")
os.environ["SYMGRAD_CACHE_DIR"] = _CACHE
os.environ["SYMGRAD_KEY_FILE"] = os.path.join(_KEY_DIR, "key")
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture
def cache_dir() -> str:
    return _CACHE
