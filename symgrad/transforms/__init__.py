"""The user-facing transforms' machinery: `CompiledFunction` (one compilation per
signature), composition inside traced code, Jacobians and Hessians, vmap, check_grads.
"""
