"""`symgrad codegen`, `show`, `graph`, `math`: generate and read code for FILE.py:FUNCTION."""
from __future__ import annotations

import argparse
import sys

from ..export import complete_arguments, export
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
    return 0


def run_graph(args: argparse.Namespace) -> int:
    target = resolve(args)
    lowered = target.compiled.lower(*complete_arguments(target.compiled, target.args))
    print(f"# forward: {target.name}({lowered.signature})")
    print(lowered.graph.pretty())
    if target.compiled.transform.kind != "jit":
        print(f"\n# with the backward pass ({target.compiled.transform.describe(target.compiled.params)})")
        print(lowered.derivative_graph)
    return 0


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
    "graph": (run_graph, add_target,
              "print the traced forward graph and the backward graph (one line a node)",
              f"example:\n  symgrad graph {TARGET_EXAMPLE} --wrt w,b --mode grad"),
    "math": (run_math, add_math, "print every generated statement as math",
             f"example:\n  symgrad math {TARGET_EXAMPLE} --wrt b --latex"),
}
