"""numpy text of the sorting ops, running extrema and traced assignments. Part of printer.py's
`STRUCTURAL`."""
from __future__ import annotations

from typing import Callable

from ...ir.graph import Node


def _axis(node: Node) -> str:
    return f"axis={node.param('axis')}"


def _kth(node: Node) -> str:
    kth = node.param("kth")
    return str(kth[0]) if len(kth) == 1 else str(list(kth))


def _argsort(node: Node, a: str) -> str:
    kind = node.param("kind")
    return f"np.argsort({a}, {_axis(node)}{f', kind={kind!r}' if kind else ''})"


def _searchsorted(node: Node, a: str, v: str) -> str:
    side = node.param("side")
    return f"np.searchsorted({a}, {v}{', side=' + repr(side) if side != 'left' else ''})"


SORT_STRUCTURAL: dict[str, Callable[..., str]] = {
    "sort": lambda node, a: f"np.sort({a}, {_axis(node)})",
    "argsort": _argsort,
    "partition": lambda node, a: f"np.partition({a}, {_kth(node)}, {_axis(node)})",
    "argpartition": lambda node, a: f"np.argpartition({a}, {_kth(node)}, {_axis(node)})",
    "searchsorted": _searchsorted,
    "cummax": lambda node, a: f"np.maximum.accumulate({a}, {_axis(node)})",
    "cummin": lambda node, a: f"np.minimum.accumulate({a}, {_axis(node)})",
    "overwrite": lambda node, mask, values, x: f"np.where({mask}, {values}, {x})",
}
