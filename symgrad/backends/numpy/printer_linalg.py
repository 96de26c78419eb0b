"""numpy text of the numpy.linalg ops: the numpy call, and the result's position for a
decomposition with several results (`np.linalg.eigh(a)[1]`). Part of printer.py's
`STRUCTURAL` table."""
from __future__ import annotations

from typing import Callable

from ...ir.graph import Node


def _svd(node: Node, a: str, position: int) -> str:
    full = "" if node.param("full_matrices") else ", full_matrices=False"
    return f"np.linalg.svd({a}{full})[{position}]"


def _triangle(node: Node, a: str) -> str:
    k = node.param("k")
    return f"np.{node.op}({a}{f', {k}' if k else ''})"


LINALG_STRUCTURAL: dict[str, Callable[..., str]] = {
    "solve": lambda node, a, b: f"np.linalg.solve({a}, {b})",
    "inv": lambda node, a: f"np.linalg.inv({a})",
    "det": lambda node, a: f"np.linalg.det({a})",
    "adjugate": lambda node, a: f"_adjugate({a})",
    "slogdet_sign": lambda node, a: f"np.linalg.slogdet({a})[0]",
    "logabsdet": lambda node, a: f"np.linalg.slogdet({a})[1]",
    "cholesky": lambda node, a: f"np.linalg.cholesky({a})",
    "eigh_values": lambda node, a: f"np.linalg.eigvalsh({a})",
    "eigh_vectors": lambda node, a: f"np.linalg.eigh({a})[1]",
    "svd_u": lambda node, a: _svd(node, a, 0),
    "svd_s": lambda node, a: f"np.linalg.svd({a}, compute_uv=False)",
    "svd_vh": lambda node, a: _svd(node, a, 2),
    "qr_q": lambda node, a: f"np.linalg.qr({a})[0]",
    "qr_r": lambda node, a: f"np.linalg.qr({a})[1]",
    "lstsq": lambda node, a, b: f"np.linalg.lstsq({a}, {b}, rcond=None)[0]",
    "pair_reciprocals": lambda node, w: f"_pair_reciprocals({w})",
    "triu": _triangle,
    "tril": _triangle,
}

LINALG_HELPERS = {"adjugate": "adjugate", "pair_reciprocals": "pair_reciprocals"}
