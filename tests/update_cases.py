"""Oracle cases of in-place updates of arrays made inside the function (functional updates),
part of the structural case table (structural_cases.py appends them)."""
from __future__ import annotations

import numpy as np
import torch

from structural_cases import S, TS, case


def _filled(x):
    out = np.zeros((2, 3))
    out[0] = np.sum(x, axis=0)
    out[1, ::2] = x[0, :2] * x[1, 1:]
    return S(out * np.arange(6.0).reshape(2, 3))


def _torch_filled(x):
    out = torch.zeros((2, 3), dtype=torch.float64)
    out[0] = torch.sum(x, 0)
    out[1, ::2] = x[0, :2] * x[1, 1:]
    return TS(out * torch.arange(6.0, dtype=torch.float64).reshape(2, 3))


def _updated(x):
    y = x.copy()
    y[:, 1] += 2 * y[:, 0]
    y[np.array([[True, False, False], [False, False, True]])] = 0.5
    y *= x
    return S(y)


def _torch_updated(x):
    y = x.clone()
    y[:, 1] = y[:, 1] + 2 * y[:, 0]
    y = torch.where(torch.tensor([[True, False, False], [False, False, True]]), 0.5, y)
    return TS(y * x)


case("setitem_into_zeros", _filled, _torch_filled, (2, 3))
case("setitem_copy_augmented_mask", _updated, _torch_updated, (2, 3))
