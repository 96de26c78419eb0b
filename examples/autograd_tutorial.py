"""PyTorch's autograd tutorial, the symgrad way.

Each step of "Automatic Differentiation with torch.autograd" (pytorch.org/tutorials) is redone
with plain numpy and symgrad. Run it with `symgrad demo` (or `python -m symgrad demo`, or
`python examples/autograd_tutorial.py`).

How the concepts map:

  PyTorch                                   symgrad
  ---------------------------------------   ------------------------------------------------
  w = torch.randn(5, 3, requires_grad=True) w = rng.normal(size=(5, 3)); wrt=("w", "b")
  loss.backward(); w.grad, b.grad           value, (gw, gb) = sg.value_and_grad(loss, wrt=...)
  with torch.no_grad(): z = ...             sg.jit(forward): compiled, no derivative code
  z.detach()                                sg.stop_gradient(z) inside the traced function
  out.backward(v) (vector-Jacobian product) sg.grad of sum(out * v), or sg.vjp
  retain_graph=True, w.grad.zero_()         not needed: compiled functions are pure
"""
from __future__ import annotations

import textwrap

import numpy as np

import symgrad as sg


# -- 1. The model: one layer, binary cross-entropy with logits ------------------------------
# torch: z = torch.matmul(x, w) + b
#        loss = torch.nn.functional.binary_cross_entropy_with_logits(z, y)
def loss(x, y, w, b):
    z = x @ w + b
    return np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))


def forward(x, w, b):
    return x @ w + b


def detached_product(x, w, b):
    z = x @ w + b
    return np.sum(z * sg.stop_gradient(z))  # d/dz = z: only the first factor is differentiated


# -- 5. The Jacobian-product example: out = (inp + 1)**2, transposed --------------------------
def squared_shifted(inp):
    return ((inp + 1) ** 2).T


def weighted_output(inp, v):
    return np.sum(squared_shifted(inp) * v)


def central_difference(f, args, index, eps=1e-6):
    """d f / d args[index] by central differences in float64: the independent check."""
    args = [np.array(a, dtype=np.float64) for a in args]
    x = args[index]
    gradient = np.zeros_like(x)
    flat, out = x.reshape(-1), gradient.reshape(-1)
    for k in range(flat.size):
        saved = flat[k]
        flat[k] = saved + eps
        up = f(*args)
        flat[k] = saved - eps
        down = f(*args)
        flat[k] = saved
        out[k] = (up - down) / (2 * eps)
    return gradient


def _indented(array: np.ndarray, precision: int) -> str:
    return textwrap.indent(np.array2string(array, precision=precision), "     ")


def main() -> None:
    rng = np.random.default_rng(0)
    # torch: x = torch.ones(5); y = torch.zeros(3)
    #        w = torch.randn(5, 3, requires_grad=True); b = torch.randn(3, requires_grad=True)
    x = np.ones(5)
    y = np.zeros(3)
    w = rng.standard_normal((5, 3))
    b = rng.standard_normal(3)

    # -- 2-3. requires_grad -> wrt; loss.backward(), w.grad, b.grad -> value_and_grad --------
    loss_and_grads = sg.value_and_grad(loss, wrt=("w", "b"))
    value, (gw, gb) = loss_and_grads(x, y, w, b)
    print("1. loss (BCE with logits)")
    print(f"   loss = {value:.6f}")
    print("2. gradients (torch: loss.backward(); w.grad, b.grad)")
    print(f"   w.grad =\n{_indented(gw, 4)}")
    print(f"   b.grad = {np.array2string(gb, precision=4)}")

    fd_w = central_difference(loss, (x, y, w, b), 2)
    fd_b = central_difference(loss, (x, y, w, b), 3)
    error = max(np.max(np.abs(gw - fd_w)), np.max(np.abs(gb - fd_b)))
    print(f"   agreement with central finite differences: max |error| = {error:.2e}"
          f" ({'ok' if error < 1e-6 else 'MISMATCH'})")

    # -- 4. torch.no_grad() -> jit (forward only); detach() -> stop_gradient ----------------
    z = sg.jit(forward)(x, w, b)
    print("3. forward only (torch.no_grad()): z =", np.array2string(z, precision=4))
    g_detached = sg.grad(detached_product, wrt="w")(x, w, b)
    print("   with stop_gradient (detach): d/dw sum(z * detach(z)) == outer(x, z):",
          np.allclose(g_detached, np.outer(x, z)))

    # -- 5. Jacobian products: out.backward(v) is the gradient of sum(out * v) ---------------
    inp = np.eye(4, 5)
    v = np.ones((5, 4))  # torch.ones_like(out)
    inp_grad = sg.grad(weighted_output, wrt="inp")(inp, v)
    print("4. vector-Jacobian product (torch: out.backward(torch.ones_like(out)))")
    print(f"   inp.grad =\n{_indented(inp_grad, 1)}")
    _, pullback = sg.vjp(squared_shifted, inp, wrt="inp")
    same = pullback(v)
    print("   sg.vjp gives the same:", np.array_equal(inp_grad, same))

    # -- 6. retain_graph and zeroing .grad ---------------------------------------------------
    # PyTorch accumulates into inp.grad (a second backward doubles it) until .grad.zero_().
    # A compiled symgrad function is pure: calling it again gives the same answer.
    again = sg.grad(weighted_output, wrt="inp")(inp, v)
    print("5. calling again gives the same gradient (no accumulation, nothing to zero):",
          np.array_equal(again, inp_grad))

    # -- 7. The generated code ---------------------------------------------------------------
    lowered = loss_and_grads.lower(x, y, w, b)
    print("6. the generated gradient code"
          f"{f' ({lowered.path})' if lowered.path else ''}:\n")
    print(lowered.source)


if __name__ == "__main__":
    main()
