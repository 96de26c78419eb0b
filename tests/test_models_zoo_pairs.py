"""Validate the numpy/torch oracle pairs in tests/models_zoo.py.

For every model:
  * the numpy function on float64 arrays equals the torch function's value;
  * the torch gradient of each ``wrt`` argument agrees with a central finite
    difference of the numpy function along a random direction;
  * the record is well formed (signatures, argument partition, dtypes).
"""

import inspect

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from models_zoo import MODELS, MODELS_BY_NAME, numpy_value, torch_value_and_grad  # noqa: E402

SEED = 20240611
FD_EPS = 1e-6


def _args(model, dtype=np.float64, seed=SEED):
    return model.make_args(np.random.default_rng(seed), dtype)


def test_table_size_and_unique_names():
    assert len(MODELS) >= 24
    assert len(MODELS_BY_NAME) == len(MODELS)


@pytest.mark.parametrize("model", MODELS, ids=[m.name for m in MODELS])
def test_record_well_formed(model):
    args = _args(model)
    names = list(args)
    assert list(inspect.signature(model.numpy_fn).parameters) == names
    assert list(inspect.signature(model.torch_fn).parameters) == names
    assert model.wrt, "nothing to differentiate"
    assert not set(model.wrt) & set(model.nondiff)
    assert set(model.wrt) | set(model.nondiff) == set(names)
    for dtype in (np.float64, np.float32):
        a = _args(model, dtype)
        for name, v in a.items():
            assert isinstance(v, np.ndarray), name
            if name in model.wrt:
                assert v.dtype == dtype, (name, v.dtype)
            else:
                assert v.dtype in (dtype, np.int64, np.bool_), (name, v.dtype)
        val = numpy_value(model, a)
        assert np.ndim(val) == 0 and np.isfinite(val)
    # make_args is deterministic for a given generator state
    again = _args(model)
    for name in names:
        np.testing.assert_array_equal(args[name], again[name])


@pytest.mark.parametrize("model", MODELS, ids=[m.name for m in MODELS])
def test_value_matches_torch(model):
    args = _args(model)
    val_np = numpy_value(model, args)
    assert np.ndim(val_np) == 0
    val_t, _ = torch_value_and_grad(model, args)
    np.testing.assert_allclose(float(val_np), val_t, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("model", MODELS, ids=[m.name for m in MODELS])
def test_torch_grad_matches_finite_differences(model):
    args = _args(model)
    f0, grads = torch_value_and_grad(model, args)
    rng = np.random.default_rng(SEED + 1)
    for name in model.wrt:
        g = grads[name]
        assert g.shape == np.shape(args[name]), name
        assert np.all(np.isfinite(g)), name
        u = rng.standard_normal(np.shape(args[name]))
        plus = dict(args, **{name: args[name] + FD_EPS * u})
        minus = dict(args, **{name: args[name] - FD_EPS * u})
        fd = (float(numpy_value(model, plus)) - float(numpy_value(model, minus))) / (2 * FD_EPS)
        ana = float(np.sum(u * g))
        scale = float(np.sum(np.abs(u * g)))
        tol = 1e-6 * scale + 1e-8 * (1.0 + abs(f0))
        assert abs(fd - ana) <= tol, f"{model.name}/{name}: fd={fd!r} torch={ana!r} tol={tol:.3g}"
