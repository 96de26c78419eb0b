"""Dask arrays in, numpy answers out: a loss split over chunks of rows (symgrad/distributed/dask.py).

Each result is compared with the single-machine call on the same data as numpy arrays
(float64, rtol 1e-12). Most tests use Dask's threaded scheduler (fast); the cluster tests
share one module-scoped LocalCluster of two worker processes with their own cache directory.
"""
import contextlib
import sys

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

import symgrad as sg  # noqa: E402
from models_zoo import MODELS_BY_NAME  # noqa: E402
from symgrad.distributed import dask as sgd  # noqa: E402
from symgrad.errors import NotDecomposableError  # noqa: E402


def softmax_regression(W, b, X, Y):
    logits = X @ W + b
    logp = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
    return -np.mean(np.sum(Y * logp, axis=1)) + 0.05 * np.sum(W ** 2)


def softmax_args(rng, dtype, n=17):
    Y = np.eye(4)[rng.integers(0, 4, n)].astype(dtype)
    return {"W": rng.normal(size=(6, 4)).astype(dtype), "b": rng.normal(size=4).astype(dtype),
            "X": rng.normal(size=(n, 6)).astype(dtype), "Y": Y}


MODELS = {
    "logistic_regression": (MODELS_BY_NAME["logistic_regression"].numpy_fn,
                            MODELS_BY_NAME["logistic_regression"].make_args, ("w", "b")),
    "mlp": (MODELS_BY_NAME["mlp_tanh_softmax_ce"].numpy_fn,
            MODELS_BY_NAME["mlp_tanh_softmax_ce"].make_args, ("W1", "b1", "W2", "b2")),
    "mlp_relu": (MODELS_BY_NAME["mlp_relu_mse"].numpy_fn,
                 MODELS_BY_NAME["mlp_relu_mse"].make_args, ("W1", "b1", "W2", "b2", "W3")),
    "softmax": (softmax_regression, softmax_args, ("W", "b")),
}
DATA = {"X", "y", "Y", "labels"}


def chunkings(n):
    return {"uneven": (3, 1, n - 4), "single_rows": (1,) * n, "one_chunk": (n,),
            "even": (n // 2, n - n // 2)}


def dask_args(args, chunks):
    return [da.from_array(v, chunks=(chunks,) + v.shape[1:]) if k in DATA else v
            for k, v in args.items()]


def assert_same(got, want, rtol=1e-12):
    got_leaves = [got] if not isinstance(got, (tuple, list)) else list(got)
    want_leaves = [want] if not isinstance(want, (tuple, list)) else list(want)
    assert len(got_leaves) == len(want_leaves)
    for g, w in zip(got_leaves, want_leaves):
        if isinstance(w, (tuple, list)):
            assert_same(g, w, rtol)
            continue
        assert isinstance(g, np.ndarray) or np.isscalar(g) or isinstance(g, np.generic)
        assert np.asarray(g).dtype == np.asarray(w).dtype
        np.testing.assert_allclose(g, w, rtol=rtol, atol=0)


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("chunking", ["uneven", "single_rows", "one_chunk", "even"])
def test_chunk_sums_equal_the_full_gradient(model, chunking):
    fn, make, wrt = MODELS[model]
    args = make(np.random.default_rng(1), np.float64)
    vg = sg.value_and_grad(fn, wrt=wrt)
    want = vg(*args.values())
    got = vg(*dask_args(args, chunkings(len(args["X"]))[chunking]))
    assert_same(got, want)
    assert sg.grad(fn, wrt=wrt)(*dask_args(args, (5, len(args["X"]) - 5))) is not None


@pytest.mark.parametrize("split_every", [2, 3, 4, 8, None])
def test_every_split_every_and_repeated_runs_are_identical(split_every):
    fn, make, wrt = MODELS["mlp"]
    args = make(np.random.default_rng(2), np.float64)
    want = sg.value_and_grad(fn, wrt=wrt)(*args.values())
    vg = sg.value_and_grad(fn, wrt=wrt)
    dargs = dask_args(args, (1,) * len(args["X"]))  # ten blocks: a tree of several levels
    with dask.config.set(split_every=split_every) if split_every else contextlib.nullcontext():
        first = vg(*dargs)
        again = vg(*dargs)
    assert_same(first, want)
    for a, b in zip([first[0], *first[1]], [again[0], *again[1]]):
        assert np.array_equal(a, b)  # bit for bit


def test_float32_is_kept_and_pytree_parameters():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 5)).astype(np.float32)
    y = rng.normal(size=40).astype(np.float32)
    params = {"w": rng.normal(size=5).astype(np.float32), "b": np.float32(0.5) * np.ones((),
                                                                                       np.float32)}

    def loss(p, X, y):
        return np.mean((X @ p["w"] + p["b"] - y) ** 2) + 0.1 * np.sum(p["w"] ** 2)

    vg = sg.value_and_grad(loss)
    want_value, want = vg(params, X, y)
    value, got = vg(params, da.from_array(X, chunks=(7, 5)), da.from_array(y, chunks=7))
    assert set(got) == {"w", "b"} and value.dtype == np.float32
    assert got["w"].dtype == np.float32 and got["b"].dtype == np.float32
    np.testing.assert_allclose(value, want_value, rtol=1e-5)
    for k in ("w", "b"):
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-6)
    grads = sg.grad(loss)(params, da.from_array(X, chunks=(7, 5)), da.from_array(y, chunks=7))
    np.testing.assert_allclose(grads["w"], want["w"], rtol=1e-5, atol=1e-6)


