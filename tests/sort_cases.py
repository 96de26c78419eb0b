"""Oracle cases of sorting, order statistics, running extrema and windows, part of the
structural case table (structural_cases.py appends them). Random normal inputs have no ties;
ties are tested in tests/test_sort.py."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from structural_cases import S, TS, case

AR = np.arange(1.0, 6.0)
TAR = torch.tensor(AR)


case("sort_last_axis", lambda x: S(np.sort(x) * AR), lambda x: TS(torch.sort(x)[0] * TAR),
     (3, 5))
case("sort_axis0_and_flat", lambda x: S(np.sort(x, axis=0) ** 2) + S(np.sort(x, axis=None)[:4]),
     lambda x: TS(torch.sort(x, 0)[0] ** 2) + TS(torch.sort(x.reshape(-1))[0][:4]), (3, 5))
case("argsort_take_along_axis",
     lambda x: S(np.take_along_axis(x, np.argsort(x, axis=1), axis=1) * AR),
     lambda x: TS(torch.take_along_dim(x, torch.argsort(x, 1), 1) * TAR), (2, 5))
case("argmax_argmin_gather", lambda x: np.sin(x.reshape(-1)[np.argmax(x)])
     + S(x[np.arange(2), np.argmin(x, 1)]),
     lambda x: torch.sin(x.reshape(-1)[torch.argmax(x)])
     + TS(x[torch.arange(2), torch.argmin(x, 1)]), (2, 5))
case("median_odd_even", lambda x: S(np.median(x, axis=1)) + np.sin(np.median(x[:, :4])),
     lambda x: TS(torch.quantile(x, 0.5, dim=1)) + torch.sin(torch.quantile(x[:, :4], 0.5)),
     (3, 5))
case("quantile_linear", lambda x: S(np.quantile(x, [0.1, 0.5, 0.93], axis=0)),
     lambda x: TS(torch.quantile(x, torch.tensor([0.1, 0.5, 0.93], dtype=torch.float64), 0)),
     (7, 2))
case("percentile_keepdims", lambda x: S(x * np.percentile(x, 30, axis=1, keepdims=True)),
     lambda x: TS(x * torch.quantile(x, 0.3, dim=1, keepdim=True)), (3, 6))
case("argpartition_smallest_three",  # order-free: the positions past kth are numpy's choice
     lambda x: S(np.take_along_axis(x, np.argpartition(x, 2, axis=1)[:, :3], axis=1) ** 2)
     + S(x.reshape(-1)[np.argpartition(x.reshape(-1), -1)[-1:]]),
     lambda x: TS(torch.topk(x, 3, 1, largest=False)[0] ** 2) + TS(torch.max(x).reshape(1)),
     (3, 5))
case("partition", lambda x: S(np.partition(x, 2)[..., :2]) + S(np.partition(x, 3, axis=0)[3]),
     lambda x: TS(torch.sort(x)[0][..., :2]) + TS(torch.sort(x, 0)[0][3]), (5, 5))
case("maximum_accumulate", lambda x: S(np.maximum.accumulate(x, axis=1) * AR)
     + S(np.minimum.accumulate(x) * 2),
     lambda x: TS(torch.cummax(x, 1)[0] * TAR) + TS(torch.cummin(x, 0)[0] * 2), (4, 5))
case("add_multiply_accumulate", lambda x: S(np.add.accumulate(x) + np.multiply.accumulate(x, 1)),
     lambda x: TS(torch.cumsum(x, 0) + torch.cumprod(x, 1)), (3, 4))
case("diff_twice", lambda x: S(np.diff(x) * 3) + S(np.diff(x, n=2, axis=0)),
     lambda x: TS(torch.diff(x) * 3) + TS(torch.diff(x, n=2, dim=0)), (4, 5))
case("convolve_modes", lambda a, v: S(np.convolve(a, v)) + S(np.convolve(a, v, "same") ** 2)
     + S(np.convolve(v, a, "valid") * 3),
     lambda a, v: TS(F.conv1d(a.view(1, 1, -1), v.flip(0).view(1, 1, -1), padding=2).view(-1))
     + TS(F.conv1d(a.view(1, 1, -1), v.flip(0).view(1, 1, -1), padding=1).view(-1) ** 2)
     + TS(F.conv1d(a.view(1, 1, -1), v.flip(0).view(1, 1, -1)).view(-1) * 3), (6,), (3,))
case("correlate_modes", lambda a, v: S(np.correlate(a, v)) + S(np.correlate(a, v, "full") ** 2),
     lambda a, v: TS(F.conv1d(a.view(1, 1, -1), v.view(1, 1, -1)).view(-1))
     + TS(F.conv1d(a.view(1, 1, -1), v.view(1, 1, -1), padding=3).view(-1) ** 2), (7,), (4,))
case("sliding_window_view", lambda x: S(np.lib.stride_tricks.sliding_window_view(x, 3, axis=1)
                                        .max(axis=-1))
     + S(np.lib.stride_tricks.sliding_window_view(x, (2, 2)).sum(axis=(-1, -2)) ** 2),
     lambda x: TS(x.unfold(1, 3, 1).amax(-1)) + TS(x.unfold(0, 2, 1).unfold(1, 2, 1)
                                                  .sum((-1, -2)) ** 2), (3, 5))
case("interp", lambda x, fp: S(np.interp(x * 2, np.arange(5.0), fp)),
     lambda x, fp: TS(_torch_interp(x * 2, torch.arange(5.0, dtype=torch.float64), fp)),
     (6,), (5,))


def _torch_interp(x, xp, fp):
    index = torch.clamp(torch.searchsorted(xp, x.detach(), right=True) - 1, 0, len(xp) - 2)
    x0, x1, f0, f1 = xp[index], xp[index + 1], fp[index], fp[index + 1]
    inside = f0 + (f1 - f0) / (x1 - x0) * (x - x0)
    return torch.where(x < xp[0], fp[0], torch.where(x > xp[-1], fp[-1], inside))
