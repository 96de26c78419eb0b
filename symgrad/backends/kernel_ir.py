"""The kernel IR that the fused backends share (C now, CUDA next): a schedule of steps.

From the transform's output nodes (forward and backward together) it builds:

* `Kernel`: one loop nest over an iteration shape. Its members are elementwise values
  (SymPy expressions over other values, as `schedule.prepare` gives them, simplified with the
  stability rewrites every backend runs); reductions (sum, max, min over any axes, the
  broadcast-reductions of VJPs included) whose input has the kernel's shape are fused in as
  reduction outputs. A value becomes a member of the kernel of its shape at the earliest
  *generation* its operands allow: generation = number of library steps or kernel ends on
  the longest path from the inputs, so everything of one shape and one generation -- however
  it is connected -- is one maximal loop nest.
* `LibraryStep`: a structural value (matrix product, transpose, indexing, ...) computed by
  the array library between kernels (numpy on the CPU, CuPy on the GPU).

Broadcasting is index arithmetic (`index_terms`: 64-bit flat index -> the operand's offset);
a buffer of the loop's own shape is read at the flat index. The function's inputs may be
views of any strides (`Kernel.strided_loads`): a backend gives such a kernel a second
variant reading them at strides known only at run time (`strided_terms`), and takes it when
an input is not C-contiguous; the contiguous variant keeps flat indexing. Reductions are deterministic:
the loop runs in chunks of fixed size, each chunk reduces its terms in a fixed order and
writes its partial, and the partials are combined in chunk order after the loop -- the same
bits for any number of threads. Nothing here knows C: the printers read this data.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import sympy as sp

from ..ir.graph import Node, Shape
from ..schedule.prepare import prepare
from ..symbolic.lift import Lifted, Value

CHUNK = 4096  # elements a chunk; fixed, so that reductions give the same bits on any machine
REDUCTIONS = ("sum", "max", "min")
# A partial reduction keeps one partial row per chunk; beyond this many partials per element
# of the loop it is left to the library (a reduction to nearly the loop's own size).
MAX_PARTIALS_PER_ELEMENT = 4


@dataclass(eq=False)
class Reduction:
    value: Value  # the reduction's own value (its buffer is its result)
    source: sp.Symbol  # what is reduced: a member or a loaded buffer of the kernel
    op: str  # 'sum', 'max' or 'min'
    kept_shape: Shape  # the result with the reduced axes kept as 1 (aligned to the loop)

    @property
    def size(self) -> int:
        return _size(self.kept_shape)

    @property
    def full(self) -> bool:
        return self.size == 1


@dataclass(eq=False)
class Kernel:
    name: str
    shape: Shape
    members: list[Value] = field(default_factory=list)
    reductions: list[Reduction] = field(default_factory=list)
    loads: list[Value] = field(default_factory=list)  # buffers read (computed before)
    stores: list[Value] = field(default_factory=list)  # members written to their buffers
    temporaries: list[tuple[sp.Symbol, sp.Expr]] = field(default_factory=list)  # from CSE

    @property
    def size(self) -> int:
        return _size(self.shape)

    @property
    def chunks(self) -> int:
        return max(1, -(-self.size // CHUNK))

    @property
    def strided_loads(self) -> list[Value]:
        """The loads that may be views of any strides: the function's inputs of more than
        one element (the backend gives the kernel a variant reading them at their strides,
        `strided_terms`; buffers it made itself are contiguous)."""
        return [v for v in self.loads if v.node.op == "input" and v.node.size > 1]


@dataclass(eq=False)
class LibraryStep:
    value: Value


@dataclass
class KernelPlan:
    lifted: Lifted
    steps: list[Kernel | LibraryStep]
    buffers: list[Value]  # every value that lives in an array (inputs excluded)
    rewrites: list[str]


def _size(shape: Shape) -> int:
    size = 1
    for d in shape:
        size *= d
    return size


def index_terms(shape: Shape, loop: Shape) -> list[tuple[int, int | None, int]] | None:
    """How a buffer of `shape` (broadcast to `loop`, right-aligned) is read at flat loop
    index i: offset = sum(((i // divisor) % modulus) * stride) over the returned
    (divisor, modulus or None, stride) terms; None means the flat index itself, [] offset 0.
    Adjacent axes that are both kept are merged into one term."""
    if tuple(shape) == tuple(loop):
        return None
    aligned = (1,) * (len(loop) - len(shape)) + tuple(shape)
    loop_strides = [_size(loop[k + 1:]) for k in range(len(loop))]
    own_strides = [_size(aligned[k + 1:]) for k in range(len(loop))]
    terms: list[tuple[int, int | None, int]] = []
    k = 0
    while k < len(loop):
        if aligned[k] == 1 or loop[k] == 1:
            k += 1
            continue
        start = k
        while k + 1 < len(loop) and aligned[k + 1] == loop[k + 1] and loop[k + 1] != 1:
            k += 1
        modulus = _size(loop[start:k + 1])
        divisor = loop_strides[k]
        leading = all(loop[j] == 1 for j in range(start))
        terms.append((divisor, None if leading else modulus, own_strides[k]))
        k += 1
    return terms


def strided_terms(shape: Shape, loop: Shape) -> list[tuple[int, int, int | None]]:
    """How a view of `shape` (broadcast to `loop`, right-aligned) whose strides are known
    only at run time is read at flat loop index i: offset = sum(((i // divisor) % modulus) *
    strides[axis]) over the returned (axis of `shape`, divisor, modulus or None) terms, one a
    kept axis (a view's axes do not merge: its strides are arbitrary)."""
    pad = len(loop) - len(shape)
    terms: list[tuple[int, int, int | None]] = []
    for k in range(pad, len(loop)):
        if shape[k - pad] == 1 or loop[k] == 1:
            continue
        leading = all(loop[j] == 1 for j in range(k))
        terms.append((k - pad, _size(loop[k + 1:]), None if leading else loop[k]))
    return terms


def schedule(outputs: Sequence[Node], hints: dict[Node, str], fast_math: bool = False
             ) -> KernelPlan:
    """The shared front (schedule.prepare: lifted, the stable forms every backend runs), then
    values grouped into kernels and library steps."""
    prepared = prepare(outputs, hints, fast_math)
    lifted, rewrites = prepared.lifted, prepared.rewrites
    by_symbol = {v.symbol: v for v in lifted.values}

    time: dict[Value, int] = {}
    ready: dict[Value, int] = {}
    cluster: dict[Value, tuple[Shape, int]] = {}
    library: list[tuple[int, Value]] = []
    for value in lifted.values:
        node = value.node
        if node.op == "input":
            time[value] = ready[value] = 0
        elif value.expr is not None and not _ordered_symbols(value.expr):
            time[value], ready[value] = 0, 1  # a constant fill: the library makes it
            library.append((0, value))
        elif value.expr is not None:
            t = 0
            for symbol in _ordered_symbols(value.expr):
                d = by_symbol[symbol]
                local = cluster.get(d) == (node.shape, time[d]) and d.expr is not None
                t = max(t, time[d] if local else ready[d])
            time[value], ready[value] = t, t + 1
            cluster[value] = (node.shape, t)
        elif node.op in REDUCTIONS and _fusable(node):
            source = lifted.of_node[node.inputs[0]]
            # fused into its source's loop; a buffer (a library value, a constant fill, a
            # reduction's result) is read by a loop after it is made
            t = time[source] if source in cluster and source.expr is not None else ready[source]
            time[value], ready[value] = t, t + 1
            cluster[value] = (source.node.shape, t)
        else:
            t = max((ready[lifted.of_node[i]] for i in node.inputs), default=0)
            time[value], ready[value] = t, t + 1
            library.append((t, value))

    kernels: dict[tuple[Shape, int], Kernel] = {}
    for value in lifted.values:  # creation order: forward, then backward, as the user reads
        if value not in cluster:
            continue
        place = cluster[value]
        kernel = kernels.get(place)
        if kernel is None:
            kernel = kernels[place] = Kernel(f"kernel_{len(kernels)}", place[0])
        if value.expr is not None:
            kernel.members.append(value)
        else:
            node = value.node
            axes = node.param("axes")
            kept = tuple(1 if k in axes else d for k, d in enumerate(node.inputs[0].shape))
            kernel.reductions.append(Reduction(value, lifted.of_node[node.inputs[0]].symbol,
                                               node.op, kept))

    output_values = set(lifted.outputs)
    stored: set[Value] = set(v for v in output_values if v in cluster and v.expr is not None)
    for kernel in kernels.values():
        members = set(kernel.members)
        reads: list[sp.Symbol] = []
        for value in kernel.members:
            reads.extend(_ordered_symbols(value.expr))
        reads.extend(r.source for r in kernel.reductions)
        for symbol in dict.fromkeys(reads):
            d = by_symbol[symbol]
            if d not in members:
                kernel.loads.append(d)
                stored.add(d)
    for _, value in library:
        if value.expr is not None:
            continue  # a constant fill reads nothing
        for i in value.node.inputs:
            stored.add(lifted.of_node[i])
    for kernel in kernels.values():
        kernel.stores = [v for v in kernel.members if v in stored]
        _eliminate_common(kernel)

    steps: list[tuple[int, int, Kernel | LibraryStep]] = []
    for (shape, t), kernel in kernels.items():
        first = min(v.node.serial for v in kernel.members + [r.value for r in kernel.reductions])
        steps.append((t, first, kernel))
    for t, value in library:
        steps.append((t, value.node.serial, LibraryStep(value)))
    ordered = [step for _, _, step in sorted(steps, key=lambda s: (s[0], s[1]))]
    buffers = [v for v in lifted.values if v.node.op != "input" and (
        v in stored or v.expr is None or v in output_values)]
    return KernelPlan(lifted, ordered, buffers, sorted(rewrites))


def _fusable(node: Node) -> bool:
    """A reduction the loop nest can carry: its partials stay within a small multiple of the
    loop's own size."""
    source = node.inputs[0]
    if node.op != "sum" and not node.is_float:
        return False  # integer extrema: numpy's own
    kept = _size(node.shape)
    chunks = max(1, -(-source.size // CHUNK))
    return source.size > 0 and kept * chunks <= MAX_PARTIALS_PER_ELEMENT * source.size + CHUNK


def _eliminate_common(kernel: Kernel) -> None:
    """One `sympy.cse` over the kernel's members: forward and backward share their work."""
    exprs = [v.expr for v in kernel.members]
    if not exprs:
        return
    symbols = sp.numbered_symbols(f"{kernel.name}_t", real=True)
    replacements, reduced = sp.cse(exprs, symbols=symbols, order="none")
    kernel.temporaries = list(replacements)
    for value, expr in zip(kernel.members, reduced):
        value.expr = expr


def _ordered_symbols(expr: sp.Basic) -> list[sp.Symbol]:
    """The value symbols an expression reads, in a deterministic order."""
    from ..symbolic.expressions import Literal

    return sorted((s for s in expr.free_symbols if not isinstance(s, Literal)),
                  key=lambda s: s.name)


def fused_plan(fn: Any, graph: Any, structure: Any, specs: Sequence[Any], transform: Any,
               name: str, key: str, backend: str, refused: frozenset, speed_rules: Any,
               progress: Any = None, graph_digest: str | None = None) -> FusedPlan:
    """What a fused backend prints, from one signature: the shared graph stage, a clear
    refusal of an op the backend does not support (`refused`), the kernel schedule and the
    header. Run inside `common.without_cyclic_gc()`."""
    from ..ir.graph import topological_order
    from ..errors import GeneratedCodeError
    from .common import source_header, transformed_outputs

    if progress is not None:
        progress.stage("differentiate")
    outputs, out_structure, params, hints, described, graph_rewrites = \
        transformed_outputs(graph, structure, specs, transform, speed_rules)
    for node in topological_order(outputs):
        if node.op in refused:
            raise GeneratedCodeError(
                f"backend={backend!r} does not support {node.op} yet (at {node.site}); use "
                "backend='numpy' for this function")
    if progress is not None:
        progress.stage("simplify")
    plan = schedule(outputs, hints, fast_math=transform.fast_math)
    rewrites = sorted(set(plan.rewrites) | set(graph_rewrites))
    header = source_header(fn, name, specs, described, graph_digest or key, rewrites,
                           fast_math=transform.fast_math)
    if progress is not None:
        progress.stage("render")
    return FusedPlan(plan, outputs, out_structure, params, hints, header)


@dataclass
class FusedPlan:
    """A fused backend's input to its renderer (`fused_plan`)."""

    schedule: KernelPlan
    outputs: list
    out_structure: Any
    params: list[str]
    hints: dict
    header: dict
