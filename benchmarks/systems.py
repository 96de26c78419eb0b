"""The systems being compared.  Each turns a workload into a zero-argument
``call()`` that computes value and gradients once, plus a converter of its
output to numpy ``(value, (grad, ...))`` for the agreement check.

Frameworks are imported lazily in ``load()``; a system whose import fails is
skipped with the reason, and nothing else is affected.
"""

from __future__ import annotations

import functools
import os

import numpy as np


class Skip(Exception):
    """Raised by ``load()`` when a system is not available."""


def describe_error(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


class System:
    name = "?"
    # Whether tracemalloc sees this system's allocations (numpy buffers do;
    # torch's and XLA's allocators do not).
    traced_memory = False

    def load(self) -> None:
        """Import what is needed; raise Skip(reason) if unavailable."""

    def describe(self) -> str:
        return ""

    def build(self, wl, args: dict):
        """Return call(): one value-and-gradient evaluation, result ready."""
        raise NotImplementedError

    def to_numpy(self, out):
        value, grads = out
        if not isinstance(grads, (tuple, list)):
            grads = (grads,)
        return np.asarray(value), tuple(np.asarray(g) for g in grads)


class HandNumpy(System):
    name = "numpy (hand)"
    traced_memory = True

    def describe(self):
        return f"numpy {np.__version__}"

    def build(self, wl, args):
        a = tuple(args.values())
        hand = wl.hand_vg
        return lambda: hand(*a)


class Symgrad(System):
    name = "symgrad"
    traced_memory = True

    def load(self):
        try:
            import symgrad
        except Exception as exc:       # not installed / half-written: skip cleanly
            raise Skip(describe_error(exc)) from None
        if not hasattr(symgrad, "value_and_grad"):
            raise Skip("symgrad has no value_and_grad yet")
        self.sg = symgrad

    def describe(self):
        ver = getattr(self.sg, "__version__", "?")
        return f"symgrad {ver} from {os.path.dirname(self.sg.__file__)}"

    def build(self, wl, args):
        f = self.sg.value_and_grad(wl.numpy_fn, wrt=tuple(wl.wrt))
        a = tuple(args.values())
        return lambda: f(*a)


class SymgradC(Symgrad):
    """backend="c": fused C loops (OpenMP, libmvec), numpy for the matrix products."""

    name = "symgrad (c)"

    def load(self):
        super().load()
        try:
            from symgrad.backends.c import backend as c_backend
            self.toolchain = c_backend.toolchain()
        except Exception as exc:       # no C compiler here: skip with the reason
            raise Skip(describe_error(exc)) from None

    def describe(self):
        info = self.toolchain
        return (f"backend='c': {info['version']}, {' '.join(info['flags'])}"
                f"{', libmvec' if info['vector_math'] else ''}")

    def build(self, wl, args):
        f = self.sg.value_and_grad(wl.numpy_fn, wrt=tuple(wl.wrt), backend="c")
        a = tuple(args.values())
        return lambda: f(*a)


def _torch_tensors(torch, wl, args, upcast=False):
    """Tensors sharing memory with the numpy inputs (no copy), with
    requires_grad on the ``wrt`` leaves.  ``upcast`` converts floats to f64."""
    idx = set(wl.wrt_index(args))
    tensors = []
    for i, a in enumerate(args.values()):
        a = np.asarray(a)
        if upcast and a.dtype.kind == "f":
            a = a.astype(np.float64)
        t = torch.from_numpy(a if a.flags.c_contiguous else np.ascontiguousarray(a))
        if i in idx:
            t.requires_grad_(True)
        tensors.append(t)
    params = [tensors[i] for i in wl.wrt_index(args)]
    return tensors, params


class _TorchBase(System):
    def load(self):
        try:
            import torch
        except Exception as exc:
            raise Skip(describe_error(exc)) from None
        n = os.environ.get("OMP_NUM_THREADS", "")
        if n.isdigit() and int(n) > 0 and torch.get_num_threads() != int(n):
            torch.set_num_threads(int(n))          # run.py --threads N
        self.torch = torch

    def describe(self):
        t = self.torch
        return f"torch {t.__version__}, {t.get_num_threads()} threads"

    def to_numpy(self, out):
        value, grads = out
        return (value.detach().numpy(), tuple(g.detach().numpy() for g in grads))


class TorchEager(_TorchBase):
    name = "torch eager"

    def build(self, wl, args):
        torch = self.torch
        tensors, params = _torch_tensors(torch, wl, args)
        fn = wl.torch_fn

        def call():
            loss = fn(torch, *tensors)
            return loss.detach(), torch.autograd.grad(loss, params)
        return call


class TorchCompile(_TorchBase):
    """torch.compile of the forward function; AOTAutograd compiles the
    backward graph on the first autograd.grad call, so the first-call time
    includes both compilations."""

    name = "torch.compile"

    def load(self):
        super().load()
        if not hasattr(self.torch, "compile"):
            raise Skip("this torch has no torch.compile")

    def describe(self):
        cache = os.environ.get("TORCHINDUCTOR_CACHE_DIR", "default location")
        return f"inductor cache: {cache}"

    def build(self, wl, args):
        torch = self.torch
        torch._dynamo.reset()                 # independent of earlier workloads
        tensors, params = _torch_tensors(torch, wl, args)
        fn = wl.torch_fn

        def forward(*a):
            return fn(torch, *a)
        compiled = torch.compile(forward)

        def call():
            loss = compiled(*tensors)
            return loss.detach(), torch.autograd.grad(loss, params)
        return call


class JaxJit(System):
    name = "jax.jit"

    def load(self):
        try:
            import jax
            # f64 workloads need x64; f32 data stays f32 with it enabled.
            jax.config.update("jax_enable_x64", True)
            import jax.numpy as jnp
        except Exception as exc:
            raise Skip(describe_error(exc)) from None
        self.jax, self.jnp = jax, jnp

    def describe(self):
        jax = self.jax
        return f"jax {jax.__version__} on {jax.default_backend()}"

    def build(self, wl, args):
        jax = self.jax
        argnums = wl.wrt_index(args)
        f = jax.jit(jax.value_and_grad(functools.partial(wl.jax_fn, self.jnp),
                                       argnums=argnums))
        jargs = [jax.device_put(np.asarray(a)) for a in args.values()]
        block = jax.block_until_ready
        return lambda: block(f(*jargs))


ALL = [HandNumpy, Symgrad, SymgradC, TorchEager, TorchCompile, JaxJit]


def reference(wl, args):
    """Value and gradients in float64 for the agreement check, from the same
    data (f32 inputs are upcast, not regenerated): torch eager autograd when
    torch is importable, else the hand-written numpy gradient."""
    try:
        import torch
    except Exception:
        up = {k: (v.astype(np.float64) if np.asarray(v).dtype.kind == "f" else v)
              for k, v in args.items()}
        value, grads = wl.hand_vg(*up.values())
        return "numpy (hand) in float64", np.asarray(value), tuple(map(np.asarray, grads))
    tensors, params = _torch_tensors(torch, wl, args, upcast=True)
    loss = wl.torch_fn(torch, *tensors)
    grads = torch.autograd.grad(loss, params)
    return ("torch eager autograd in float64", loss.detach().numpy(),
            tuple(g.numpy() for g in grads))
