"""The one gradient checker: central differences in float64, and PyTorch autograd."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np


def central_difference(f: Callable, args: Sequence[np.ndarray], index: int,
                       eps: float = 1e-6) -> np.ndarray:
    """d f / d args[index], element by element, in float64."""
    args = [np.array(a, dtype=np.float64) if i == index else a for i, a in enumerate(args)]
    x = args[index]
    gradient = np.zeros(x.shape)
    flat, out = x.reshape(-1), gradient.reshape(-1)
    for k in range(flat.size):
        saved = flat[k]
        flat[k] = saved + eps
        up = float(f(*args))
        flat[k] = saved - eps
        down = float(f(*args))
        flat[k] = saved
        out[k] = (up - down) / (2 * eps)
    return gradient


def projected_difference(f: Callable, args: Sequence[np.ndarray], index: int,
                         direction: np.ndarray, eps: float = 1e-6) -> float:
    """<direction, grad f> by one central difference along `direction`."""
    plus = [a for a in args]
    minus = [a for a in args]
    plus[index] = np.asarray(args[index], np.float64) + eps * direction
    minus[index] = np.asarray(args[index], np.float64) - eps * direction
    return (float(f(*plus)) - float(f(*minus))) / (2 * eps)


def torch_gradients(torch_fn: Callable, args: Sequence[np.ndarray],
                    wrt: Sequence[int]) -> tuple[float, list[np.ndarray]]:
    """Value and gradients of a torch function of float64 tensors (ints stay ints)."""
    import torch

    tensors = []
    for i, a in enumerate(args):
        a = np.asarray(a)
        t = torch.tensor(a, dtype=torch.float64 if a.dtype.kind == "f" else None)
        if i in wrt:
            t.requires_grad_(True)
        tensors.append(t)
    out = torch_fn(*tensors)
    grads = torch.autograd.grad(out, [tensors[i] for i in wrt], allow_unused=True)
    return float(out.detach()), [
        np.zeros(np.shape(args[i])) if g is None else g.detach().resolve_neg().numpy()
        for g, i in zip(grads, wrt)]


def convention_rows(section: str) -> list[str]:
    """The row ids of the table under `## {section}` in docs/conventions.md."""
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parent.parent / "docs" / "conventions.md").read_text()
    table = doc.split(f"## {section}\n")[1].split("\n## ")[0]
    return re.findall(r"^\| `([a-z0-9-]+)` \|", table, flags=re.M)
