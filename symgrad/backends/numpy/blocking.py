"""Row blocks: large elementwise regions evaluated a cache-sized block of rows at a time.

A statement-by-statement numpy program streams every temporary through main memory: on arrays
of millions of elements each `t = a * b` reads and writes tens of megabytes. Cut into blocks of
rows that fit in the L2 cache, the same statements keep their temporaries in cache, and the
blocks can run on several threads (numpy releases the GIL inside its loops).

`plan_blocks` picks the regions: runs of elementwise statements over one large shape, plus full
sums of them (each block returns its partial sum). Every element is computed by the same ufunc
calls as without blocks, so elementwise results are bit-identical; only the order in which a
full sum adds its terms changes (rounding-level differences). Statements between the members
of a region that do not depend on it run before it; a statement that reads a member of the
region (other than through its row block) ends it. Members read after the region are written
into full arrays allocated before it; the others live only inside a block.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Hashable, Sequence

import numpy as np

# Regions of arrays smaller than this run on whole arrays: they come from the L2/L3 cache
# anyway, and starting threads (~50 us) would cost more than they save.
BLOCKING_MIN_BYTES = 4 << 20
# Bytes of one temporary in one block: a dozen of them stay inside a 1 MiB L2 cache.
BLOCK_BYTES = 1 << 18

Symbol = Hashable


@dataclass
class Item:
    """What the planner needs to know about one statement."""

    symbol: Symbol
    kind: str  # "elementwise", "full_sum" (np.sum over all axes) or "other"
    shape: tuple[int, ...]
    dtype: str | None  # None: not known, never a member
    deps: Sequence[Symbol]
    operations: int = 1  # ufunc calls the statement makes (elementwise statements)


@dataclass
class BlockRegion:
    shape: tuple[int, ...]
    block_rows: int
    members: list[Symbol] = field(default_factory=list)  # in order; full sums included
    sums: list[Symbol] = field(default_factory=list)  # full sums: one partial sum a block
    sliced: list[Symbol] = field(default_factory=list)  # outside arrays passed by row block
    materialised: list[Symbol] = field(default_factory=list)  # members read after the region

    @property
    def rows(self) -> int:
        return self.shape[0]


def _size(shape: tuple[int, ...]) -> int:
    size = 1
    for extent in shape:
        size *= extent
    return size


def _broadcasts_to(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    if len(shape) > len(target):
        return False
    return all(d in (1, t) for d, t in zip(reversed(shape), reversed(target)))


def _row_aligned(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    """An operand whose rows are the region's rows (sliced into blocks with it)."""
    return len(shape) == len(target) and shape[0] == target[0]


def plan_blocks(items: Sequence[Item], outputs: set[Symbol]) -> list[Symbol | BlockRegion]:
    """The statements in order, with runs that are worth blocking gathered into regions."""
    by_symbol = {item.symbol: item for item in items}
    readers: dict[Symbol, list[Symbol]] = {}
    for item in items:
        for dep in item.deps:
            readers.setdefault(dep, []).append(item.symbol)

    plan: list[Symbol | BlockRegion] = []
    region: BlockRegion | None = None
    region_items: list[Symbol] = []  # the region's members, in order
    hoisted: list[Symbol] = []  # statements met inside the region that run before it

    def close() -> None:
        nonlocal region
        if region is not None and _worth_blocking(region, by_symbol):
            members = set(region.members)
            sums = set(region.sums)
            region.materialised = [
                s for s in region.members if s not in sums and (
                    s in outputs or any(r not in members for r in readers.get(s, ())))]
            sliced: dict[Symbol, None] = {}
            for s in region.members:
                if s in sums:
                    continue
                for dep in by_symbol[s].deps:
                    if dep not in members and _row_aligned(by_symbol[dep].shape, region.shape) \
                            and region.rows > 1:
                        sliced[dep] = None
            region.sliced = list(sliced)
            plan.extend(hoisted)
            plan.append(region)
        elif region is not None:
            plan.extend(sorted(region_items + hoisted, key=position.__getitem__))
        region = None
        region_items.clear()
        hoisted.clear()

    position = {item.symbol: k for k, item in enumerate(items)}
    for item in items:
        if region is not None:
            members = set(region.members)
            if _joins(item, region, members, by_symbol):
                region.members.append(item.symbol)
                region_items.append(item.symbol)
                if item.kind == "full_sum":
                    region.sums.append(item.symbol)
                continue
            if not any(d in members for d in item.deps):
                hoisted.append(item.symbol)  # independent of the region: run it first
                continue
            close()
        if _starts(item, by_symbol):
            region = BlockRegion(item.shape, _block_rows(item.shape), [item.symbol])
            region_items.append(item.symbol)
            continue
        plan.append(item.symbol)
    close()
    return plan


def _starts(item: Item, by_symbol: dict[Symbol, Item]) -> bool:
    return item.kind == "elementwise" and item.dtype is not None and len(item.shape) >= 1 \
        and item.shape[0] > 1 \
        and _size(item.shape) * np.dtype(item.dtype).itemsize >= BLOCKING_MIN_BYTES \
        and all(_broadcasts_to(by_symbol[d].shape, item.shape) for d in item.deps)


def _joins(item: Item, region: BlockRegion, members: set[Symbol],
           by_symbol: dict[Symbol, Item]) -> bool:
    if item.kind == "full_sum":
        return len(item.deps) == 1 and item.deps[0] in members \
            and item.deps[0] not in region.sums
    if item.kind != "elementwise" or item.shape != region.shape or item.dtype is None:
        return False
    for dep in item.deps:
        if dep in region.sums:
            return False  # needs the finished sum
        if dep not in members and not _broadcasts_to(by_symbol[dep].shape, region.shape):
            return False
    return True


def _worth_blocking(region: BlockRegion, by_symbol: dict[Symbol, Item]) -> bool:
    """Two or more ufunc calls: a single one gains nothing from staying in cache."""
    return sum(by_symbol[s].operations for s in region.members) >= 2


def _block_rows(shape: tuple[int, ...]) -> int:
    """Rows of 8-byte elements that fill BLOCK_BYTES (float32 blocks use half as many bytes)."""
    row_elements = max(1, _size(shape[1:]))
    return max(1, BLOCK_BYTES // (8 * row_elements))
