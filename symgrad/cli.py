"""The `symgrad` command line (also `python -m symgrad`).

Each subcommand is one function registered in `COMMANDS`; errors are one clear line on stderr
and a non-zero exit (a traceback only with --debug).
"""
from __future__ import annotations

import argparse
import runpy
import sys
from pathlib import Path
from typing import Callable, Sequence

from .errors import SymgradError

_PACKAGE_DIR = Path(__file__).resolve().parent
TUTORIAL = "autograd_tutorial.py"


def tutorial_path() -> Path:
    """The tutorial inside an installed wheel, or the repository's examples/ from source."""
    for candidate in (_PACKAGE_DIR / "examples" / TUTORIAL, _PACKAGE_DIR.parent / "examples" / TUTORIAL):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"the tutorial {TUTORIAL} is missing from this installation")


def run_demo(args: argparse.Namespace) -> int:
    namespace = runpy.run_path(str(tutorial_path()), run_name="symgrad_tutorial")
    namespace["main"]()
    return 0


def list_ops(args: argparse.Namespace) -> int:
    from .catalog import render

    sys.stdout.write(render())
    return 0


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str, str]] = {
    "demo": (run_demo, "run the autograd tutorial the symgrad way",
             "example:\n  symgrad demo"),
    "ops": (list_ops, "list the supported numpy functions, methods and graph ops (markdown)",
            "example:\n  symgrad ops > docs/ops.md"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="symgrad",
        description="Trace numpy functions, differentiate them symbolically, generate numpy code.",
        epilog="example:\n  symgrad demo",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, summary, example) in COMMANDS.items():
        sub.add_parser(name, help=summary, description=summary, epilog=example,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    handler = COMMANDS[args.command][0]
    try:
        return handler(args)
    except (SymgradError, OSError, ValueError) as error:
        if args.debug:
            raise
        print(f"symgrad {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
