"""sg.vmap: each per-example function against numpy run example by example, per-example
gradients and Hessians against torch.func, composition both ways, and the errors."""
from __future__ import annotations

import numpy as np
import pytest

import symgrad as sg
from symgrad.autodiff import NOT_BATCHED, NO_RULE_YET, rule_for
from symgrad.ir import OPS

torch = pytest.importorskip("torch")
tf = torch.func

RNG = np.random.default_rng(16)
B = 5
IDX = np.array([2, 0, 3, 3])


def per_example(f, args, in_axes):
    """The oracle: f run on each example with plain numpy, stacked."""
    out = []
    for i in range(B):
        out.append(f(*[a if ax is None else np.take(a, i, axis=ax)
                       for a, ax in zip(args, in_axes)]))
    return np.stack(out)


# (name, function of one example, per-example shapes, in_axes)
CASES = [
    ("elementwise", lambda x, y: np.tanh(x) * y + np.exp(-x ** 2), [(4, 3), (3,)], (0, None)),
    ("broadcast_batched_low_rank", lambda x, y: x + y, [(3,), (4, 3)], (0, None)),
    ("both_batched_ranks_differ", lambda x, y: x * y, [(3,), (4, 3)], (0, 0)),
    ("where", lambda x: np.where(x > 0, np.sqrt(np.abs(x)), x ** 3), [(4, 3)], (0,)),
    ("sum_axis", lambda x: x.sum(0) + x.sum(), [(4, 3)], (0,)),
    ("mean_keepdims", lambda x: x - x.mean(axis=1, keepdims=True), [(4, 3)], (0,)),
    ("max_min_prod", lambda x: x.max(0) - x.min(1).sum() + np.prod(x, axis=0), [(4, 3)], (0,)),
    ("norm", lambda x: np.linalg.norm(x, axis=1), [(4, 3)], (0,)),
    ("cumsum_cumprod", lambda x: np.cumsum(x, axis=1) + np.cumprod(x, axis=0), [(4, 3)], (0,)),
    ("argmax", lambda x: np.argmax(x) + np.argmin(x, axis=0), [(4, 3)], (0,)),
    ("reshape_transpose", lambda x: x.reshape(3, 4).T @ np.ones(3), [(4, 3)], (0,)),
    ("broadcast_to", lambda x: np.broadcast_to(x, (2, 4, 3)) * 2, [(4, 3)], (0,)),
    ("concatenate", lambda x, y: np.concatenate([x, y, x * y], axis=0), [(3,), (3,)], (0, None)),
    ("stack_pad", lambda x: np.pad(np.stack([x, -x]), ((1, 0), (0, 2))), [(3,)], (0,)),
    ("basic_index", lambda x: x[0] + x[1:, ::2].sum() + x[None, :, -1].sum(), [(4, 3)], (0,)),
    ("gather_const_index", lambda x: x[IDX] * 2 + x[:, [0, 2]].sum(), [(4, 3)], (0,)),
    ("gather_split_index", lambda x: x[IDX[:2], :, IDX[2:] - 2], [(4, 3, 2)], (0,)),
    ("matvec", lambda w, x: w @ x, [(2, 3), (3,)], (None, 0)),
    ("vecmat", lambda x, w: x @ w, [(3,), (3, 2)], (0, None)),
    ("vec_vec_batched_right", lambda v, x: v @ x, [(3,), (3,)], (None, 0)),
    ("matmul_both", lambda a, b: a @ b, [(2, 3), (3, 4)], (0, 0)),
    ("matmul_both_vec", lambda a, b: a @ b, [(2, 3), (3,)], (0, 0)),
    ("matmul_stacked", lambda a, b: a @ b, [(2, 3), (4, 3, 2)], (0, None)),
    ("matmul_stacked_right", lambda a, b: a @ b, [(4, 2, 3), (3, 2)], (None, 0)),
    ("einsum", lambda a, b: np.einsum("ij,jk->ik", a, b), [(2, 3), (3, 4)], (0, None)),
    ("softmax_logsumexp", lambda x: np.exp(x) / np.exp(x).sum(1, keepdims=True), [(4, 3)], (0,)),
]


def make(shapes, in_axes):
    return [RNG.standard_normal(s if ax is None else s[:ax] + (B,) + s[ax:])
            for s, ax in zip(shapes, in_axes)]


@pytest.mark.parametrize("name,f,shapes,in_axes", CASES, ids=[c[0] for c in CASES])
def test_vmap_matches_per_example(name, f, shapes, in_axes):
    args = make(shapes, in_axes)
    got = sg.vmap(f, in_axes=in_axes)(*args)
    np.testing.assert_allclose(got, per_example(f, args, in_axes), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name,f,shapes,in_axes",
                         [c for c in CASES if c[0] not in ("argmax",)],
                         ids=[c[0] for c in CASES if c[0] not in ("argmax",)])
