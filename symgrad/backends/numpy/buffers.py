"""Buffer reuse: a large result is written into the array of a value that is no longer read.

Every statement `t = ...` on a large array allocates it, and on arrays of hundreds of kilobytes
and more the allocator hands out fresh pages from the operating system each time (the first
touch of each page is a page fault): in the attention workload that cost as much as the
arithmetic. The hand-written numpy of experienced users avoids it with `out=` and in-place
operators into arrays whose last use has passed; `plan_reuse` decides where the generated code
can do the same.

A value's memory is in use until the last statement that reads it, or reads any view of it
(reshapes, transposes, slices and broadcasts may share memory with their input: they are
treated as views of all their inputs). Only arrays that a statement allocated itself are ever
written into: never the caller's inputs, module constants or any array that is returned.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Hashable, Sequence

# Arrays smaller than this are left to the allocator: it recycles them without page faults,
# and their one-line statements read better.
REUSE_MIN_BYTES = 128 << 10

Symbol = Hashable
NEVER_FREED = float("inf")


@dataclass
class BufferItem:
    """What the planner needs to know about one value."""

    symbol: Symbol
    position: int  # the statement that computes it (values computed together share one)
    reads: Sequence[Symbol]  # values the computing statement reads
    fresh: bool  # the statement returns a newly allocated array
    views: Sequence[Symbol]  # not fresh: the values whose memory the result may share
    nbytes: int
    layout: tuple  # (shape, dtype): arrays of the same layout can stand in for each other
    writable_into: bool  # the statement can be written as operations into an existing array


def plan_reuse(items: Sequence[BufferItem], kept: set[Symbol],
               consumes: Callable[[Symbol, Symbol, set[Symbol]], bool] = lambda *_: False
               ) -> dict[Symbol, Symbol]:
    """For each value that is computed into an existing array, the value whose array it takes.

    `items` come in dependency order. `kept`: values whose memory must never be reused
    (outputs). Values are processed in statement order; an array is free from the statement after its last use on, or already
    at its last use when `consumes(value, holder, sharing)` says that the statement reads the
    holder (and `sharing`, every value that may share its memory) only in its first
    operation: `e = np.exp(scores, out=scores)`.
    """
    by_symbol = {item.symbol: item for item in items}
    last_use: dict[Symbol, float] = {item.symbol: item.position for item in items}
    for item in items:
        for read in item.reads:
            if read in last_use:
                last_use[read] = max(last_use[read], item.position)
    for symbol in kept:
        last_use[symbol] = NEVER_FREED
    # A view keeps the memory it shares in use for as long as the view is read. Users before
    # what they read: `items` is in dependency order (a view written inside its reader has the
    # reader's position, so positions alone do not order them).
    for item in reversed(items):
        if not item.fresh:
            for source in item.views:
                if source in last_use:
                    last_use[source] = max(last_use[source], last_use[item.symbol])

    in_order = sorted(items, key=lambda i: i.position)
    shares: dict[Symbol, set[Symbol]] = {}  # value -> the fresh values whose memory it uses
    for item in in_order:
        shares[item.symbol] = {item.symbol} if item.fresh else set().union(
            *(shares.get(v, set()) for v in item.views))

    def free_for(item: BufferItem, holder: Symbol, until: float) -> bool:
        if by_symbol[holder].layout != item.layout:
            return False
        if until < item.position:
            return True
        if until != item.position or holder not in item.reads:
            return False
        sharing = {r for r, memory in shares.items() if holder in memory}
        return consumes(item.symbol, holder, sharing)

    reuse: dict[Symbol, Symbol] = {}
    holder_until: dict[Symbol, float] = {}  # buffer (named by its latest value) -> busy until
    for item in in_order:
        if not item.fresh or item.nbytes < REUSE_MIN_BYTES or item.layout[0] == ():
            continue  # (numpy gives 0-d results as scalars, which cannot be written into)
        chosen = None
        if item.writable_into:
            for holder, until in reversed(list(holder_until.items())):  # the latest freed
                if free_for(item, holder, until):
                    chosen = holder
                    break
        if chosen is not None:
            del holder_until[chosen]
            reuse[item.symbol] = chosen
        holder_until[item.symbol] = last_use[item.symbol]
    return reuse
