"""Cedar values as plain Python data, and Cedar's equality over them.

| Cedar          | Python                                                            |
|----------------|-------------------------------------------------------------------|
| Bool           | ``bool``                                                          |
| Long           | ``int`` (always within 64 bits; arithmetic checks overflow)       |
| String         | ``str``                                                           |
| entity         | :class:`UID` (a ``(type, id)`` tuple)                             |
| Record         | ``dict`` (str → value)                                            |
| Set            | :class:`CSet` (a frozenset of *keys*: see :func:`key`)            |
| extension      | :class:`Decimal`, :class:`IPAddr`, :class:`DateTime`, :class:`Duration` |

Python's ``True == 1``; Cedar's ``true == 1`` is false. Records are compared with :func:`ceq`,
which checks types first, and a set holds its elements as keys in which booleans and records
are wrapped so that Python's set equality is Cedar's.
"""

from __future__ import annotations

from typing import Any

__all__ = ["UID", "CSet", "RecordKey", "Ext", "Decimal", "IPAddr", "DateTime", "Duration",
           "EvalError", "key", "make_set", "ceq", "type_name", "show", "LONG_MIN", "LONG_MAX"]

LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1


class EvalError(Exception):
    """A Cedar evaluation error: the policy being evaluated does not apply."""


class UID(tuple[str, str]):
    """An entity uid: ``(type, id)``."""

    __slots__ = ()

    def __new__(cls, etype: str, eid: str) -> UID:
        return tuple.__new__(cls, (etype, eid))

    def __str__(self) -> str:
        return f'{self[0]}::"{_escape(self[1])}"'


def _escape(s: str) -> str:
    return s.encode("unicode_escape").decode("ascii").replace('"', '\\"')


class _BoolKey:
    __slots__ = ("value",)

    def __init__(self, value: bool) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "true" if self.value else "false"


_TRUE, _FALSE = _BoolKey(True), _BoolKey(False)


class RecordKey(tuple[Any, ...]):
    """A record inside a set: its sorted ``(name, key(value))`` pairs."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return type(other) is RecordKey and tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = tuple.__hash__


class CSet(frozenset[Any]):
    """A Cedar set: the keys (:func:`key`) of its elements."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return type(other) is CSet and frozenset.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = frozenset.__hash__


def key(v: Any) -> Any:
    """The hashable stand-in of a value inside a set (equal keys ⇔ Cedar-equal values)."""
    t = type(v)
    if t is bool:
        return _TRUE if v else _FALSE
    if t is dict:
        return RecordKey(sorted((k, key(x)) for k, x in v.items()))
    return v


def make_set(values: Any) -> CSet:
    return CSet(key(v) for v in values)


def ceq(a: Any, b: Any) -> bool:
    """Cedar's ``==``: never an error, false between different types."""
    t = type(a)
    if t is not type(b):
        return False
    if t is dict:
        if len(a) != len(b):
            return False
        for k, x in a.items():
            if k not in b or not ceq(x, b[k]):
                return False
        return True
    return bool(a == b)


class Ext:
    """An extension value; equal when of the same type with the same ``v``."""

    __slots__ = ("v",)
    name = "extension"

    def __init__(self, v: Any) -> None:
        self.v = v

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.v == other.v

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash((self.name, self.v))

    def __repr__(self) -> str:
        return f"{self.name}({self.v!r})"


class Decimal(Ext):
    """``v``: the value times 10,000."""

    __slots__ = ()
    name = "decimal"


class IPAddr(Ext):
    """``v``: ``(version, address as int, prefix length)``."""

    __slots__ = ()
    name = "ipaddr"


class DateTime(Ext):
    """``v``: milliseconds since the Unix epoch."""

    __slots__ = ()
    name = "datetime"


class Duration(Ext):
    """``v``: milliseconds."""

    __slots__ = ()
    name = "duration"


_TYPE_NAMES: dict[type, str] = {bool: "bool", int: "long", str: "string", UID: "entity",
                                dict: "record", CSet: "set"}


def type_name(v: Any) -> str:
    t = type(v)
    if isinstance(v, Ext):
        return v.name
    if t is UID:
        return f"(entity of type `{v[0]}`)"
    return _TYPE_NAMES.get(t, t.__name__)


def show(v: Any) -> str:
    """A short rendering of a value for error messages."""
    t = type(v)
    if t is bool:
        return "true" if v else "false"
    if t is str:
        return f'"{_escape(v)}"'
    if t is UID:
        return str(v)
    return repr(v)