def test_per_example_gradient_of_every_case(name, f, shapes, in_axes):
    """vmap(grad(sum of f)): batching the differentiated graph (scatters, unslices, the
    adjoints' matmuls and broadcasts) is right for every op."""
    args = make(shapes, in_axes)
    first = next(k for k, ax in enumerate(in_axes) if ax is not None)

    def total(*a):
        return np.sum(np.sin(f(*a)))

    got = sg.vmap(sg.grad(total, wrt=first), in_axes=in_axes)(*args)
    expected = per_example(sg.grad(total, wrt=first), args, in_axes)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_batched_index_arrays():
    x = RNG.standard_normal((B, 4, 3, 3))
    i, j = RNG.integers(0, 3, (B, 2)), RNG.integers(0, 3, (B, 2, 1))
    for f in (lambda x, i, j: x[i], lambda x, i, j: x[:, i], lambda x, i, j: x[j, :, i],
              lambda x, i, j: x[1, j], lambda x, i, j: x[:2, i, None], lambda x, i, j: x[j, i]):
        np.testing.assert_array_equal(sg.vmap(f)(x, i, j), per_example(f, [x, i, j], (0,) * 3))
        for axes in ((0, 0, 0), (0, None, 0), (None, 0, 0)):
            args = [a if ax is not None else a[0] for a, ax in zip((x, i, j), axes)]

            def total(x, i, j):
                return np.sum(f(x, i, j) ** 2)

            g = sg.vmap(sg.grad(total), in_axes=axes)(*args)
            np.testing.assert_allclose(g, per_example(sg.grad(total), args, axes), rtol=1e-12)


def logistic(w, b, x, y):
    z = x @ w + b
    return np.logaddexp(0.0, z) - y * z


def logistic_t(w, b, x, y):
    z = x @ w + b
    return torch.nn.functional.softplus(z) - y * z


def test_per_example_gradients_against_torch():
    w, b = RNG.standard_normal(3), np.array(0.3)
    x, y = RNG.standard_normal((B, 3)), (RNG.random(B) > 0.5).astype(float)
    gw, gb = sg.vmap(sg.grad(logistic, wrt=(0, 1)), in_axes=(None, None, 0, 0))(w, b, x, y)
    tw, tb = tf.vmap(tf.grad(logistic_t, argnums=(0, 1)), in_dims=(None, None, 0, 0))(
        *map(torch.tensor, (w, b, x, y)))
    np.testing.assert_allclose(gw, tw.numpy(), rtol=1e-12)
    np.testing.assert_allclose(gb, tb.numpy(), rtol=1e-12)


def mlp(params, x):
    h = np.tanh(x @ params["w1"] + params["b1"])
    return np.sum((h @ params["w2"]) ** 2)


def test_per_example_pytree_gradients_against_torch():
    params = {"w1": RNG.standard_normal((3, 4)), "b1": RNG.standard_normal(4),
              "w2": RNG.standard_normal((4, 2))}
    x = RNG.standard_normal((B, 3))
    got = sg.vmap(sg.grad(mlp), in_axes=({"w1": None, "b1": None, "w2": None}, 0))(params, x)

    def mlp_t(p, x):
        h = torch.tanh(x @ p["w1"] + p["b1"])
        return torch.sum((h @ p["w2"]) ** 2)

    expected = tf.vmap(tf.grad(mlp_t), in_dims=(None, 0))(
        {k: torch.tensor(v) for k, v in params.items()}, torch.tensor(x))
    for k in params:
        assert got[k].shape == (B,) + params[k].shape
        np.testing.assert_allclose(got[k], expected[k].numpy(), rtol=1e-10, atol=1e-13)


def test_grad_of_vmap_against_torch():
    w, x = RNG.standard_normal(3), RNG.standard_normal((B, 3))

    def f(w, x):
        return np.sin(x @ w) ** 2

    got = sg.grad(lambda w, x: np.sum(sg.vmap(f, in_axes=(None, 0))(w, x)))(w, x)
    expected = tf.grad(lambda w, x: torch.sum(tf.vmap(lambda w, x: torch.sin(x @ w) ** 2,
                                                      in_dims=(None, 0))(w, x)))(
        torch.tensor(w), torch.tensor(x))
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-12)


def test_vmap_of_hessian_against_torch():
    x = RNG.standard_normal((B, 3))

    def f(x):
        return np.sum(np.exp(x[0] * x) + x ** 3)

    got = sg.vmap(sg.hessian(f))(x)
    expected = tf.vmap(tf.hessian(lambda x: torch.sum(torch.exp(x[0] * x) + x ** 3)))(
        torch.tensor(x))
    assert got.shape == (B, 3, 3)
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-11)