def test_gradient_with_respect_to_a_chunked_argument_is_a_dask_array_chunked_like_it():
    fn, make, wrt = MODELS["logistic_regression"]
    args = make(np.random.default_rng(4), np.float64)
    want_value, (gw, gX) = sg.value_and_grad(fn, wrt=("w", "X"))(*args.values())
    w, b, X, y = dask_args(args, (5, 7))
    value, (got_w, got_X) = sg.value_and_grad(fn, wrt=("w", "X"))(w, b, X, y)
    assert isinstance(got_X, da.Array) and got_X.chunks == X.chunks
    np.testing.assert_allclose(value, want_value, rtol=1e-12)
    np.testing.assert_allclose(got_w, gw, rtol=1e-12)
    np.testing.assert_allclose(got_X.compute(), gX, rtol=1e-12)


def test_chunked_columns_and_differently_chunked_arguments_are_rechunked():
    fn, make, wrt = MODELS["softmax"]
    args = make(np.random.default_rng(5), np.float64, n=20)
    want = sg.value_and_grad(fn, wrt=wrt)(*args.values())
    X = da.from_array(args["X"], chunks=(6, 2))  # chunked along the columns too
    Y = da.from_array(args["Y"], chunks=(5, 4))  # other row chunks: follow X's
    got = sg.value_and_grad(fn, wrt=wrt)(args["W"], args["b"], X, Y)
    assert_same(got, want)


def test_the_generated_partial_and_combine_are_inspectable():
    fn, make, wrt = MODELS["logistic_regression"]
    args = make(np.random.default_rng(6), np.float64)
    low = sg.value_and_grad(fn, wrt=wrt).lower(*dask_args(args, (5, 7)))
    assert sorted(low.partials) == [5, 7]
    partial = low.partials[7].source
    assert "X=f64[7,5]" in partial and "/12" not in partial  # sums, not means
    assert "partial_value/12" in low.combine_source  # the total over the total row count
    assert "0.01*" in low.combine_source  # the regulariser, added once
    assert low.source.count("def ") >= 3


def test_a_loss_that_mixes_rows_is_a_clear_error():
    X = da.from_array(np.random.default_rng(7).normal(size=(10, 3)), chunks=4)
    w = np.ones(3)

    def batch_norm(w, X):
        h = X @ w
        return np.mean(((h - np.mean(h)) / np.std(h)) ** 2)

    def max_times_mean(w, X):
        h = X @ w
        return np.mean(h) * np.max(h)

    def squared_mean(w, X):
        return np.mean(X @ w) ** 2

    with pytest.raises(NotDecomposableError, match=r"subtract at test_dask\.py:\d+ .*h - np"
                                                   r".*batch normalisation"):
        sg.grad(batch_norm)(w, X)
    with pytest.raises(NotDecomposableError, match=r"max at test_dask\.py:\d+ .*np\.max\(h\)"
                                                   r".*across the chunked rows"):
        sg.grad(max_times_mean)(w, X)
    with pytest.raises(NotDecomposableError, match=r"power .*non-linear"):
        sg.value_and_grad(squared_mean)(w, X)
    with pytest.raises(NotDecomposableError, match="not chunked along the rows"):
        sg.grad(lambda w, X, y: np.mean(X @ w - y))(w, X, np.ones(10))
    with pytest.raises(sg.ArgumentError, match="only grad and value_and_grad"):
        sg.jit(lambda w, X: np.sum(X @ w))(w, X)


def test_progress_under_dask_progress_bar(capsys):
    from dask.diagnostics import ProgressBar

    fn, make, wrt = MODELS["softmax"]
    args = make(np.random.default_rng(8), np.float64)
    want = sg.value_and_grad(fn, wrt=wrt)(*args.values())
    with ProgressBar(minimum=0):
        got = sg.value_and_grad(fn, wrt=wrt)(*dask_args(args, (4, 4, 4, 5)))
    assert "100%" in capsys.readouterr().out
    assert_same(got, want)


# ---------------------------------------------------------------------------------------------
# On a cluster of two worker processes
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    worker_cache = tmp_path_factory.mktemp("worker-cache")
    worker_cache.chmod(0o700)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", env={"SYMGRAD_CACHE_DIR":
                                                               str(worker_cache)}) as c:
        with distributed.Client(c) as client:
            yield client, worker_cache


