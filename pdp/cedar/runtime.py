"""The operations compiled policies call: each is Cedar's, errors included.

Every function raises :class:`~pdp.cedar.values.EvalError` where Cedar reports an evaluation
error; none has any other failure mode on Cedar values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pdp.cedar.values import (
    LONG_MAX,
    LONG_MIN,
    UID,
    CSet,
    DateTime,
    Duration,
    EvalError,
    Ext,
    key,
    show,
    type_name,
)

__all__ = ["Store", "EMPTY", "EMPTY_STORE", "NAMESPACE", "Like"]

EMPTY: frozenset[UID] = frozenset()


@dataclass(frozen=True, slots=True)
class Store:
    """Entities as evaluation reads them: attributes, transitive ancestors and tags by uid."""

    attrs: Mapping[UID, dict[str, Any]] = field(default_factory=dict)
    ancestors: Mapping[UID, frozenset[UID]] = field(default_factory=dict)
    tags: Mapping[UID, dict[str, Any]] = field(default_factory=dict)


EMPTY_STORE = Store()


def _type_error(expected: str, v: Any) -> EvalError:
    return EvalError(f"type error: expected {expected}, got {type_name(v)}")


def b(v: Any) -> bool:
    if v is True or v is False:
        return v
    raise _type_error("bool", v)


def not_(v: Any) -> bool:
    return not b(v)


def _long(v: Any) -> int:
    if type(v) is not int:
        raise _type_error("long", v)
    return v


def _checked(n: int, what: str) -> int:
    if LONG_MIN <= n <= LONG_MAX:
        return n
    raise EvalError(f"integer overflow while attempting to {what}")


def neg(v: Any) -> int:
    return _checked(-_long(v), f"negate the value `{show(v)}`")


def add(a: Any, c: Any) -> int:
    return _checked(_long(a) + _long(c), f"add `{show(a)}` with `{show(c)}`")


def sub(a: Any, c: Any) -> int:
    return _checked(_long(a) - _long(c), f"subtract `{show(c)}` from `{show(a)}`")


def mul(a: Any, c: Any) -> int:
    return _checked(_long(a) * _long(c), f"multiply `{show(a)}` by `{show(c)}`")


_ORDERED = (DateTime, Duration)


def _ordered(a: Any, c: Any) -> tuple[Any, Any]:
    ta, tc = type(a), type(c)
    if ta is int and tc is int:
        return a, c
    if ta is tc and ta in _ORDERED:
        return a.v, c.v
    if ta is int or tc is int:
        raise _type_error("long", c if ta is int else a)
    raise EvalError(f"type error: expected one of [long, datetime, duration], got "
                    f"{type_name(a if ta not in _ORDERED else c)}")


def lt(a: Any, c: Any) -> bool:
    x, y = _ordered(a, c)
    return x < y  # type: ignore[no-any-return]


def le(a: Any, c: Any) -> bool:
    x, y = _ordered(a, c)
    return x <= y  # type: ignore[no-any-return]


def in_(store: Store, a: Any, c: Any) -> bool:
    if type(a) is not UID:
        raise _type_error("(entity of type `any_entity_type`)", a)
    tc = type(c)
    if tc is UID:
        return a == c or c in store.ancestors.get(a, EMPTY)
    if tc is CSet:
        for x in c:
            if type(x) is not UID:
                raise _type_error("(entity of type `any_entity_type`)", x)
        return a in c or not store.ancestors.get(a, EMPTY).isdisjoint(c)
    raise _type_error("one of [set, (entity of type `any_entity_type`)]", c)


def _set(v: Any) -> CSet:
    if type(v) is not CSet:
        raise _type_error("set", v)
    return v


def contains(s: Any, x: Any) -> bool:
    return key(x) in _set(s)


def contains_all(s: Any, t: Any) -> bool:
    return _set(s).issuperset(_set(t))


def contains_any(s: Any, t: Any) -> bool:
    return not _set(s).isdisjoint(_set(t))


def is_empty(s: Any) -> bool:
    return not _set(s)


def attr(store: Store, v: Any, name: str) -> Any:
    t = type(v)
    if t is UID:
        attrs = store.attrs.get(v)
        if attrs is None:
            raise EvalError(f"entity `{v}` does not exist")
        try:
            return attrs[name]
        except KeyError:
            raise EvalError(f"`{v}` does not have the attribute `{name}`") from None
    if t is dict:
        try:
            return v[name]
        except KeyError:
            raise EvalError(f"record does not have the attribute `{name}`") from None
    raise _type_error("one of [record, (entity of type `any_entity_type`)]", v)


def has(store: Store, v: Any, name: str) -> bool:
    t = type(v)
    if t is UID:
        attrs = store.attrs.get(v)
        return attrs is not None and name in attrs
    if t is dict:
        return name in v
    raise _type_error("one of [record, (entity of type `any_entity_type`)]", v)


def get_tag(store: Store, v: Any, tag: Any) -> Any:
    if type(v) is not UID:
        raise _type_error("(entity of type `any_entity_type`)", v)
    if type(tag) is not str:
        raise _type_error("string", tag)
    if v not in store.attrs:
        raise EvalError(f"entity `{v}` does not exist")
    try:
        return store.tags[v][tag]
    except KeyError:
        raise EvalError(f"`{v}` does not have the tag `{tag}`") from None


def has_tag(store: Store, v: Any, tag: Any) -> bool:
    if type(v) is not UID:
        raise _type_error("(entity of type `any_entity_type`)", v)
    if type(tag) is not str:
        raise _type_error("string", tag)
    tags = store.tags.get(v)
    return tags is not None and tag in tags


def is_(v: Any, etype: str) -> bool:
    if type(v) is not UID:
        raise _type_error("(entity of type `any_entity_type`)", v)
    return v[0] == etype


class Like:
    """A ``like`` pattern: literal segments between ``*`` wildcards, matched left to right
    without backtracking (linear in the input)."""

    __slots__ = ("segments",)

    def __init__(self, segments: list[str]) -> None:
        self.segments = segments  # n+1 literal parts around n wildcards

    def __call__(self, v: Any) -> bool:
        if type(v) is not str:
            raise _type_error("string", v)
        segs = self.segments
        if len(segs) == 1:
            return v == segs[0]
        first, last = segs[0], segs[-1]
        if len(v) < len(first) + len(last) or not v.startswith(first) or not v.endswith(last):
            return False
        pos, end = len(first), len(v) - len(last)
        for seg in segs[1:-1]:
            i = v.find(seg, pos, end)
            if i < 0:
                return False
            pos = i + len(seg)
        return True


def _mkset(*values: Any) -> CSet:
    return CSet(key(v) for v in values)


def ext_call(fn: Callable[..., Any], arity: int | None, name: str) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        if (arity is not None and len(args) != arity) or (arity is None and not args):
            raise EvalError(f"wrong number of arguments to `{name}`")
        return fn(*args)
    return call


NAMESPACE: dict[str, Any] = {
    "_b": b, "_not": not_, "_neg": neg, "_add": add, "_sub": sub, "_mul": mul, "_lt": lt,
    "_le": le, "_in": in_, "_contains": contains, "_containsAll": contains_all,
    "_containsAny": contains_any, "_isEmpty": is_empty, "_attr": attr, "_has": has,
    "_getTag": get_tag, "_hasTag": has_tag, "_is": is_, "_set": _mkset, "_Ext": Ext,
    "_EvalError": EvalError, "_NOD": MappingProxyType({}),
}