def test_hessian_and_jacobian_of_vmap():
    x = RNG.standard_normal(4)
    f = sg.vmap(lambda x: np.sin(x) * x)
    np.testing.assert_allclose(sg.jacrev(f)(x), np.diag(np.cos(x) * x + np.sin(x)), rtol=1e-12)
    h = sg.hessian(lambda x: np.sum(f(x)))(x)
    np.testing.assert_allclose(h, np.diag(2 * np.cos(x) - x * np.sin(x)), rtol=1e-12)


def test_vmap_of_vmap_and_axes():
    x, w = RNG.standard_normal((3, 4, 2)), RNG.standard_normal((2, 5))
    inner = sg.vmap(lambda row, w: np.tanh(row @ w), in_axes=(0, None))
    got = sg.vmap(inner, in_axes=(1, None), out_axes=2)(x, w)
    expected = np.tanh(np.einsum("ijk,kl->ijl", x, w)).transpose(0, 2, 1)  # (3, 5, 4)
    assert got.shape == (3, 5, 4)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_out_axes_tuple_and_none():
    x, c = RNG.standard_normal((B, 3)), RNG.standard_normal(3)
    a, s = sg.vmap(lambda x, c: (x * c, c.sum()), in_axes=(0, None), out_axes=(1, None))(x, c)
    np.testing.assert_allclose(a, (x * c).T)
    np.testing.assert_allclose(s, c.sum())
    unbatched = sg.vmap(lambda x, c: c * 2, in_axes=(0, None))(x, c)
    np.testing.assert_allclose(unbatched, np.broadcast_to(c * 2, (B, 3)))


def test_generated_code_has_no_loop():
    low = sg.vmap(sg.grad(logistic), in_axes=(None, None, 0, 0)).lower(
        "f64[3]", "f64[]", "f64[256,3]", "f64[256]")
    code = [line for line in low.source.splitlines() if not line.startswith((" " * 4 + '"', "#"))]
    assert not any(line.lstrip().startswith(("for ", "while ")) for line in code)
    assert "x @ w" in low.source


def test_errors():
    x, y = np.ones((3, 2)), np.ones((4, 2))
    with pytest.raises(sg.ArgumentError, match="batch sizes differ.*x \\(axis 0\\) has 3.*y "
                                                "\\(axis 0\\) has 4"):
        sg.vmap(lambda x, y: x + y)(x, y)
    with pytest.raises(sg.ArgumentError, match="in_axes has 1 entries.*2 positional"):
        sg.vmap(lambda x, y: x + y, in_axes=(0,))(x, x)
    with pytest.raises(sg.ArgumentError, match="in_axes 2 for x is out of range"):
        sg.vmap(lambda x: x, in_axes=2)(x)
    with pytest.raises(sg.ArgumentError, match="maps none"):
        sg.vmap(lambda x: x, in_axes=None)(x)
    with pytest.raises(sg.ArgumentError, match="varies across the batch"):
        sg.vmap(lambda x: x * 2, out_axes=None)(x)
    with pytest.raises(sg.ArgumentError, match="does not match"):
        sg.vmap(lambda p: p["a"], in_axes=({"b": 0},))({"a": x})
    with pytest.raises(sg.ArgumentError, match="is a float, which has no axis"):
        sg.vmap(lambda x, s: x * s)(x, 2.0)


def test_every_op_has_a_batching_rule_or_a_mark():
    missing = [op for op in OPS if op not in NOT_BATCHED and op not in NO_RULE_YET
               and rule_for(op) is None]
    assert not missing, f"ops without a batching rule: {missing}"


WARM_SCRIPT = '''
import sys
import numpy as np
import symgrad as sg

@sg.custom_vjp
def clip_gradient(x):
    return x

clip_gradient.defvjp(lambda x: (x, None), lambda _, g: (np.clip(g, -1.0, 1.0),))

def loss(w, x, y):
    return (np.tanh(clip_gradient(x @ w)) - y) ** 2

x, y, w = np.linspace(-1, 1, 12).reshape(4, 3), np.arange(4.0), np.array([0.5, -2.0, 1.0])
g = sg.vmap(sg.grad(loss), in_axes=(None, 0, 0))(w, x, y)
print(repr(g.tolist()), "sympy" in sys.modules)
'''


