"""The numpy backend: a signature's graph lowered to named numpy statements (`lower.py`),
rendered through `templates/` (`render.py`), stored in the cache and checked by the exact
grammar of what it writes (`safety.py`) before it loads."""
from __future__ import annotations

from types import ModuleType
from typing import Any, Callable, Sequence

from ...cache.store import DiskCache, import_source
from ...errors import GeneratedCodeError
from ...autodiff.transforms import Transform
from ...ir.graph import Graph
from ...specs import ArgSpec
from ...tools.progress import Progress
from ..common import (Compiled, SpeedRules, entry_meta, source_header, transformed_outputs,
                      without_cyclic_gc)
from ...schedule.sanitise import is_safe_identifier
from ..speed_rules import FINAL_RULES, RULES
from .safety import check_source

NAME = "numpy"
SPEED_RULES = SpeedRules(before=RULES, after=FINAL_RULES)


def compile_signature(fn: Callable, graph: Graph, structure: Any, specs: Sequence[ArgSpec],
                      transform: Any, name: str, cache: DiskCache, parts: Any,
                      progress: Progress) -> Compiled:
    """The signature's module from the cache, or generated, stored and loaded."""
    key = parts.key
    progress.stage("load")
    loaded = _load_cached(cache, key)
    if loaded is not None:
        module, source, meta = loaded
        return Compiled(getattr(module, meta["function"]), source, cache.source_path(key),
                        key, graph, module, from_cache=True, transform=transform)
    source, details = generate_source(fn, graph, structure, specs, transform, name, key,
                                      progress, parts.graph_digest)
    progress.stage("write")
    path = cache.store(key, source, entry_meta(fn, name, specs, NAME, transform, parts))
    module = import_source(source, path, f"symgrad_generated_{key[:20]}", check=check_source)
    return Compiled(getattr(module, name), source, path, key, graph, module,
                    from_cache=False, details=details, transform=transform)


def generate_source(fn: Callable, graph: Graph, structure: Any, specs: Sequence[ArgSpec],
                    transform: Transform, name: str, key: str, progress: Progress | None = None,
                    graph_digest: str | None = None) -> tuple[str, dict[str, Any]]:
    progress = progress or Progress(name, active=False)
    progress.stage("differentiate")
    from .lower import lower
    from .render import render_numpy

    with without_cyclic_gc():
        outputs, out_structure, params, hints, described, graph_rewrites = \
            transformed_outputs(graph, structure, specs, transform, SPEED_RULES)
        progress.stage("simplify")
        program = lower(outputs, out_structure, params, hints, name,
                        fast_math=transform.fast_math)
    program.rewrites = sorted(set(program.rewrites) | set(graph_rewrites))
    progress.stage("render")
    header = source_header(fn, name, specs, described, graph_digest or key, program.rewrites,
                           transform.fast_math)
    source = render_numpy(program, header)
    return source, {"program": program, "outputs": outputs}


def _load_cached(cache: DiskCache, key: str) -> tuple[ModuleType, str, dict] | None:
    """The cached module, checked before it runs; None on a miss or a refused entry."""
    entry = cache.load(key)
    if entry is None:
        return None
    source, meta = entry
    try:
        module = import_source(source, cache.source_path(key),
                               f"symgrad_generated_{key[:20]}", check=check_source)
        name = str(meta.get("function"))
        function = getattr(module, name, None) if is_safe_identifier(name) else None
    except GeneratedCodeError as error:
        cache.warn_damaged(key, f"it failed the safety check ({error})")
        return None
    except Exception as error:  # noqa: BLE001 -- anything while loading an entry is damage
        cache.warn_damaged(key, f"loading it failed ({type(error).__name__}: {error})")
        return None
    if not callable(function):
        cache.warn_damaged(key, "its metadata names no function of its source")
        return None
    return module, source, meta


