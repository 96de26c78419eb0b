"""The `symgrad` command line (also `python -m symgrad`).

Each subcommand is one handler; errors are one clear line on stderr and a non-zero exit (a
traceback only with --debug). Commands: codegen, show, graph, math (code for FILE.py:FUNCTION at
a signature), cache (info, clear, prune, why), regenerate (generated/ from its manifest), ops
(the supported operations), demo.

The public internal entry point (for the tests and the tools): `main(argv)`, the `COMMANDS`
table, `tutorial_path()`, the cache commands' `parse_size` and `parse_age`, and the module
`export` (`export.export(compiled, args, directory)`: a signature's code written out as a
package of its own).
"""
from __future__ import annotations

import argparse
import platform
import runpy
import sys
import warnings
from pathlib import Path
from typing import Callable, NoReturn, Sequence

from ..errors import SymgradError
from . import export
from .cache_commands import add_cache, parse_age, parse_size, run_cache
from .codegen import COMMANDS as CODEGEN_COMMANDS
from .regenerate import add_regenerate, run_regenerate

__all__ = ["main", "COMMANDS", "tutorial_path", "parse_size", "parse_age", "export"]

_PACKAGE_DIR = Path(__file__).resolve().parent.parent
TUTORIAL = "autograd_tutorial.py"


def tutorial_path() -> Path:
    """The tutorial inside an installed wheel, or the repository's examples/ from source."""
    for candidate in (_PACKAGE_DIR / "examples" / TUTORIAL,
                      _PACKAGE_DIR.parent / "examples" / TUTORIAL):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"the tutorial {TUTORIAL} is missing from this installation")


def run_demo(args: argparse.Namespace) -> int:
    namespace = runpy.run_path(str(tutorial_path()), run_name="symgrad_tutorial")
    namespace["main"]()
    return 0


def list_ops(args: argparse.Namespace) -> int:
    from ..tools.catalog import render

    sys.stdout.write(render())
    return 0


class Parser(argparse.ArgumentParser):
    """argparse: a usage error prints the usage and one error line on stderr, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _Version(argparse.Action):
    """`--version`: the versions are looked up only when asked for."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> NoReturn:
        print(version_text())
        parser.exit(0)


def version_text() -> str:
    """symgrad's version, then numpy's, SymPy's and Python's (SymPy is not imported)."""
    from importlib import metadata

    from .._version import __version__

    def installed(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    return (f"symgrad {__version__}\nnumpy {installed('numpy')}\nsympy {installed('sympy')}\n"
            f"python {platform.python_version()} ({sys.executable})")


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    pass


# name -> (handler, add arguments, summary, example)
COMMANDS: dict[str, tuple[Callable, Callable, str, str]] = {
    **CODEGEN_COMMANDS,
    "cache": (run_cache, None,  # sub-actions, added in build_parser
              "the disk cache: info, clear, prune, why (a call missed)",
              "examples:\n  symgrad cache info\n  symgrad cache prune --max-size 100M "
              "--older-than 30d\n  symgrad cache why model.py:loss --arg x=f64[5] --arg w=f64[5]"),
    "regenerate": (run_regenerate, add_regenerate,
                   "rebuild generated/ from examples/codegen.txt (--check: compare only)",
                   "examples:\n  symgrad regenerate generated/\n"
                   "  symgrad regenerate --check generated/"),
    "demo": (run_demo, _no_arguments, "run the autograd tutorial the symgrad way",
             "example:\n  symgrad demo"),
    "ops": (list_ops, _no_arguments,
            "list the supported numpy functions, methods and graph ops (markdown)",
            "example:\n  symgrad ops > docs/ops.md"),
}


def _subparser(group, name: str, summary: str, example: str) -> argparse.ArgumentParser:
    parser = group.add_parser(name, help=summary, description=summary, epilog=example,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show full tracebacks on errors")
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="symgrad",
        description="Trace numpy functions, differentiate them symbolically, generate numpy code.",
        epilog="examples:\n  symgrad demo\n  symgrad show model.py:loss --arg x=f64[5] "
               "--arg w=f64[5,3] --wrt w\n  symgrad codegen model.py:loss --arg x=f64[5] "
               "--arg w=f64[5,3] --wrt w -o generated/\n  symgrad cache info\n\n"
               "`symgrad COMMAND --help` shows each command's options and an example.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    parser.add_argument("--version", action=_Version,
                        help="symgrad's, numpy's, SymPy's and Python's versions")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name, (_, add_arguments, summary, example) in COMMANDS.items():
        command = _subparser(sub, name, summary, example)
        if name == "cache":
            add_cache(command, _subparser)
        else:
            add_arguments(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from ..tools import progress

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.error("a command is required")
    handler = COMMANDS[args.command][0]
    name = " ".join(filter(None, [args.command, getattr(args, "action", None)]))
    progress.force(True)
    debug = getattr(args, "debug", False)
    warnings.showwarning = _one_line_warning
    try:
        return handler(args)
    except KeyboardInterrupt:
        print(f"symgrad {name}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except (SymgradError, OSError, ValueError) as error:
        if debug:
            raise
        print(f"symgrad {name}: error: {_one_line(error)}", file=sys.stderr)
        return 1
    except Exception as error:  # a bug in symgrad: still one line, the traceback on request
        if debug:
            raise
        print(f"symgrad {name}: internal error: {type(error).__name__}: "
              f"{_one_line(error)} (run `symgrad --debug {name} ...` for the traceback)",
              file=sys.stderr)
        return 1
    finally:
        progress.force(None)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"symgrad: warning: {_one_line(message)}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
