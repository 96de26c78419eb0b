"""`symgrad cache info | clear | prune | why`: the disk cache from the command line."""
from __future__ import annotations

import argparse
import re
import time

from ..cache.store import DiskCache, default_dir
from ..errors import SymgradError
from ..schedule.sanitise import comment_text
from .target import add_target_arguments, resolve

_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "m": 1024 ** 2, "mb": 1024 ** 2,
               "g": 1024 ** 3, "gb": 1024 ** 3}
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class OptionError(SymgradError):
    pass


def parse_size(text: str) -> int:
    """`500k`, `100M`, `1G`, `2048` (bytes)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not match or match[2].lower() not in _SIZE_UNITS:
        raise OptionError(f"bad size {text!r}: expected e.g. 500k, 100M, 1G or bytes")
    return int(float(match[1]) * _SIZE_UNITS[match[2].lower()])


def parse_age(text: str) -> float:
    """`30d`, `12h`, `15m`, `45s`, `2w`."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if not match:
        raise OptionError(f"bad age {text!r}: expected e.g. 30d, 12h, 15m, 45s or 2w")
    return float(match[1]) * _AGE_UNITS[match[2]]


def human_size(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"


def _option(parse):
    """A parser of option text whose errors are usage errors (argparse: exit status 2)."""
    def parse_option(text: str):
        try:
            return parse(text)
        except OptionError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parse_option.__name__ = parse.__name__.replace("parse_", "")
    return parse_option


def _cache(args: argparse.Namespace) -> DiskCache:
    return DiskCache(args.dir) if getattr(args, "dir", None) else DiskCache(default_dir())


def run_cache(args: argparse.Namespace) -> int:
    if args.action is None:
        args.cache_parser.error("an action is required: info, clear, prune or why")
    return ACTIONS[args.action](args)


def run_info(args: argparse.Namespace) -> int:
    cache = _cache(args)
    print(f"location: {cache.directory}")
    if not cache.directory.is_dir():
        print("entries:  0 (the directory does not exist yet)")
        return 0
    problem = cache.problem(create=False)
    entries = cache.entries()
    print(f"entries:  {len(entries)}")
    print(f"size:     {human_size(cache.total_size())}")
    if problem:
        print(f"status:   not used: {problem}")
    if args.verbose:
        now = time.time()
        for entry in entries:
            age = (now - entry.last_used) / 86400
            meta = entry.meta
            what = (f"{meta.get('function', '?')}({meta.get('signature', '')})  "
                    f"[{meta.get('transform', '')}]" if meta.get("key") == entry.key
                    else "damaged: rebuilt on its next use, removed by prune")
            print(f"  {entry.key[:16]}  {human_size(entry.size):>9}  used {age:5.1f} d ago  "
                  f"{comment_text(what)}")
    return 0


def run_clear(args: argparse.Namespace) -> int:
    cache = _cache(args)
    removed = cache.clear()
    print(f"removed {removed} entr{'y' if removed == 1 else 'ies'} from {cache.directory}")
    return 0


def run_prune(args: argparse.Namespace) -> int:
    if args.max_size is None and args.older_than is None:
        args.prune_parser.error("give --max-size and/or --older-than")
    cache = _cache(args)
    removed = cache.prune(max_size=args.max_size, older_than=args.older_than)
    print(f"removed {len(removed)} entr{'y' if len(removed) == 1 else 'ies'}; "
          f"{len(cache.entries())} left ({human_size(cache.total_size())}) in {cache.directory}")
    return 0


def run_why(args: argparse.Namespace) -> int:
    from ..tools.explain import explain_miss

    target = resolve(args)
    compiled = target.compiled
    print(explain_miss(compiled.fn, compiled.specs_for(*target.args), compiled.transform,
                       compiled.backend, _cache(args)))
    return 0


ACTIONS = {"info": run_info, "clear": run_clear, "prune": run_prune, "why": run_why}


def add_cache(parser: argparse.ArgumentParser, make_parser) -> None:
    parser.set_defaults(cache_parser=parser)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    dir_help = "the cache directory (default: $SYMGRAD_CACHE_DIR, else ~/.cache/symgrad)"
    info = make_parser(actions, "info", "location, number of entries and size",
                       "example:\n  symgrad cache info --verbose")
    info.add_argument("--verbose", "-v", action="store_true", help="list every entry")
    clear = make_parser(actions, "clear", "remove every entry",
                        "example:\n  symgrad cache clear")
    prune = make_parser(actions, "prune",
                        "remove entries unused for a while, or the least recently used ones "
                        "beyond a size", "example:\n  symgrad cache prune --max-size 100M "
                                         "--older-than 30d")
    prune.set_defaults(prune_parser=prune)
    prune.add_argument("--max-size", metavar="SIZE", type=_option(parse_size),
                       help="keep at most this much (500k, 100M)")
    prune.add_argument("--older-than", metavar="AGE", type=_option(parse_age),
                       help="remove entries unused this long (12h, 30d, 2w)")
    why = make_parser(actions, "why", "why a call misses the cache: the key component that "
                      "differs from the nearest entry of the same function",
                      "example:\n  symgrad cache why model.py:loss --arg x=f64[5] "
                      "--arg y=f64[3] --arg w=f64[5,3] --arg b=f64[3] --wrt w,b")
    add_target_arguments(why)
    for sub in (info, clear, prune, why):
        sub.add_argument("--dir", default=None, help=dir_help)
