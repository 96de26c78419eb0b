"""Oracle cases of numpy.fft and complex intermediates, part of the structural case table
(structural_cases.py appends them): each checked against central differences in float64,
PyTorch autograd (torch.fft), and float32 kept.

A complex value enters the loss through both parts, unevenly (`C`), so that every adjoint
entry differs; complex operands are made inside the function from two real arrays.
Odd and even lengths, n= padding and truncation, the three norms and other axes are covered.
"""
from __future__ import annotations

import numpy as np
import torch

from structural_cases import S, TS, case


def C(z):  # noqa: N802  (a real loss of a complex value, through both parts)
    return np.sum(np.sin(np.real(z))) + np.sum(np.cos(np.imag(z)) * 0.7)


def TC(z):  # noqa: N802
    return torch.sum(torch.sin(z.real)) + torch.sum(torch.cos(z.imag) * 0.7)


def tz(a, b):
    return torch.complex(a, b)


tfft = torch.fft

# -- complex transforms ---------------------------------------------------------------------
case("fft_even", lambda x: C(np.fft.fft(x)), lambda x: TC(tfft.fft(x)), (8,))
case("fft_odd_padded_ortho", lambda x: C(np.fft.fft(x, n=8, norm="ortho")),
     lambda x: TC(tfft.fft(x, n=8, norm="ortho")), (5,))
case("fft_truncated_forward_axis0", lambda x: C(np.fft.fft(x, 4, axis=0, norm="forward")),
     lambda x: TC(tfft.fft(x, 4, dim=0, norm="forward")), (6, 3))
case("fft_complex_operand", lambda a, b: C(np.fft.fft(a + 1j * b)),
     lambda a, b: TC(tfft.fft(tz(a, b))), (7,), (7,))
case("ifft_complex_padded_ortho", lambda a, b: C(np.fft.ifft(a - 1j * b, n=9, norm="ortho")),
     lambda a, b: TC(tfft.ifft(tz(a, -b), n=9, norm="ortho")), (2, 6), (2, 6))
case("ifft_real_backward_truncated", lambda x: C(np.fft.ifft(x, n=3, axis=-2)),
     lambda x: TC(tfft.ifft(x, n=3, dim=-2)), (5, 2))
case("fft2_and_ifft2", lambda a, b: C(np.fft.fft2(a)) + C(np.fft.ifft2(a + 1j * b, s=(3, 5))),
     lambda a, b: TC(tfft.fft2(a)) + TC(tfft.ifft2(tz(a, b), s=(3, 5))), (2, 4, 3), (2, 4, 3))
case("fftn_axes_forward", lambda x: C(np.fft.fftn(x, axes=(0, 2), norm="forward")),
     lambda x: TC(tfft.fftn(x, dim=(0, 2), norm="forward")), (3, 2, 4))
case("ifftn_all_axes_s", lambda a, b: C(np.fft.ifftn(b + 1j * a, s=(4, 2))),
     lambda a, b: TC(tfft.ifftn(tz(b, a), s=(4, 2))), (3, 3), (3, 3))

# -- real transforms ------------------------------------------------------------------------
case("rfft_even", lambda x: C(np.fft.rfft(x)), lambda x: TC(tfft.rfft(x)), (8,))
case("rfft_odd", lambda x: C(np.fft.rfft(x)), lambda x: TC(tfft.rfft(x)), (7,))
case("rfft_padded_odd_ortho", lambda x: C(np.fft.rfft(x, n=9, norm="ortho")),
     lambda x: TC(tfft.rfft(x, n=9, norm="ortho")), (6,))
case("rfft_truncated_even_forward_axis0", lambda x: C(np.fft.rfft(x, 4, 0, norm="forward")),
     lambda x: TC(tfft.rfft(x, 4, 0, norm="forward")), (7, 2))
case("irfft_even", lambda a, b: S(np.fft.irfft(a + 1j * b) * np.arange(8.0)),
     lambda a, b: TS(tfft.irfft(tz(a, b)) * torch.arange(8.0, dtype=torch.float64)),
     (5,), (5,))
case("irfft_odd_n_ortho", lambda a, b: S(np.fft.irfft(a + 1j * b, n=9, norm="ortho") ** 2),
     lambda a, b: TS(tfft.irfft(tz(a, b), n=9, norm="ortho") ** 2), (5,), (5,))
case("irfft_padded_forward_axis0", lambda a, b: S(np.fft.irfft(a + 1j * b, 10, 0, "forward")),
     lambda a, b: TS(tfft.irfft(tz(a, b), 10, 0, norm="forward")), (3, 2), (3, 2))
