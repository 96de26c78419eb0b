"""A progress line on stderr for compilations that take more than about a second.

Quick compilations print nothing. Once a compilation has run for `SHOW_AFTER` seconds, the stage
it is in is printed, then each later stage as it starts, then the total:

    symgrad: compiling loss_value_and_grad(x=f64[5], w=f64[5,3]): differentiate (1.0s)
    symgrad: compiling loss_value_and_grad(x=f64[5], w=f64[5,3]): simplify (2.4s)
    symgrad: compiled loss_value_and_grad in 3.1s (trace 0.01s, differentiate 2.4s, ...)

In a terminal the stage lines overwrite each other (one line that moves on, as a progress bar)
and the total stays; elsewhere (a pipe, a log, a notebook's stderr) each is its own line.
On by default when stderr is a terminal or a Jupyter kernel's stream (and always in the
`symgrad` command);
SYMGRAD_PROGRESS=1 or 0 forces it on or off; SYMGRAD_PROGRESS_AFTER sets the threshold in
seconds (0: every compilation, stage by stage).
"""
from __future__ import annotations

import os
import sys
import threading
import time
from typing import TextIO

SHOW_AFTER = 1.0
ENV_VAR = "SYMGRAD_PROGRESS"
AFTER_ENV_VAR = "SYMGRAD_PROGRESS_AFTER"
_forced: bool | None = None  # set by the command line


def force(enabled: bool | None) -> None:
    global _forced
    _forced = enabled


def enabled() -> bool:
    if _forced is not None:
        return _forced
    configured = os.environ.get(ENV_VAR)
    if configured is not None:
        return configured.strip().lower() not in ("", "0", "false", "no", "off")
    if type(sys.stderr).__module__.startswith("ipykernel"):
        return True  # a notebook: the kernel shows stderr under the cell
    return _is_terminal(sys.stderr)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _threshold() -> float:
    try:
        return float(os.environ.get(AFTER_ENV_VAR, SHOW_AFTER))
    except ValueError:
        return SHOW_AFTER


class Progress:
    """Stage timer; prints only once the compilation has outlasted `show_after` seconds."""

    def __init__(self, label: str, show_after: float | None = None,
                 stream: TextIO | None = None, active: bool | None = None):
        self.label = label
        self.stream = stream
        self.active = enabled() if active is None else active
        self.show_after = _threshold() if show_after is None else show_after
        self.start = time.perf_counter()
        self.stages: list[tuple[str, float]] = []
        self.shown = False
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        if self.active and self.show_after <= 0:
            self.shown = True
        elif self.active:
            self._timer = threading.Timer(self.show_after, self._show_current)
            self._timer.daemon = True
            self._timer.start()

    def stage(self, name: str) -> None:
        with self._lock:
            self.stages.append((name, time.perf_counter()))
            if self.shown:
                self._print(f"compiling {self.label}: {name} ({self._elapsed():.1f}s)")

    def done(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            if not self.shown:
                return
            end = time.perf_counter()
            times = [(name, (self.stages[i + 1][1] if i + 1 < len(self.stages) else end) - t)
                     for i, (name, t) in enumerate(self.stages)]
            parts = ", ".join(f"{name} {seconds:.2f}s" for name, seconds in times)
            self._print(f"compiled {self.label.split('(')[0]} in {end - self.start:.1f}s "
                        f"({parts})", final=True)

    def _show_current(self) -> None:
        with self._lock:
            if self.shown or not self.stages:
                return
            self.shown = True
            self._print(f"compiling {self.label}: {self.stages[-1][0]} "
                        f"({self._elapsed():.1f}s)")

    def _elapsed(self) -> float:
        return time.perf_counter() - self.start

    def _print(self, text: str, final: bool = False) -> None:
        stream = self.stream or sys.stderr
        try:
            if _is_terminal(stream):  # one line, rewritten in place, ended by the total
                stream.write(f"\r\x1b[Ksymgrad: {text}" + ("\n" if final else ""))
                stream.flush()
            else:
                print(f"symgrad: {text}", file=stream, flush=True)
        except (OSError, ValueError):
            pass
