"""symgrad on the model zoo: for every numpy/torch pair in tests/models_zoo.py, symgrad's value
and gradients (float64) equal PyTorch's, and float32 arguments give float32 gradients."""
from __future__ import annotations

import numpy as np
import pytest

import symgrad as sg
from models_zoo import MODELS, torch_value_and_grad

SEED = 20240611

def _gradients(model, args):
    value, grads = sg.value_and_grad(model.numpy_fn, wrt=model.wrt)(**args)
    return value, dict(zip(model.wrt, grads))


@pytest.mark.parametrize("model", MODELS, ids=[m.name for m in MODELS])
def test_value_and_gradients_match_torch(model):
    args = model.make_args(np.random.default_rng(SEED), np.float64)
    value, grads = _gradients(model, args)
    torch_value, torch_grads = torch_value_and_grad(model, args)
    np.testing.assert_allclose(value, torch_value, rtol=1e-10, atol=1e-12)
    for name in model.wrt:
        assert grads[name].shape == np.shape(args[name]) and grads[name].dtype == np.float64
        scale = np.max(np.abs(torch_grads[name]), initial=1.0)
        np.testing.assert_allclose(grads[name], torch_grads[name], rtol=1e-9,
                                   atol=1e-12 * scale, err_msg=f"{model.name}: d/d{name}")


@pytest.mark.parametrize("model", MODELS, ids=[m.name for m in MODELS])
def test_float32_gradients_stay_float32(model):
    args = model.make_args(np.random.default_rng(SEED), np.float32)
    value, grads = _gradients(model, args)
    assert np.asarray(value).dtype == np.asarray(model.numpy_fn(**args)).dtype
    reference = _gradients(model, {k: v.astype(np.float64) if v.dtype == np.float32 else v
                                   for k, v in args.items()})[1]
    for name in model.wrt:
        assert grads[name].dtype == np.float32, name
        scale = np.max(np.abs(reference[name]), initial=1.0)
        np.testing.assert_allclose(grads[name], reference[name], rtol=2e-3, atol=2e-4 * scale,
                                   err_msg=f"{model.name}: d/d{name}")


@pytest.mark.parametrize("model", MODELS, ids=[m.name for m in MODELS])
def test_every_array_reused_and_blocked_still_matches_torch(model, tmp_path, monkeypatch):
    """The zoo's arrays are small; with the size thresholds at zero, every result that can be
    written into a dead array is, every large product expression is computed in the product's
    array, every broadcast into a short last axis goes column by column, and every elementwise
    region runs in row blocks: values must not change."""
    from symgrad.backends.numpy import blocking, buffers, statements

    monkeypatch.setattr(buffers, "REUSE_MIN_BYTES", 0)
    monkeypatch.setattr(statements, "COLUMNWISE_MIN_BYTES", 0)
    monkeypatch.setattr(blocking, "BLOCKING_MIN_BYTES", 0)
    monkeypatch.setattr(blocking, "BLOCK_BYTES", 64)
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path))
    args = model.make_args(np.random.default_rng(SEED), np.float64)
    originals = {k: np.copy(v) for k, v in args.items()}
    value, grads = _gradients(model, args)
    torch_value, torch_grads = torch_value_and_grad(model, args)
    np.testing.assert_allclose(value, torch_value, rtol=1e-10, atol=1e-12)
    for name in model.wrt:
        scale = np.max(np.abs(torch_grads[name]), initial=1.0)
        np.testing.assert_allclose(grads[name], torch_grads[name], rtol=1e-9,
                                   atol=1e-12 * scale, err_msg=f"{model.name}: d/d{name}")
    for name, original in originals.items():
        np.testing.assert_array_equal(args[name], original)  # inputs are never written
