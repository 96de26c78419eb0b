"""numpy.fft and complex intermediates beyond the oracle case table (tests/fft_cases.py):
second derivatives against torch.autograd.functional.hessian, jvp / vmap / hvp / jacobians
composed with them against torch.func, composite models (a spectral loss, a power-spectrum
fit, a convolution by FFT against np.convolve), the adjoints' exact weights, the generated
code, and the errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.func as tf

import symgrad as sg
from gradcheck import central_difference, convention_rows
from symgrad.errors import ComplexArgumentError

RNG = np.random.default_rng(3)
tfft = torch.fft


# ---------------------------------------------------------------------------------------------
# Second derivatives
# ---------------------------------------------------------------------------------------------
def spectral_np(x):
    X = np.fft.rfft(x, norm="ortho")
    power = np.abs(X) ** 2
    smoothed = np.fft.irfft(X * np.exp(-np.arange(X.size) / 3.0), n=x.size)
    return np.sum(np.log1p(power) * np.arange(1.0, X.size + 1)) + np.sum(np.tanh(smoothed) ** 2)


def spectral_t(x):
    X = tfft.rfft(x, norm="ortho")
    power = torch.abs(X) ** 2
    k = torch.arange(X.shape[-1], dtype=torch.float64)
    smoothed = tfft.irfft(X * torch.exp(-k / 3.0), n=x.shape[-1])
    return torch.sum(torch.log1p(power) * (k + 1)) + torch.sum(torch.tanh(smoothed) ** 2)


def phase_np(a, b):
    Z = np.fft.fft(a + 1j * b, n=7)
    return np.sum(np.abs(Z) ** 3) + np.sum(np.cos(np.angle(Z * (1 + 2j)))) \
        + np.sum((Z * np.conj(Z) / (2.0 + Z)).real)


def phase_t(a, b):
    Z = tfft.fft(torch.complex(a, b), n=7)
    return torch.sum(torch.abs(Z) ** 3) + torch.sum(torch.cos(torch.angle(Z * (1 + 2j)))) \
        + torch.sum((Z * torch.conj(Z) / (2.0 + Z)).real)


@pytest.mark.parametrize("n", [7, 8])
def test_hessian_of_a_spectral_loss_matches_torch(n):
    x = RNG.normal(size=n)
    hessian = sg.hessian(spectral_np)(x)
    expected = torch.autograd.functional.hessian(spectral_t, torch.tensor(x)).numpy()
    np.testing.assert_allclose(hessian, expected, rtol=1e-8, atol=1e-9)
    gradient = sg.grad(spectral_np)
    np.testing.assert_allclose(hessian, np.stack(
        [central_difference(lambda x: gradient(x)[i], [x], 0) for i in range(n)]),
        rtol=1e-5, atol=1e-6)


def test_hessian_through_complex_operands_and_arithmetic_matches_torch():
    a, b = RNG.normal(size=5), RNG.normal(size=5)
    h = sg.hessian(phase_np, wrt=(0, 1))(a, b)
    expected = torch.autograd.functional.hessian(phase_t, (torch.tensor(a), torch.tensor(b)))
    for i in range(2):
        for j in range(2):
            np.testing.assert_allclose(h[i][j], expected[i][j].numpy(), rtol=1e-7, atol=1e-8)


# ---------------------------------------------------------------------------------------------
# Transforms composed with the FFT
# ---------------------------------------------------------------------------------------------
def filtered_np(x):  # R^6 -> R^6
    return np.fft.irfft(np.fft.rfft(x) * np.array([1.0, 0.5j, -0.25, 0.1]), n=6) * np.sin(x)


def filtered_t(x):
    h = torch.tensor([1.0, 0.5j, -0.25, 0.1], dtype=torch.complex128)
    return tfft.irfft(tfft.rfft(x) * h, n=6) * torch.sin(x)


def test_jvp_jacobians_and_hvp_match_torch_func():
    x, v = RNG.normal(size=6), RNG.normal(size=6)
    tx, tv = torch.tensor(x), torch.tensor(v)
    out, tangent = sg.jvp(filtered_np, (x,), (v,))
    t_out, t_tangent = tf.jvp(filtered_t, (tx,), (tv,))
    np.testing.assert_allclose(out, t_out.numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(tangent, t_tangent.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sg.jacfwd(filtered_np)(x), tf.jacfwd(filtered_t)(tx).numpy(),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sg.jacrev(filtered_np)(x), tf.jacrev(filtered_t)(tx).numpy(),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sg.hvp(spectral_np)(x, v),
                               tf.jvp(tf.grad(spectral_t), (tx,), (tv,))[1].numpy(),
                               rtol=1e-8, atol=1e-10)


def test_vmap_and_per_example_gradients_match_torch_func():
    xs = RNG.normal(size=(4, 8))
    np.testing.assert_allclose(sg.vmap(filtered_np)(xs[:, :6]),
                               tf.vmap(filtered_t)(torch.tensor(xs[:, :6])).numpy(),
                               rtol=1e-10, atol=1e-12)
    per_example = sg.vmap(sg.grad(spectral_np))(xs)
    np.testing.assert_allclose(per_example, tf.vmap(tf.grad(spectral_t))(torch.tensor(xs)).numpy(),
                               rtol=1e-9, atol=1e-11)
    a, b = RNG.normal(size=(3, 5)), RNG.normal(size=5)  # one operand batched, one not
    batched = sg.vmap(sg.grad(phase_np, wrt=(0, 1)), in_axes=(0, None))(a, b)
    expected = tf.vmap(tf.grad(phase_t, argnums=(0, 1)), in_dims=(0, None))(
        torch.tensor(a), torch.tensor(b))
    for mine, theirs in zip(batched, expected):
        np.testing.assert_allclose(mine, theirs.numpy(), rtol=1e-9, atol=1e-11)


def test_grad_of_grad_of_an_fft_parameter():
    t = np.linspace(0, 1, 16, endpoint=False)

    def energy(w):
        return np.sum(np.abs(np.fft.rfft(np.sin(w * t) * t)[2:5]) ** 2)

    second = sg.grad(sg.grad(energy))(3.0)
    first = sg.grad(energy)
    assert np.isclose(second, (first(3.0 + 1e-5) - first(3.0 - 1e-5)) / 2e-5, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# Composite models
# ---------------------------------------------------------------------------------------------
def test_spectral_loss_matches_torch_in_float64_and_keeps_float32():
    target = np.abs(np.fft.rfft(RNG.normal(size=(3, 10)), axis=-1))

    def loss(x, scale):
        spectrum = np.abs(np.fft.rfft(x * scale, axis=-1, norm="ortho"))
        return np.mean((np.log1p(spectrum) - np.log1p(target)) ** 2)

    def loss_t(x, scale):
        spectrum = torch.abs(tfft.rfft(x * scale, dim=-1, norm="ortho"))
        return torch.mean((torch.log1p(spectrum) - torch.log1p(torch.tensor(target))) ** 2)

    x, scale = RNG.normal(size=(3, 10)), np.array(1.3)
    value, (gx, gs) = sg.value_and_grad(loss, wrt=(0, 1))(x, scale)
    tx, ts = torch.tensor(x, requires_grad=True), torch.tensor(scale, requires_grad=True)
    expected = loss_t(tx, ts)
    expected.backward()
    np.testing.assert_allclose(value, expected.item(), rtol=1e-12)
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(gs, ts.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(gx, central_difference(loss, [x, scale], 0), rtol=1e-6, atol=1e-9)
    value32, (gx32, gs32) = sg.value_and_grad(loss, wrt=(0, 1))(x.astype(np.float32),
                                                                 np.float32(scale))
    assert gx32.dtype == np.float32 and np.asarray(gs32).dtype == np.float32
    np.testing.assert_allclose(gx32, gx, rtol=2e-3, atol=1e-5)


def test_power_spectrum_fit_recovers_the_parameters():
    t = np.arange(64) / 64.0
    true = np.array([1.5, 9.0, 0.3])  # amplitude, frequency, damping

    def signal(p):
        return p[0] * np.sin(2 * np.pi * p[1] * t) * np.exp(-p[2] * t)

    measured = np.abs(np.fft.rfft(signal(true))) ** 2

    def misfit(p):
        model = np.abs(np.fft.rfft(signal(p))) ** 2
        return np.sum((np.sqrt(model + 1.0) - np.sqrt(measured + 1.0)) ** 2)

    def misfit_t(p):
        tt = torch.tensor(t)
        s = p[0] * torch.sin(2 * np.pi * p[1] * tt) * torch.exp(-p[2] * tt)
        model = torch.abs(tfft.rfft(s)) ** 2
        return torch.sum((torch.sqrt(model + 1.0) - torch.sqrt(torch.tensor(measured) + 1.0)) ** 2)

    p = np.array([1.2, 8.8, 0.2])
    np.testing.assert_allclose(sg.grad(misfit)(p), tf.grad(misfit_t)(torch.tensor(p)).numpy(),
                               rtol=1e-9)
    np.testing.assert_allclose(sg.hessian(misfit)(p),
                               tf.hessian(misfit_t)(torch.tensor(p)).numpy(), rtol=1e-7)
    def residuals(p):
        return np.log1p(np.abs(np.fft.rfft(signal(p))) ** 2) - np.log1p(measured)

    jacobian, damping = sg.jacrev(residuals), 1e-2
    for _ in range(60):  # Levenberg-Marquardt on the residuals, Jacobian by symgrad
        r, J = residuals(p), jacobian(p)
        trial = p - np.linalg.solve(J.T @ J + damping * np.diag(np.diag(J.T @ J)), J.T @ r)
        if misfit(trial) < misfit(p):
            p, damping = trial, damping / 3
        else:
            damping *= 4
    np.testing.assert_allclose(p, true, rtol=1e-8)
    assert misfit(p) < 1e-20


def test_convolution_by_fft_matches_np_convolve_and_its_gradients():
    def by_fft(x, k):
        n = x.size + k.size - 1
        return np.fft.irfft(np.fft.rfft(x, n) * np.fft.rfft(k, n), n)

    def loss_fft(x, k):
        return np.sum(np.sin(by_fft(x, k)) * np.arange(1.0, x.size + k.size))

    def loss_direct(x, k):
        return np.sum(np.sin(np.convolve(x, k)) * np.arange(1.0, x.size + k.size))

    for nx, nk in ((9, 4), (8, 5)):  # odd and even full lengths
        x, k = RNG.normal(size=nx), RNG.normal(size=nk)
        np.testing.assert_allclose(sg.jit(by_fft)(x, k), np.convolve(x, k), atol=1e-12)
        value, grads = sg.value_and_grad(loss_fft, wrt=(0, 1))(x, k)
        expected_value, expected = sg.value_and_grad(loss_direct, wrt=(0, 1))(x, k)
        np.testing.assert_allclose(value, expected_value, rtol=1e-12)
        for mine, theirs, i in zip(grads, expected, (0, 1)):
            np.testing.assert_allclose(mine, theirs, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(mine, central_difference(loss_fft, [x, k], i), rtol=1e-6,
                                       atol=1e-8)


# ---------------------------------------------------------------------------------------------
# The adjoints' weights, exactly: <u, J v> == <J^T u, v> for each op at odd and even lengths
# ---------------------------------------------------------------------------------------------
LINEAR = {
    "rfft": (lambda x: np.fft.rfft(x, 9), 6),
    "rfft_truncated": (lambda x: np.fft.rfft(x, 4, norm="ortho"), 7),
    "irfft_even": (lambda h: np.fft.irfft(h[:5] + 1j * h[5:], 8), 10),
    "irfft_odd_truncated": (lambda h: np.fft.irfft(h[:6] + 1j * h[6:], 7, norm="forward"), 12),
    "ifft_padded": (lambda h: np.fft.ifft(h[:3] + 1j * h[3:], 5), 6),
}


@pytest.mark.parametrize("name", sorted(LINEAR))
def test_each_transform_and_its_adjoint_are_transposes(name):
    f, n = LINEAR[name]

    def as_real(v):
        out = f(v)
        return np.concatenate([np.real(out), np.imag(out)]) if np.iscomplexobj(out) else out

    jacobian = np.stack([as_real(e) for e in np.eye(n)], axis=1)  # numpy's own transform
    u = RNG.normal(size=jacobian.shape[0])
    pulled = sg.grad(lambda v: np.sum(as_real_traced(f(v)) * u))(np.zeros(n))
    np.testing.assert_allclose(pulled, jacobian.T @ u, rtol=1e-12, atol=1e-12)


def as_real_traced(out):
    return np.concatenate([np.real(out), np.imag(out)]) if hasattr(out, "re") else out


# ---------------------------------------------------------------------------------------------
# Generated code
# ---------------------------------------------------------------------------------------------
def test_generated_code_computes_each_transform_once_and_reads_well():
    def power(x):
        X = np.fft.rfft(x, norm="ortho")
        return np.sum(np.abs(X) ** 2 * np.arange(5.0))

    source = sg.value_and_grad(power).lower(np.ones(8)).source
    body = source[source.index("def power_value_and_grad"):]
    code = [line for line in body.splitlines() if not line.lstrip().startswith("#")]
    assert sum("np.fft." in line for line in code) == 2, body  # forward once, backward once
    assert "    X = _parts(np.fft.rfft(x, norm='ortho'))\n    X_re = X[:, 0]\n    X_im = X[:, 1]\n" \
        in body
    assert "X_re**2 + X_im**2" in body and "np.hypot" not in body
    assert "x_bar = np.fft.irfft(t1 + 1j*t2, norm='ortho')" in body
    assert "_unslice" not in body


def test_printed_arguments_are_numpys_non_default_ones():
    x = np.ones((4, 6))
    cases = {
        lambda x: np.sum(np.fft.fft(x, n=8, axis=0).imag): "np.fft.fft(x, n=8, axis=0)",
        lambda x: np.sum(np.fft.fft2(x).real): "np.fft.fft2(x)",
        lambda x: np.sum(np.fft.ifftn(x, axes=(0,), norm="forward").real):
            "np.fft.ifft(x, axis=0, norm='forward')",
        lambda x: np.sum(np.fft.irfftn(x, s=(4, 5), axes=(0, 1))): "np.fft.irfft2(x, s=(4, 5))",
        lambda x: np.sum(np.fft.rfftn(x).real): "np.fft.rfft2(x)",
    }
    for f, expected in cases.items():
        assert expected in sg.jit(f).lower(x).source
        np.testing.assert_allclose(sg.jit(f)(x), f(x), atol=1e-12)


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------
def test_a_complex_result_is_a_clear_error():
    with pytest.raises(sg.TracingError, match="returned a complex value.*np.real"):
        sg.jit(lambda x: np.fft.fft(x))(np.ones(4))


def test_bad_calls_name_the_function_and_line():
    x = np.ones(4)
    with pytest.raises(sg.TracingError, match=r"numpy.fft.rfft takes a real array.*test_fft"):
        sg.grad(lambda x: np.sum(np.fft.rfft(np.fft.fft(x)).real))(x)
    with pytest.raises(sg.TracingError, match="invalid norm='unitary'"):
        sg.grad(lambda x: np.sum(np.fft.fft(x, norm="unitary").real))(x)
    with pytest.raises(sg.ShapeError, match="invalid number of data points"):
        sg.grad(lambda x: np.sum(np.fft.irfft(x[:1])))(x)
    with pytest.raises(sg.UnsupportedFunctionError, match="numpy.sqrt of a complex value"):
        sg.grad(lambda x: np.sum(np.sqrt(np.fft.fft(x)).real))(x)
    with pytest.raises(sg.UnsupportedFunctionError, match="comparison of complex values"):
        sg.grad(lambda x: np.sum(np.where(np.fft.fft(x) > 0, x, 0)))(x)
    with pytest.raises(sg.UnsupportedFunctionError, match=r"numpy.linalg.eig of a complex"):
        sg.grad(lambda x: np.sum(np.linalg.eig(np.fft.fft(x).reshape(2, 2))[0].real))(x)
    with pytest.raises(sg.UnsupportedFunctionError, match="norm.ord='nuc'. of a complex matrix"):
        sg.grad(lambda x: np.linalg.norm(np.fft.fft(x).reshape(2, 2), "nuc"))(x)
    with pytest.raises(sg.TracingError, match="would lose its imaginary part"):
        sg.grad(lambda x: np.sum(np.fft.fft(x).astype(np.float64)))(x)
    with pytest.raises(sg.TracingError, match="a cast to complex128 is not supported here"):
        sg.grad(lambda x: np.sum(x, dtype=complex).real)(x)
    with pytest.raises(sg.UnsupportedFunctionError, match="complex power"):
        sg.grad(lambda x: np.sum((np.fft.fft(x) ** 0.5).real))(x)


# ---------------------------------------------------------------------------------------------
# The conventions table of docs/conventions.md ("Complex values and the FFT"), row by row
# ---------------------------------------------------------------------------------------------
def test_every_convention_row_has_its_test():
    rows = convention_rows("Complex values and the FFT")
    assert len(rows) >= 7
    for row in rows:
        assert f"test_convention_{row.replace('-', '_')}" in globals(), row


def test_convention_complex_argument():
    with pytest.raises(ComplexArgumentError, match="'z' is a complex128 array.*1j"):
        sg.grad(lambda z: np.sum(np.abs(z) ** 2))(np.array([1 + 2j, 3j]))


def test_convention_complex_result():
    with pytest.raises(sg.TracingError, match="returned a complex value.*np.real"):
        sg.jit(lambda x: np.fft.fft(x))(np.ones(4))


def _torch_grads(f, *arrays):
    tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
    f(*tensors).backward()
    return [t.grad.numpy() for t in tensors]


def _zero_gradient_at_the_origin(np_fn, torch_fn):
    zeros = np.zeros(3)
    mine = sg.grad(lambda a, b: np.sum(np_fn(a + 1j * b)), wrt=(0, 1))(zeros, zeros)
    theirs = _torch_grads(lambda a, b: torch.sum(torch_fn(torch.complex(a, b))), zeros, zeros)
    for m, t in zip(mine, theirs):
        np.testing.assert_array_equal(m, t)
        np.testing.assert_array_equal(m, 0.0)


def test_convention_abs_origin():
    _zero_gradient_at_the_origin(np.abs, torch.abs)


def test_convention_angle_origin():
    _zero_gradient_at_the_origin(np.angle, torch.angle)


def test_convention_squared_modulus():
    a, b = np.array([0.0, 1.5, -2.0]), np.array([0.0, -0.5, 3.0])
    f = sg.value_and_grad(lambda a, b: np.sum(np.abs(a + 1j * b) ** 2), wrt=(0, 1))
    value, (ga, gb) = f(a, b)
    np.testing.assert_allclose(value, np.sum(a * a + b * b), rtol=1e-15)
    np.testing.assert_array_equal(ga, 2 * a)
    np.testing.assert_array_equal(gb, 2 * b)
    assert "squared modulus" in " ".join(f.lower(a, b).rewrites)


def test_convention_irfft_unread_parts():
    a, b = RNG.normal(size=6), RNG.normal(size=6)
    weights = np.arange(1.0, 9.0)
    gb = sg.grad(lambda a, b: np.sum(np.fft.irfft(a + 1j * b, n=8) * weights), wrt=1)(a, b)
    assert gb[0] == 0 and gb[4] == 0 and gb[5] == 0  # Im h[0], Im h[n/2], a bin past n//2
    theirs = _torch_grads(lambda a, b: torch.sum(tfft.irfft(torch.complex(a, b), n=8)
                                                 * torch.tensor(weights)), a, b)[1]
    np.testing.assert_allclose(gb, theirs, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(gb, central_difference(
        lambda a, b: np.sum(np.fft.irfft(a + 1j * b, n=8) * weights), [a, b], 1), atol=1e-8)


def test_convention_complex_division():
    big = np.array([1e200, 3e-300, 2.0, 0.0])
    small = np.array([1e180, 1e-300, 0.0, 1.5])
    a, b = np.array([1e200, 1.0, 3e-300, 2.0]), np.array([1e200, 0.5, 1e-300, 0.0])
    quotient = (a + 1j * b) / (big + 1j * small)
    for part in ("real", "imag"):
        mine = sg.jit(lambda a, b, c, d: getattr((a + 1j * b) / (c + 1j * d), part))(
            a, b, big, small)
        np.testing.assert_allclose(mine, getattr(quotient, part), rtol=1e-15)
    expected = 1.0 / (big + 1j * small)
    np.testing.assert_allclose(np.asarray(sg.jit(lambda c, d: (1.0 / (c + 1j * d)).real)(big, small)),
                               expected.real, rtol=1e-15)
    np.testing.assert_allclose(np.asarray(sg.jit(lambda c, d: (1.0 / (c + 1j * d)).imag)(big, small)),
                               expected.imag, rtol=1e-15)
    c, d, a = RNG.normal(size=4), RNG.normal(size=4), RNG.normal(size=4)
    d[0] = 0.0

    def quotient(a, c, d):
        return np.sum(np.sin(((a + 2j) / (c + 1j * d)).imag))

    mine = sg.grad(quotient, wrt=(0, 1, 2))(a, c, d)
    theirs = _torch_grads(lambda a, c, d: torch.sum(torch.sin(((a + 2j) / torch.complex(c, d)).imag)),
                          a, c, d)
    for m, t in zip(mine, theirs):
        np.testing.assert_allclose(m, t, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------------------------
# Every function listed as working on complex values, against numpy's complex result
# ---------------------------------------------------------------------------------------------
ON_COMPLEX = {
    "sum_axis": lambda z: np.sum(z, axis=0), "mean_method": lambda z: z.mean(1),
    "reshape": lambda z: np.reshape(z, (6, 2)), "reshape_method": lambda z: z.reshape(2, 6),
    "transpose": lambda z: np.transpose(z), "T": lambda z: z.T, "ravel": lambda z: np.ravel(z),
    "flatten": lambda z: z.flatten(), "squeeze": lambda z: np.squeeze(z[None]),
    "expand_dims": lambda z: np.expand_dims(z, 1), "flip": lambda z: np.flip(z, 1),
    "roll": lambda z: np.roll(z, 2, axis=1), "broadcast_to": lambda z: np.broadcast_to(z, (2, 3, 4)),
    "moveaxis": lambda z: np.moveaxis(z, 0, 1), "swapaxes": lambda z: np.swapaxes(z, 0, 1),
    "cumsum": lambda z: np.cumsum(z, axis=1), "cumsum_method": lambda z: z.cumsum(),
    "diff": lambda z: np.diff(z), "copy": lambda z: np.copy(z) + z.copy(),
    "tile": lambda z: np.tile(z, 2), "repeat": lambda z: np.repeat(z, 2, axis=0),
    "trace": lambda z: np.trace(z), "diagonal": lambda z: np.diagonal(z),
    "stack": lambda z: np.stack([z, z * 2j]), "concatenate": lambda z: np.concatenate([z, z.real], 1),
    "vdot": lambda z: np.vdot(z, z[::-1]), "conj_method": lambda z: z.conj() * z.conjugate(),
    "fftshift_axes": lambda z: np.fft.fftshift(z, axes=1), "ifftshift": lambda z: np.fft.ifftshift(z),
    "getitem": lambda z: z[1, ::2], "iterate": lambda z: sum(row * k for k, row in enumerate(z)),
    "square_reciprocal": lambda z: np.square(z) + np.reciprocal(z + 3.0) - np.positive(z),
    "power_zero": lambda z: z ** 0 + (-z) ** 1, "add_reduce": lambda z: np.add.reduce(z),
    "asarray": lambda z: np.asarray(z) * 1.5,
    "astype": lambda z: z.astype(np.complex128) + np.real(z).astype(complex),
    "dot": lambda z: np.dot(np.dot(z, z.T), z) + np.dot(z[0], z[1]) * np.dot(2j, z),
    "norm": lambda z: np.linalg.norm(z) + np.linalg.norm(z, axis=1)[:, None]
    + np.linalg.norm(z, 1) + np.linalg.norm(z, "fro") * np.linalg.norm(z[0], np.inf)
    * np.linalg.norm(z, 3, axis=0),
}


@pytest.mark.parametrize("name", sorted(ON_COMPLEX))
def test_functions_of_complex_values_match_numpy(name):
    fn = ON_COMPLEX[name]
    a, b = RNG.normal(size=(3, 4)), RNG.normal(size=(3, 4))

    def loss(a, b):
        out = fn(a + 1j * b)
        return np.sum(np.sin(np.real(out))) + np.sum(np.cos(np.imag(out)) * 0.5)

    value, grads = sg.value_and_grad(loss, wrt=(0, 1))(a, b)
    np.testing.assert_allclose(value, loss(a, b), rtol=1e-12)
    for i, g in enumerate(grads):
        np.testing.assert_allclose(g, central_difference(loss, [a, b], i), rtol=1e-6, atol=1e-8)


def test_add_reduce_sums_axis_0_as_numpy():
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(sg.jit(lambda x: np.add.reduce(x))(x), np.add.reduce(x))
    np.testing.assert_array_equal(sg.jit(lambda x: np.add.reduce(x, axis=None))(x), 15.0)


def test_dask_rows_split_a_per_row_spectral_loss_and_refuse_a_transform_across_rows():
    da = pytest.importorskip("dask.array")
    pytest.importorskip("distributed")
    from symgrad.errors import NotDecomposableError

    def loss(w, X):
        spectra = np.abs(np.fft.rfft(X * w, axis=1)) ** 2
        return np.mean(np.log1p(spectra))

    w, X = RNG.normal(size=8), RNG.normal(size=(13, 8))
    want = sg.value_and_grad(loss)(w, X)
    got = sg.value_and_grad(loss)(w, da.from_array(X, chunks=(4, 8)))
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-12)
    with pytest.raises(NotDecomposableError, match="rfft .*along the chunked rows"):
        sg.grad(lambda w, X: np.sum(np.abs(np.fft.rfft(X * w, axis=0))))(
            w, da.from_array(X, chunks=(4, 8)))


def test_stop_gradient_inner_transforms_and_loops_with_complex_values():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    stopped = sg.grad(lambda x: np.sum(np.abs(sg.stop_gradient(np.fft.fft(x))) * x))(x)
    np.testing.assert_allclose(stopped, np.abs(np.fft.fft(x)), rtol=1e-14)
    for f in (lambda x: np.sum(sg.grad(lambda y: np.sum(np.abs(np.fft.fft(y)) ** 3))(x) * x),
              lambda x: np.sum(sg.vmap(lambda r: np.abs(np.fft.fft(r)))(x.reshape(2, 2)) * x[:2]),
              lambda x: np.sum(sg.checkpoint(lambda y: np.abs(np.fft.rfft(y)))(x) ** 2 * x[0])):
        np.testing.assert_allclose(sg.grad(f)(x), central_difference(f, [x], 0), rtol=1e-6)
    with pytest.raises(sg.TracingError, match="loop carry or operand is a ComplexTracer"):
        sg.grad(lambda x: np.abs(sg.fori_loop(0, 3, lambda i, c: c * (1 + 1j),
                                              np.fft.fft(x)[0])))(x)


def test_convention_complex_literal_zero():
    x = np.array([np.inf, 1.5, -2.0])
    f = sg.jit(lambda x: (1j * x).real + (x * 2j).imag)
    np.testing.assert_array_equal(f(x), [np.inf, 3.0, -4.0])  # numpy: [nan, 3, -4]
    with np.errstate(invalid="ignore"):
        assert np.isnan((1j * x).real[0])
    assert "0*" not in f.lower(x).source


def test_result_dtypes_are_numpys():
    for dtype in (np.float16, np.float32, np.float64, np.int32):
        x = np.arange(6).astype(dtype)
        for f in (lambda x: np.abs(np.fft.fft(x)), lambda x: np.fft.rfft(x).imag,
                  lambda x: np.fft.irfft(np.fft.rfft(x) * 1j, n=6)):
            assert sg.jit(f)(x).dtype == f(x).dtype, (dtype, f(x).dtype)