def test_warm_cache_serves_vmap_and_custom_rules_without_sympy(tmp_path):
    import ast
    import os
    import subprocess
    import sys

    script = tmp_path / "model.py"
    script.write_text(WARM_SCRIPT)
    outputs = []
    for seed in ("1", "2"):  # the key does not depend on the hash seed
        env = {**os.environ, "PYTHONHASHSEED": seed, "SYMGRAD_CACHE_DIR": str(tmp_path / "c")}
        result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                                env=env, timeout=120)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout.rsplit(" ", 1))
    (cold, cold_sympy), (warm, warm_sympy) = outputs
    assert (cold_sympy.strip(), warm_sympy.strip()) == ("True", "False")
    assert cold == warm
    x, y, w = np.linspace(-1, 1, 12).reshape(4, 3), np.arange(4.0), np.array([0.5, -2.0, 1.0])
    z = x @ w
    expected = (2 * (np.tanh(z) - y) * (1 - np.tanh(z) ** 2))
    expected = np.clip(expected, -1, 1)[:, None] * x
    np.testing.assert_allclose(np.array(ast.literal_eval(cold)), expected, rtol=1e-13)


def test_vmap_with_forward_mode_vjp_and_statics_both_ways():
    x, t = RNG.standard_normal((B, 3)), RNG.standard_normal((B, 3))

    def f(x, scale):
        return np.sin(x) * scale

    _, tangent = sg.jvp(lambda x: sg.vmap(f, in_axes=(0, None))(x, 2.0), (x,), (t,))
    np.testing.assert_allclose(tangent, 2 * np.cos(x) * t, rtol=1e-14)
    per_example = sg.vmap(lambda x, t: sg.jvp(lambda x: f(x, 2.0), (x,), (t,))[1])(x, t)
    np.testing.assert_allclose(per_example, 2 * np.cos(x) * t, rtol=1e-14)
    out, pullback = sg.vjp(sg.vmap(lambda x: f(x, 3.0)), x)
    (gx,) = pullback(t)
    np.testing.assert_allclose(gx, 3 * np.cos(x) * t, rtol=1e-14)
    np.testing.assert_allclose(out, 3 * np.sin(x), rtol=1e-14)


def test_pytree_outputs_negative_axes_and_kwargs():
    x = RNG.standard_normal((3, B))
    got = sg.vmap(lambda x: {"s": x.sum(), "v": x * 2}, in_axes=-1,
                  out_axes={"s": 0, "v": -1})(x)
    np.testing.assert_allclose(got["s"], x.sum(0))
    np.testing.assert_allclose(got["v"], x * 2)
    with pytest.raises(sg.ArgumentError, match="pass the arguments positionally"):
        sg.vmap(lambda x: x)(x=x)


def test_per_example_cross_entropy_with_integer_labels_against_torch():
    w, x, labels = RNG.standard_normal((4, 3)), RNG.standard_normal((6, 4)), RNG.integers(0, 3, 6)

    def loss(w, x, label):
        z = x @ w
        z = z - z.max()
        return -(z[label] - np.log(np.sum(np.exp(z))))

    def loss_t(w, x, label):
        return torch.nn.functional.cross_entropy((x @ w)[None], label[None])

    args_t = torch.tensor(w), torch.tensor(x), torch.tensor(labels)
    g = sg.vmap(sg.grad(loss), in_axes=(None, 0, 0))(w, x, labels)
    np.testing.assert_allclose(g, tf.vmap(tf.grad(loss_t), in_dims=(None, 0, 0))(*args_t),
                               rtol=1e-12, atol=1e-15)
    h = sg.vmap(sg.hessian(loss, wrt=1), in_axes=(None, 0, 0))(w, x, labels)
    expected = tf.vmap(tf.hessian(loss_t, argnums=1), in_dims=(None, 0, 0))(*args_t)
    np.testing.assert_allclose(h, expected.numpy(), rtol=1e-12, atol=1e-15)


def test_linalg_and_sorting_batch_like_a_loop():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(4, 3, 3))
    spd = a @ np.swapaxes(a, -1, -2) + 3 * np.eye(3)
    xs = rng.normal(size=(4, 5))

    def per_example(m, x):
        chol = np.linalg.cholesky(m)
        return np.sum(np.sort(x)[-2:]) * np.linalg.det(m) + np.sum(np.triu(chol))

    batched = sg.vmap(per_example)(spd, xs)
    np.testing.assert_allclose(batched, [per_example(m, x) for m, x in zip(spd, xs)],
                               rtol=1e-12)
    top_two = lambda x: np.sum(np.sort(x)[-2:] ** 2)  # noqa: E731
    grads = sg.vmap(sg.grad(top_two))(xs)
    for k in range(4):
        np.testing.assert_allclose(grads[k], sg.grad(top_two)(xs[k]), rtol=1e-12)


def test_ops_without_a_batching_rule_are_clear_errors():
    a = np.eye(3)[None].repeat(2, 0)
    with pytest.raises(sg.ShapeError, match="solve has no batching rule"):
        sg.vmap(lambda m, b: np.linalg.solve(m, b))(a, np.ones((2, 3)))
