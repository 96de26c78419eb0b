"""symgrad: gradients the way a compiler makes them.

Trace a plain numpy function, differentiate it symbolically (SymPy), and run generated numpy
code that a person can read, diff and ship::

    import numpy as np
    import symgrad as sg

    @sg.value_and_grad(wrt=("w", "b"))
    def loss(x, y, w, b):
        z = x @ w + b
        return np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))

    value, (gw, gb) = loss(x, y, w, b)
    print(loss.lower(x, y, w, b).source)
"""
from ._version import __version__

from .api import (CompiledFunction, Lowered, grad, hessian, hvp, jacfwd, jacobian, jacrev, jit,
                  jvp, stop_gradient, value_and_grad, vjp)
from .errors import (ArgumentError, DtypePromotionError, GeneratedCodeError, GradientError,
                     MutationError, NonScalarOutputError, NotDifferentiableError, ShapeError,
                     SymgradError, TracedBoolError, TracedConversionError, TracingError,
                     UnsupportedFunctionError)
from .ir.promotion import DtypePromotionWarning
from .trace.control import checkpoint, cond, switch, while_loop
from .trace.loops import fori_loop, scan
from .pytree import register_pytree_node, tree_flatten, tree_map, tree_unflatten
from .specs import Spec, spec
from .check import GradientCheckError, check_grads
from .autodiff.custom import custom_jvp, custom_vjp
from .user_ops import elementwise
from .transforms.vmap import vmap

__all__ = [
    "grad", "value_and_grad", "vjp", "jvp", "hvp", "jacfwd", "jacrev", "jacobian", "hessian",
    "jit", "stop_gradient", "vmap", "custom_jvp", "custom_vjp", "elementwise",
    "check_grads", "scan", "fori_loop", "while_loop",
    "cond", "switch", "checkpoint", "spec", "register_pytree_node", "tree_flatten", "tree_unflatten",
    "tree_map",
    "Spec", "CompiledFunction", "Lowered", "GeneratedCodeError", "SymgradError", "TracingError", "TracedBoolError",
    "TracedConversionError", "MutationError",
    "UnsupportedFunctionError", "ShapeError", "GradientError", "NotDifferentiableError",
    "NonScalarOutputError", "ArgumentError", "DtypePromotionError", "DtypePromotionWarning",
    "GradientCheckError",
]
