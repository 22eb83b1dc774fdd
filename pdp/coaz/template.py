"""Compiled value templates shared by both COAZ dialects (docs/spec/coaz.md, "Dialect 1" and
"Dialect 2": every value of a mapping is a literal or a reference).

A mapping is compiled once into a tree of :class:`Obj`, :class:`Arr`, literal leaves and
:class:`Ref` leaves. A ``Ref`` points into the list of values its dialect's resolver produces
for one call (JSONPath for the SEP, one CEL program for the binding). :data:`MISSING` marks a
value that selected nothing and is allowed to: its object member or list element is dropped.
Rendering always builds new containers, so a request body never shares a literal with the
compiled mapping.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from pdp.errors import MappingError

__all__ = ["MISSING", "Missing", "Lit", "Ref", "Obj", "Arr", "Node", "TemplateCompiler", "at",
           "check_members", "contains_ref", "template_depth"]


class Missing:
    """Type of :data:`MISSING`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


#: A reference that selected nothing and may be dropped.
MISSING: Final = Missing()

_KIND_LIT: Final = 0
_KIND_REF: Final = 1
_KIND_NODE: Final = 2


@dataclass(frozen=True, slots=True)
class Lit:
    """A JSON scalar literal (string, number, boolean or null)."""

    value: str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Ref:
    """The value at ``index`` in the resolver's output; ``location`` is its place in the tool
    list, for messages."""

    index: int
    location: str


@dataclass(frozen=True, slots=True)
class Obj:
    """A JSON object whose members are templates; members whose value is MISSING are dropped."""

    members: tuple[tuple[str, Node], ...]
    _plan: tuple[tuple[str, int, Any], ...] = field(
        default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_plan", tuple(_plan_item(k, v) for k, v in self.members))

    def get(self, key: str) -> Node | None:
        for k, v in self.members:
            if k == key:
                return v
        return None

    def render(self, values: Sequence[Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, kind, payload in self._plan:
            if kind == _KIND_LIT:
                out[key] = payload
            elif kind == _KIND_REF:
                value = values[payload]
                if value is not MISSING:
                    out[key] = value
            else:
                out[key] = payload.render(values)
        return out


@dataclass(frozen=True, slots=True)
class Arr:
    """A JSON array whose elements are templates; elements whose value is MISSING are dropped."""

    items: tuple[Node, ...]
    _plan: tuple[tuple[None, int, Any], ...] = field(
        default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_plan", tuple(_plan_item(None, v) for v in self.items))

    def render(self, values: Sequence[Any]) -> list[Any]:
        out: list[Any] = []
        for _, kind, payload in self._plan:
            if kind == _KIND_LIT:
                out.append(payload)
            elif kind == _KIND_REF:
                value = values[payload]
                if value is not MISSING:
                    out.append(value)
            else:
                out.append(payload.render(values))
        return out


Node = Lit | Ref | Obj | Arr


def _plan_item(key: Any, node: Node) -> tuple[Any, int, Any]:
    if isinstance(node, Lit):
        return (key, _KIND_LIT, node.value)
    if isinstance(node, Ref):
        return (key, _KIND_REF, node.index)
    return (key, _KIND_NODE, node)


def contains_ref(node: Node, indices: frozenset[int] | None = None) -> bool:
    """Whether ``node`` holds a reference (one of ``indices``, if given)."""
    if isinstance(node, Ref):
        return indices is None or node.index in indices
    if isinstance(node, Obj):
        return any(contains_ref(v, indices) for _, v in node.members)
    if isinstance(node, Arr):
        return any(contains_ref(v, indices) for v in node.items)
    return False


def template_depth(node: Node) -> int:
    """How deep arrays and objects nest in ``node`` itself (references count as scalars)."""
    if isinstance(node, Obj):
        return 1 + max((template_depth(v) for _, v in node.members), default=0)
    if isinstance(node, Arr):
        return 1 + max((template_depth(v) for v in node.items), default=0)
    return 0


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_$-]+\Z")


def at(base: str, key: str | int) -> str:
    """The location ``base`` extended by an object member or array index, written like
    ``tools[2].inputSchema.x-authzen-mapping.evaluation.resource.id``."""
    if isinstance(key, int):
        return f"{base}[{key}]"
    if _PLAIN_KEY.match(key):
        return f"{base}.{key}" if base else key
    quoted = key.replace("\\", "\\\\").replace("'", "\\'")
    return f"{base}['{quoted}']"


class TemplateCompiler:
    """Walks a mapping's JSON value into a template tree; each dialect decides what a string
    is (a literal or a reference) by overriding :meth:`string`."""

    def node(self, value: Any, where: str) -> Node:
        if isinstance(value, dict):
            members = []
            for key, item in value.items():
                if not isinstance(key, str):
                    raise MappingError(f"{where}: member names must be strings", field=where)
                members.append((key, self.node(item, at(where, key))))
            return Obj(tuple(members))
        if isinstance(value, list):
            return Arr(tuple(self.node(item, at(where, i)) for i, item in enumerate(value)))
        if isinstance(value, str):
            return self.string(value, where)
        if value is None or isinstance(value, bool | int) \
                or (isinstance(value, float) and math.isfinite(value)):
            return Lit(value)
        raise MappingError(f"{where}: not a JSON value", field=where)

    def string(self, text: str, where: str) -> Node:
        return Lit(text)


def check_members(value: Any, where: str, members: Sequence[str],
                  required: Sequence[str]) -> dict[str, Any]:
    """``value`` as a mapping object: only ``members``, every ``required`` one present;
    :class:`MappingError` at the first that is not."""
    if not isinstance(value, dict):
        raise MappingError(f"{where}: must be an object", field=where)
    for key in value:
        if key not in members:
            raise MappingError(f"{at(where, key)}: unknown member (expected one of "
                               f"{', '.join(members)})", field=at(where, key))
    for key in required:
        if key not in value:
            raise MappingError(f"{at(where, key)}: required", field=at(where, key))
    return value
