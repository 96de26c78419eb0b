"""The kernel IR printed as CUDA (templates/cuda/kernels.cu.j2) and its CuPy launcher
(templates/cuda/launcher.py.j2).

The C renderer (`backends/c/render.py`) names the values and prints each statement; this
subclass lays them out for the GPU:

* a kernel without reductions is one grid-stride loop over the flat index `i` (`long long`);
  an operand of the loop's shape is read at `i`, a broadcast one at the index arithmetic of
  `kernel_ir.index_terms`;
* a kernel with reductions walks its chunks (`kernel_ir.CHUNK` elements) grid-stride, one
  block a chunk: each thread combines its elements of the chunk in order, the block combines
  the threads' values in shared memory in a fixed tree (`sg_block_*`), and thread 0 writes
  the chunk's partial; a reduction to more than one value writes its terms instead. The
  kernel's `_finish` kernel then combines the partials in chunk order (one block), or each
  output's terms in index order (a thread an output). Nothing depends on the grid's size:
  the same bits for any number of blocks, which the host shim's small grids check.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...ir.graph import Node
from ..numpy.render import environment
from ..c.render import RESERVED, Line, Renderer, comment_of, index_code, returns_code
from ..c.printer import FLOAT_TYPES
from ..kernel_ir import CHUNK, Kernel, LibraryStep, Reduction, KernelPlan, index_terms
from .printer import CUDA_TYPES, CudaExpressionPrinter

THREADS = 256  # threads a block; the reductions' shared-memory trees are this wide
MAX_BLOCKS = 1024  # a grid-stride loop needs no more to fill a GPU (132 SMs x 8 blocks)
# C++ and CUDA names a value must not take, besides C's.
CUDA_NAMES = {
    "blockIdx", "threadIdx", "blockDim", "gridDim", "warpSize", "dim3", "min", "max", "new",
    "delete", "class", "template", "this", "namespace", "operator", "private", "public",
    "protected", "virtual", "friend", "try", "catch", "throw", "typename", "using", "export",
    "mutable", "explicit", "and", "or", "not", "xor", "bitand", "bitor", "compl", "and_eq",
    "or_eq", "xor_eq", "not_eq", "nullptr", "constexpr", "decltype", "noexcept",
    "static_assert", "thread_local", "alignas", "alignof", "char16_t", "char32_t", "wchar_t",
    "typeid", "concept", "requires", "asm", "cupy", "numpy", "j", "step",
    "static_cast", "const_cast", "reinterpret_cast", "dynamic_cast", "union", "signed",
}


@dataclass
class CudaKernel:
    name: str
    shape: list[int]
    size: int
    chunks: int
    blocks: int
    params: list[str]
    statements: list[Line]
    reductions: list[dict[str, Any]]
    arguments: list[str]  # launcher side, in param order
    finish_params: list[str] = field(default_factory=list)
    finish_arguments: list[str] = field(default_factory=list)
    finish_blocks: int = 1
    buffers: list[tuple[str, int, str]] = field(default_factory=list)  # (name, size, dtype)


def _blocks(work: int) -> int:
    return max(1, min(MAX_BLOCKS, -(-work // THREADS)))


class CudaRenderer(Renderer):
    reserved = RESERVED | CUDA_NAMES
    printer = CudaExpressionPrinter
    types = CUDA_TYPES

    def __init__(self, *args: Any):
        super().__init__(*args)
        self.block_helpers: set[tuple[str, str, str]] = set()  # (op, dtype, C++ type)

    def kernel(self, kernel: Kernel) -> CudaKernel:  # type: ignore[override]
        texts: dict = {}
        params, arguments = [], []
        for value in kernel.loads:
            name = self.names[value.symbol]
            texts[value.symbol] = f"{name}[{index_code(index_terms(value.node.shape, kernel.shape))}]"
            params.append(f"const {CUDA_TYPES[value.node.dtype]} *__restrict__ {name}")
            arguments.append(name)
        lines, last_comment = self._statements(kernel, texts)
        for value in kernel.stores:
            name = self.names[value.symbol]
            pointer = self.namer.claim(f"out_{name}")
            params.append(f"{CUDA_TYPES[value.node.dtype]} *__restrict__ {pointer}")
            arguments.append(name)
            lines.append(Line(f"{pointer}[i] = {name};"))
        rendered = CudaKernel(kernel.name, list(kernel.shape), kernel.size, kernel.chunks,
                              _blocks(kernel.size), params, lines, [], arguments)
        if kernel.reductions:
            rendered.blocks = min(MAX_BLOCKS, kernel.chunks)
        widest = 1
        for r in kernel.reductions:
            reduction = self._gpu_reduction(kernel, r, texts)
            comment = reduction["comment"]
            lines.append(Line(reduction["step"], None if comment == last_comment else comment))
            last_comment = comment
            buffer = reduction["buffer"]
            params.append(f"{reduction['ctype']} *__restrict__ {buffer}")
            arguments.append(buffer)
            rendered.buffers.append((buffer, reduction["buffer_size"], reduction["dtype"]))
            rendered.finish_params.append(f"const {reduction['ctype']} *__restrict__ {buffer}")
            rendered.finish_arguments.append(buffer)
            rendered.reductions.append(reduction)
            if not r.full:
                widest = max(widest, r.size)
        for reduction in rendered.reductions:
            rendered.finish_params.append(f"{reduction['out_ctype']} *__restrict__ "
                                          f"{reduction['out']}")
            rendered.finish_arguments.append(reduction["out"])
        rendered.finish_blocks = _blocks(widest)
        return rendered

    def _gpu_reduction(self, kernel: Kernel, r: Reduction, texts: dict) -> dict[str, Any]:
        name = self.names[r.value.symbol]
        dtype = r.value.node.dtype
        ctype = CUDA_TYPES[dtype]
        op = {"sum": "sum", "max": "maximum", "min": "minimum"}[r.op]
        if r.op != "sum":  # numpy's NaN-propagating maximum/minimum, in the element type
            self.helpers.add({"max": "Max", "min": "Min"}[r.op])
            self.float_types.add(dtype)
        suffix = "f" if dtype == "float32" else ""
        term = texts[r.source]
        identity = {"sum": "0", "max": "-INFINITY", "min": "INFINITY"}[r.op]
        combine = {"sum": "{a} + {b}", "max": f"sg_maximum{suffix}({{a}}, {{b}})",
                   "min": f"sg_minimum{suffix}({{a}}, {{b}})"}[r.op]
        result = {"out": name, "out_ctype": ctype, "ctype": ctype, "dtype": dtype,
                  "full": r.full, "size": r.size, "identity": identity,
                  "comment": comment_of(r.value.node)}
        if r.full:
            self.block_helpers.add((op, dtype, ctype))
            accumulator = self.namer.claim(f"{name}_thread")
            buffer = self.namer.claim(f"{name}_parts")
            result.update(
                accumulator=accumulator, buffer=buffer, buffer_size=kernel.chunks,
                shared=self.namer.claim(f"{name}_shared"), block=f"sg_block_{op}_{dtype}",
                total=self.namer.claim(f"{name}_block"),
                step=f"{accumulator} = {combine.format(a=accumulator, b=term)};",
                combine=combine.format(a=accumulator, b=f"{buffer}[chunk]"))
            return result
        buffer = self.namer.claim(f"{name}_terms")
        accumulator = self.namer.claim(f"{name}_total")
        loop = kernel.shape
        kept = r.kept_shape
        strides = [_product(loop[a + 1:]) for a in range(len(loop))]
        kept_axes = [a for a in range(len(loop)) if kept[a] == loop[a] and loop[a] != 1]
        reduced_axes = [a for a in range(len(loop)) if kept[a] == 1 and loop[a] != 1]
        count = _product([loop[a] for a in reduced_axes])
        result.update(
            buffer=buffer, buffer_size=kernel.size, accumulator=accumulator, count=count,
            step=f"{buffer}[i] = {term};",
            offset=" + ".join(p for p in (index_code(_axis_terms(kept_axes, loop, strides), "k"),
                                          index_code(_axis_terms(reduced_axes, loop, strides), "j"))
                              if p != "0") or "0",
            combine=combine.format(a=accumulator, b=f"{buffer}[{{offset}}]"))
        result["combine"] = result["combine"].format(offset=result["offset"])
        return result

    # -- the launcher ------------------------------------------------------------------------
    def launcher(self, rendered: dict[Kernel, CudaKernel]  # type: ignore[override]
                 ) -> tuple[list[Line], list[tuple[str, str]], str]:
        lines: list[Line] = []
        constants: list[tuple[str, str]] = []
        on_host = self.namer.claim("on_host")
        lines.append(Line(f"{on_host} = _on_host({', '.join(self.param_names)})"))
        loaded = {v for step in self.plan.steps if isinstance(step, Kernel) for v in step.loads}
        for value in self.plan.lifted.values:
            if value.node.op == "input":
                name = self.names[value.symbol]
                spelled = "np.ascontiguousarray" if value in loaded else "np.asarray"
                lines.append(Line(f"{name} = {spelled}({name})"))
        for step in self.plan.steps:
            if isinstance(step, LibraryStep):
                lines.extend(self.library_step(step.value, loaded, constants))
                continue
            kernel = rendered[step]
            for value in step.stores + [r.value for r in step.reductions]:
                node = value.node
                lines.append(Line(f"{self.names[value.symbol]} = np.empty({node.shape}, "
                                  f"dtype=np.{node.dtype})"))
            for buffer, size, dtype in kernel.buffers:
                lines.append(Line(f"{buffer} = np.empty(({size},), dtype=np.{dtype})"))
            lines.append(Line(f"_launch({', '.join([kernel.name] + kernel.arguments)})"))
            if kernel.reductions:
                lines.append(Line(f"_launch({', '.join([kernel.name + '_finish'] + kernel.finish_arguments)})"))
        return lines, constants, on_host


def _product(sizes: Any) -> int:
    total = 1
    for s in sizes:
        total *= s
    return total


def _axis_terms(axes: list[int], loop: Any, strides: list[int]
                ) -> list[tuple[int, int | None, int]]:
    """(divisor, modulus, stride) terms taking a flat index over the sizes of `axes` (in
    order) to the loop's flat offset of those axes."""
    terms = []
    for position, a in enumerate(axes):
        divisor = _product([loop[b] for b in axes[position + 1:]])
        terms.append((divisor, None if position == 0 else loop[a], strides[a]))
    return terms


