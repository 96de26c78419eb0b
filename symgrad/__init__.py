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
__version__ = "0.1.0"

from .api import (CompiledFunction, Lowered, grad, hessian, hvp, jacfwd, jacobian, jacrev, jit,
                  jvp, stop_gradient, value_and_grad, vjp)
from .errors import (ArgumentError, GeneratedCodeError, GradientError, NonScalarOutputError,
                     NotDifferentiableError, ShapeError, SymgradError, TracedBoolError,
                     TracingError, UnsupportedFunctionError)
from .pytree import register_pytree_node, tree_flatten, tree_map, tree_unflatten
from .specs import Spec, spec
from .check import GradientCheckError, check_grads
from .custom import custom_jvp, custom_vjp
from .user_ops import elementwise
from .vmap import vmap

__all__ = [
    "grad", "value_and_grad", "vjp", "jvp", "hvp", "jacfwd", "jacrev", "jacobian", "hessian",
    "jit", "stop_gradient", "vmap", "custom_jvp", "custom_vjp", "elementwise",
    "check_grads", "spec", "register_pytree_node", "tree_flatten", "tree_unflatten",
    "tree_map",
    "Spec", "CompiledFunction", "Lowered", "GeneratedCodeError", "SymgradError", "TracingError", "TracedBoolError",
    "UnsupportedFunctionError", "ShapeError", "GradientError", "NotDifferentiableError",
    "NonScalarOutputError", "ArgumentError", "GradientCheckError",
]