case("irfft_truncated_real_operand", lambda x: S(np.fft.irfft(x, n=4) * np.arange(4.0)),
     lambda x: TS(tfft.irfft(x, n=4) * torch.arange(4.0, dtype=torch.float64)), (2, 6))
case("rfft2_irfft2", lambda x: C(np.fft.rfft2(x)) + S(np.fft.irfft2(np.fft.rfft2(x) * 1.5j)),
     lambda x: TC(tfft.rfft2(x)) + TS(tfft.irfft2(tfft.rfft2(x) * 1.5j)), (4, 5))
case("rfftn_irfftn_s_axes",
     lambda x: C(np.fft.rfftn(x, s=(3, 6), axes=(0, 2), norm="ortho"))
     + S(np.fft.irfftn(np.fft.rfftn(x) ** 2, s=(3, 2, 5), axes=(0, 1, 2)) * np.arange(5.0)),
     lambda x: TC(tfft.rfftn(x, s=(3, 6), dim=(0, 2), norm="ortho"))
     + TS(tfft.irfftn(tfft.rfftn(x) ** 2, s=(3, 2, 5), dim=(0, 1, 2))
          * torch.arange(5.0, dtype=torch.float64)),
     (3, 2, 4))
case("hfft_ihfft", lambda a, b: S(np.fft.hfft(a + 1j * b, 7, norm="ortho") * np.arange(7.0))
     + C(np.fft.ihfft(a, n=6)),
     lambda a, b: TS(tfft.hfft(tz(a, b), 7, norm="ortho") * torch.arange(7.0, dtype=torch.float64))
     + TC(tfft.ihfft(a, n=6)), (4,), (4,))
case("fftshift_ifftshift",
     lambda x: C(np.fft.fftshift(np.fft.fft(x)) * np.arange(5.0))
     + S(np.fft.ifftshift(x, axes=0) * np.arange(5.0)),
     lambda x: TC(tfft.fftshift(tfft.fft(x)) * torch.arange(5.0, dtype=torch.float64))
     + TS(tfft.ifftshift(x, dim=0) * torch.arange(5.0, dtype=torch.float64)), (5,))

# -- complex arithmetic and the real functions of complex values -----------------------------
W = np.linspace(0.5, 1.5, 6)
TW = torch.tensor(W)
case("complex_arithmetic",
     lambda a, b: C((a + 1j * b) * (b - 2j) / (1.5 + a * 1j) + (a + 1j * b) ** 3
                    - (a - 0.5j) ** -2 + 2.0 / (b + 1j) - np.conj(a + 1j * b) * W),
     lambda a, b: TC(tz(a, b) * (b - 2j) / (1.5 + a * 1j) + tz(a, b) ** 3
                     - (a - 0.5j) ** -2 + 2.0 / (b + 1j) - torch.conj(tz(a, b)) * TW),
     (6,), (6,))
case("complex_real_functions",
     lambda a, b: S(np.abs(a + 1j * b) * W) + S(np.angle(a + 1j * b) * W)
     + S(np.abs(np.fft.fft(a)) ** 2) + S(np.real(np.exp(a * 1j + b)) + np.log(b + 3j).imag)
     + S(((a + 1j * b) * np.conj(a + 1j * b)).real) + np.sin(np.vdot(a + 1j, b - 2j).imag),
     lambda a, b: TS(torch.abs(tz(a, b)) * TW) + TS(torch.angle(tz(a, b)) * TW)
     + TS(torch.abs(tfft.fft(a)) ** 2) + TS(torch.exp(a * 1j + b).real + torch.log(b + 3j).imag)
     + TS((tz(a, b) * torch.conj(tz(a, b))).real)
     + torch.sin(torch.vdot(a + 1j, b - 2j).imag), (6,), (6,))
case("complex_shapes_and_sums",
     lambda a: C(np.fft.rfft(a, axis=0)[1:, ::-1].T.reshape(-1)) + C(np.sum(np.fft.fft(a), 0))
     + C(np.mean(np.fft.fft(a) @ np.ones((3, 2)), axis=1))
     + C(np.concatenate([np.fft.fft(a), a])) + C(np.where(a > 0, np.fft.fft(a), a)),
     lambda a: TC(tfft.rfft(a, dim=0)[1:].flip(1).T.reshape(-1)) + TC(torch.sum(tfft.fft(a), 0))
     + TC(torch.mean(tfft.fft(a) @ torch.ones((3, 2), dtype=torch.complex128), 1))
     + TC(torch.cat([tfft.fft(a), a.to(torch.complex128)]))
     + TC(torch.where(a > 0, tfft.fft(a), a.to(torch.complex128))), (4, 3))