def test_on_a_two_process_cluster_code_travels_as_text_and_loads_from_worker_caches(cluster):
    client, worker_cache = cluster
    fn, make, wrt = MODELS["mlp"]
    rng = np.random.default_rng(9)
    args = make(rng, np.float64)
    n = 203
    args["X"] = rng.normal(size=(n, 6))
    args["labels"] = rng.integers(0, 4, n)
    want = sg.value_and_grad(fn, wrt=wrt)(*args.values())
    dargs = dask_args(args, (50, 50, 50, 53))
    vg = sg.value_and_grad(fn, wrt=wrt)
    got = vg(*dargs)
    assert_same(got, want)
    low = vg.lower(*dargs)
    keys = {c.key for c in low.partials.values()}
    assert keys <= {p.stem for p in worker_cache.glob("*.py")}  # stored by the workers
    states = client.run(sgd.worker_report)
    assert all(not s["sympy"] for s in states.values()), states  # (distributed imports jinja2)
    assert sum(s["received"] for s in states.values()) >= 1
    # Warm: each worker forgets what it holds in memory and loads from its own cache.
    client.run(sgd.forget_loaded)
    before = client.run(sgd.worker_report)
    again = vg(*dargs)
    after = client.run(sgd.worker_report)
    for a, b in zip([got[0], *got[1]], [again[0], *again[1]]):
        assert np.array_equal(a, b)
    assert sum(s["received"] for s in after.values()) == sum(
        s["received"] for s in before.values())
    assert sum(s["from_cache"] for s in after.values()) > sum(
        s["from_cache"] for s in before.values())
    assert all(not s["sympy"] for s in after.values())


def test_on_the_cluster_uneven_and_single_row_chunks(cluster):
    for model in ("logistic_regression", "softmax"):
        fn, make, wrt = MODELS[model]
        args = make(np.random.default_rng(10), np.float64)
        n = len(args["X"])
        want = sg.value_and_grad(fn, wrt=wrt)(*args.values())
        for chunks in (chunkings(n)["uneven"], chunkings(n)["single_rows"]):
            assert_same(sg.value_and_grad(fn, wrt=wrt)(*dask_args(args, chunks)), want)


def test_received_code_is_checked_before_it_is_stored(tmp_path):
    from symgrad.cache import DiskCache
    from symgrad.errors import GeneratedCodeError

    cache = DiskCache(tmp_path / "c")
    bad = sgd.CodeText("0" * 64, "import os\nos.system('true')\n", "f", ())
    with pytest.raises(GeneratedCodeError):
        sgd.receive_code(bad, cache)
    assert cache.load("0" * 64) is None
    assert "sympy" in sys.modules  # the client compiled: it may import SymPy, workers not


def test_only_the_chunked_argument_differentiated_and_no_regulariser():
    rng = np.random.default_rng(11)
    X, w = rng.normal(size=(9, 3)), rng.normal(size=3)

    def with_penalty(w, X):
        return np.mean(np.tanh(X @ w)) + np.sum(w ** 2)

    def plain_sum(w, X):
        return np.sum(np.tanh(X @ w))

    got = sg.grad(with_penalty, wrt="X")(w, da.from_array(X, chunks=4))
    assert isinstance(got, da.Array) and got.chunks == ((4, 4, 1), (3,))
    np.testing.assert_allclose(got.compute(), sg.grad(with_penalty, wrt="X")(w, X), rtol=1e-12)
    assert_same(sg.value_and_grad(plain_sum)(w, da.from_array(X, chunks=2)),
                sg.value_and_grad(plain_sum)(w, X))
    with pytest.raises(sg.ArgumentError, match="does not read its Dask arguments"):
        sg.grad(lambda w, X: np.sum(w ** 2))(w, da.from_array(X, chunks=4))


def test_a_squared_norm_over_rows_splits_as_a_sum_of_squares():
    model = MODELS_BY_NAME["ridge_regression"]  # norm(X @ w - y) ** 2 / n + lam * norm(w) ** 2
    args = model.make_args(np.random.default_rng(12), np.float64)
    vg = sg.value_and_grad(model.numpy_fn, wrt=model.wrt)
    assert_same(vg(*dask_args(args, (5, 1, 6))), vg(*args.values()), rtol=1e-13)
    X = da.from_array(args["X"], chunks=5)
    with pytest.raises(NotDecomposableError, match=r"norm at test_dask\.py:\d+ .*only its "
                                                   r"square splits"):
        sg.grad(lambda w, X: np.linalg.norm(X @ w))(args["w"], X)


WARM_CLIENT = '''
import sys
import dask.array as da
import numpy as np
import symgrad as sg

def loss(w, X, y):
    z = X @ w
    return np.mean(np.logaddexp(0, z) - y * z) + 0.01 * np.sum(w ** 2)

X = da.from_array(np.linspace(-1, 1, 30).reshape(10, 3), chunks=4)
y = da.from_array(np.arange(10) % 2.0, chunks=4)
value, g = sg.value_and_grad(loss)(np.ones(3), X, y)
print(repr(float(value)), "sympy" in sys.modules)
'''


def test_a_client_with_a_warm_cache_never_imports_sympy(tmp_path):
    from subprocess_run import run_script

    cold = run_script(tmp_path, WARM_CLIENT, "0").split()
    warm = run_script(tmp_path, WARM_CLIENT, "0").split()
    assert cold == [cold[0], "True"] and warm == [cold[0], "False"]
