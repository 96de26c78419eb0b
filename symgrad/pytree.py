"""Pytrees: nested containers of arrays, flattened to leaves and rebuilt (JAX's `tree_util`).

Tuples, lists, dicts (keys in sorted order), namedtuples, dataclasses and classes registered
with `register_pytree_node` are containers; everything else is a leaf. A `TreeDef` is the
structure without the leaves: hashable, comparable, printable, and part of the cache key.
Each leaf has a path (`params["w"][0]`), from which generated code takes a parameter name
(`params_w_0`) through the one sanitiser in `names.py`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Iterable

_REGISTRY: dict[type, tuple[Callable, Callable]] = {}


def register_pytree_node(cls: type, flatten: Callable[[Any], tuple[Iterable, Any]],
                         unflatten: Callable[[Any, Iterable], Any]) -> type:
    """Make `cls` a container: `flatten(obj) -> (children, aux)` and
    `unflatten(aux, children) -> obj` (JAX's signature). `aux` must be hashable."""
    if not isinstance(cls, type):
        raise TypeError(f"register_pytree_node takes a class, not {cls!r}")
    _REGISTRY[cls] = (flatten, unflatten)
    return cls


@dataclass(frozen=True)
class TreeDef:
    """A container kind, its static data (keys, class, aux) and its children's structures.

    `kind` is 'leaf', 'none' (None: no leaves, as in JAX), 'tuple', 'list', 'dict',
    'namedtuple', 'dataclass' or 'custom'.
    """

    kind: str
    data: Any = None
    children: tuple["TreeDef", ...] = ()

    @property
    def num_leaves(self) -> int:
        if self.kind == "leaf":
            return 1
        return sum(c.num_leaves for c in self.children)

    @property
    def is_leaf(self) -> bool:
        return self.kind == "leaf"

    def unflatten(self, leaves: Iterable[Any]) -> Any:
        iterator = iter(leaves)
        result = self._build(iterator)
        if next(iterator, _END) is not _END:
            raise ValueError(f"too many leaves for {self}")
        return result

    def _build(self, leaves: Any) -> Any:
        if self.kind == "leaf":
            value = next(leaves, _END)
            if value is _END:
                raise ValueError(f"too few leaves for {self}")
            return value
        children = [c._build(leaves) for c in self.children]
        if self.kind == "none":
            return None
        if self.kind == "tuple":
            return tuple(children)
        if self.kind == "list":
            return children
        if self.kind == "dict":
            return dict(zip(self.data, children))
        if self.kind == "namedtuple":
            return self.data(*children)
        if self.kind == "dataclass":
            cls, names = self.data
            return cls(**dict(zip(names, children)))
        cls, aux = self.data
        return _REGISTRY[cls][1](aux, children)

    def paths(self) -> list[tuple[Any, ...]]:
        """Each leaf's path: the keys, indices and field names leading to it."""
        if self.kind == "leaf":
            return [()]
        keys = self.child_keys()
        return [(k,) + p for k, c in zip(keys, self.children) for p in c.paths()]

    def child_keys(self) -> list[Any]:
        if self.kind == "dict":
            return list(self.data)
        if self.kind == "dataclass":
            return list(self.data[1])
        if self.kind == "namedtuple":
            return list(self.data._fields)
        return list(range(len(self.children)))

    def nested_tuples(self, leaves: Iterable[Any]) -> Any:
        """The leaves arranged as nested tuples of this shape (what generated code returns)."""
        iterator = iter(leaves)

        def build(tree: TreeDef) -> Any:
            if tree.kind == "leaf":
                return next(iterator)
            return tuple(build(c) for c in tree.children)

        return build(self)

    def from_nested(self, nested: Any) -> Any:
        """Inverse of `nested_tuples`: rebuild the containers from nested tuples."""
        return self.unflatten(_flatten_tuples(nested, self))

    @property
    def plain(self) -> bool:
        """Only tuples and leaves: nested tuples already are this structure."""
        return self.kind == "leaf" or (self.kind == "tuple"
                                       and all(c.plain for c in self.children))

    def __str__(self) -> str:
        if self.kind in ("leaf", "none"):
            return "*" if self.kind == "leaf" else "None"
        inner = ", ".join(map(str, self.children))
        if self.kind == "tuple":
            return f"({inner}{',' if len(self.children) == 1 else ''})"
        if self.kind == "list":
            return f"[{inner}]"
        if self.kind == "dict":
            return "{" + ", ".join(f"{k!r}: {c}" for k, c in zip(self.data, self.children)) + "}"
        name = (self.data if self.kind == "namedtuple" else self.data[0]).__name__
        return f"{name}({inner})"


_END = object()
LEAF = TreeDef("leaf")
NONE = TreeDef("none")


def _flatten_tuples(nested: Any, tree: TreeDef) -> list[Any]:
    if tree.kind == "leaf":
        return [nested]
    out: list[Any] = []
    for value, child in zip(nested, tree.children):
        out.extend(_flatten_tuples(value, child))
    return out


def _is_namedtuple(value: Any) -> bool:
    return isinstance(value, tuple) and hasattr(type(value), "_fields")


def tree_flatten(value: Any, is_leaf: Callable[[Any], bool] | None = None
                 ) -> tuple[list[Any], TreeDef]:
    """The leaves of `value` in a fixed order, and its structure; `is_leaf(x)` true makes
    `x` a leaf even if it is a container."""
    leaves: list[Any] = []
    return leaves, _flatten(value, leaves, is_leaf)


def _flatten(value: Any, leaves: list[Any], is_leaf: Callable[[Any], bool] | None = None
             ) -> TreeDef:
    if is_leaf is not None and is_leaf(value):
        leaves.append(value)
        return LEAF
    if value is None:  # an empty subtree, as in JAX: {"w": w, "b": None} has one leaf
        return NONE
    kind = type(value)
    if kind in _REGISTRY:
        children, aux = _REGISTRY[kind][0](value)
        return TreeDef("custom", (kind, aux), tuple(_flatten(c, leaves, is_leaf) for c in children))
    if _is_namedtuple(value):
        return TreeDef("namedtuple", kind, tuple(_flatten(c, leaves, is_leaf) for c in value))
    if isinstance(value, (tuple, list)):
        name = "tuple" if isinstance(value, tuple) else "list"
        return TreeDef(name, None, tuple(_flatten(c, leaves, is_leaf) for c in value))
    if isinstance(value, dict):
        try:
            keys = tuple(sorted(value))
        except TypeError:
            raise TypeError("dict keys of a pytree must be sortable (all str, or all int); "
                            f"got {list(value)!r}") from None
        return TreeDef("dict", keys, tuple(_flatten(value[k], leaves, is_leaf) for k in keys))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = tuple(f.name for f in dataclasses.fields(value) if f.init)
        return TreeDef("dataclass", (kind, names),
                       tuple(_flatten(getattr(value, n), leaves, is_leaf) for n in names))
    leaves.append(value)
    return LEAF


def tree_unflatten(tree: TreeDef, leaves: Iterable[Any]) -> Any:
    return tree.unflatten(leaves)


def tree_map(fn: Callable[[Any], Any], value: Any) -> Any:
    leaves, tree = tree_flatten(value)
    return tree.unflatten([fn(x) for x in leaves])


def path_text(path: tuple[Any, ...]) -> str:
    """`['w'][0]`: a path as a reader writes it (for messages)."""
    return "".join(f"[{k!r}]" if not isinstance(k, int) else f"[{k}]" for k in path)
