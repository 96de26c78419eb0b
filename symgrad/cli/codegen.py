"""`symgrad codegen`, `show`, `graph`, `math`: generate and read code for FILE.py:FUNCTION."""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from .export import complete_arguments, export
from ..tools.picture import FORMATS, render
from .target import add_target_arguments, resolve

TARGET_EXAMPLE = "model.py:loss --arg x=f64[5] --arg y=f64[3] --arg w=f64[5,3] --arg b=f64[3]"


def run_codegen(args: argparse.Namespace) -> int:
    target = resolve(args)
    exported = export(target.compiled, target.args, args.output, test=args.test)
    for path in (exported.module, exported.forward, exported.test):
        if path is not None:
            print(path)
    return 0


def run_show(args: argparse.Namespace) -> int:
    target = resolve(args)
    lowered = target.compiled.lower(*complete_arguments(target.compiled, target.args))
    sys.stdout.write(lowered.source)
    kernels = {"c": ".c", "cuda": ".cu"}.get(target.compiled.backend)
    if kernels is not None:  # the launcher, then the kernels it calls
        sys.stdout.write(f"\n/* ---- {lowered.path.with_suffix(kernels).name} ---- */\n")
        sys.stdout.write(lowered.path.with_suffix(kernels).read_text())
    return 0


def run_graph(args: argparse.Namespace) -> int:
    target = resolve(args)
    lowered = target.compiled.lower(*complete_arguments(target.compiled, target.args))
    with_backward = target.compiled.transform.kind != "jit"
    if args.format == "text":
        text = f"# forward: {target.name}({lowered.signature})\n{lowered.graph.pretty()}\n"
        if with_backward:
            text += (f"\n# with the backward pass "
                     f"({target.compiled.transform.describe(target.compiled.params)})\n"
                     f"{lowered.derivative_graph}\n")
        _write(args.output, text.encode("utf-8"))
        return 0
    graph = lowered.derivative_graph if with_backward else lowered.graph
    graph = dataclasses.replace(graph, title=f"{target.name}({lowered.signature})\\n"
                                             f"{'forward and backward' if with_backward else 'forward'}")
    dot_text = graph.to_dot()
    _write(args.output, dot_text.encode("utf-8") if args.format == "dot"
           else render(dot_text, args.format))
    return 0


def _write(output: str | None, data: bytes) -> None:
    """To the file `output` (written whole, then renamed), else to stdout."""
    if output is None or output == "-":
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    path = Path(output)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    partial.replace(path)
    print(path, file=sys.stderr)


def run_math(args: argparse.Namespace) -> int:
    target = resolve(args)
    lowered = target.compiled.lower(*complete_arguments(target.compiled, target.args))
    sys.stdout.write(lowered.math(latex=args.latex))
    return 0


def add_codegen(parser: argparse.ArgumentParser) -> None:
    add_target_arguments(parser)
    parser.add_argument("-o", "--output", default="generated", metavar="DIR",
                        help="directory for the module (default: generated/)")
    parser.add_argument("--test", action="store_true",
                        help="also write test_<module>.py, a pytest file that checks the "
                             "module against central finite differences")


def add_target(parser: argparse.ArgumentParser) -> None:
    add_target_arguments(parser)


def add_graph(parser: argparse.ArgumentParser) -> None:
    add_target_arguments(parser)
    parser.add_argument("--format", choices=FORMATS, default="text",
                        help="text (one line a node, the default), dot (Graphviz source), or "
                             "a picture: svg, png (needs Graphviz's `dot` program)")
    parser.add_argument("-o", "--output", default=None, metavar="FILE",
                        help="write to FILE instead of stdout")


def add_math(parser: argparse.ArgumentParser) -> None:
    add_target_arguments(parser)
    parser.add_argument("--latex", action="store_true", help="LaTeX instead of pretty text")


# name -> (handler, add arguments, one-line summary, example)
COMMANDS = {
    "codegen": (run_codegen, add_codegen,
                "write a standalone numpy module (and optionally its finite-difference test)",
                f"example:\n  symgrad codegen {TARGET_EXAMPLE} \\\n"
                "      --wrt w,b --mode value_and_grad --backend numpy -o generated/ --test"),
    "show": (run_show, add_target, "print the generated source",
             f"example:\n  symgrad show {TARGET_EXAMPLE} --wrt w,b"),
    "graph": (run_graph, add_graph,
              "the traced forward graph and the backward graph: text (one line a node) or a "
              "picture (dot, svg, png)",
              f"examples:\n  symgrad graph {TARGET_EXAMPLE} --wrt w,b --mode grad\n"
              f"  symgrad graph {TARGET_EXAMPLE} --wrt w,b --format svg -o loss.svg"),
    "math": (run_math, add_math, "print every generated statement as math",
             f"example:\n  symgrad math {TARGET_EXAMPLE} --wrt b --latex"),
}