def kernel_table(rendered: list[CudaKernel]) -> list[tuple[str, int, int]]:
    """(name, argument count, blocks) of every kernel the launcher binds, in order."""
    table = []
    for kernel in rendered:
        table.append((kernel.name, len(kernel.arguments), kernel.blocks))
        if kernel.reductions:
            table.append((kernel.name + "_finish", len(kernel.finish_arguments),
                          kernel.finish_blocks))
    return table


def render(plan: KernelPlan, params: list[str], hints: dict[Node, str], structure: Any,
           function_name: str, header: dict[str, Any]
           ) -> tuple[str, str, list[tuple[str, int, int]]]:
    """(the .cu text, the launcher text, the kernels as (name, argument count, blocks))."""
    renderer = CudaRenderer(plan, params, hints)
    kernels = [step for step in plan.steps if isinstance(step, Kernel)]
    rendered = {k: renderer.kernel(k) for k in kernels}
    lines, constants, on_host = renderer.launcher(rendered)
    returns = returns_code(structure, plan, renderer.names, lines, renderer.namer)
    if isinstance(structure, tuple):  # one argument of _returned
        returns = f"({returns})"
    types = [(CUDA_TYPES[t], "f" if t == "float32" else "") for t in FLOAT_TYPES
             if t in renderer.float_types]
    env = environment()
    table = kernel_table(list(rendered.values()))
    cu_text = env.get_template("cuda/kernels.cu.j2").render(
        header=header, chunk=CHUNK, threads=THREADS, kernels=list(rendered.values()),
        helpers=sorted(renderer.helpers), types=types, reduction_helpers=[],
        inline="__host__ __device__ inline",
        block_helpers=sorted(renderer.block_helpers))
    launcher = env.get_template("cuda/launcher.py.j2").render(
        header=header, constants=constants, kernels=table, function_name=function_name,
        params=renderer.param_names, statements=lines, returns=returns, on_host=on_host,
        threads=THREADS)
    return cu_text, launcher, table
