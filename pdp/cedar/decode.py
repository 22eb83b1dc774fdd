"""Cedar's JSON value format (``__entity`` and ``__extn`` escapes) → :mod:`pdp.cedar.values`."""

from __future__ import annotations

from typing import Any

from pdp.cedar.extensions import FUNCTIONS
from pdp.cedar.values import LONG_MAX, LONG_MIN, UID, CSet, EvalError, key

__all__ = ["Unsupported", "value", "uid"]

_MAX_DEPTH = 64


class Unsupported(Exception):
    """Input the native evaluator does not take: the caller hands it to cedarpy instead."""


_new_tuple = tuple.__new__


def uid(v: Any) -> UID:
    """``{"type": …, "id": …}`` or ``{"__entity": {…}}``."""
    if type(v) is dict:
        if len(v) == 1 and "__entity" in v:
            v = v["__entity"]
            if type(v) is not dict:
                raise Unsupported(f"not an entity reference: {v!r:.200}")
        if len(v) == 2:
            t, i = v.get("type"), v.get("id")
            if type(t) is str and type(i) is str:
                return _new_tuple(UID, (t, i))
    raise Unsupported(f"not an entity reference: {v!r:.200}")


def value(v: Any, depth: int = 0) -> Any:
    t = type(v)
    if t is str or t is bool:
        return v
    if t is int:
        if LONG_MIN <= v <= LONG_MAX:
            return v
        raise Unsupported("integer out of the 64-bit range")
    if depth > _MAX_DEPTH:
        raise Unsupported("value nested too deeply")
    if t is list:
        return CSet(key(value(x, depth + 1)) for x in v)
    if t is dict:
        if "__entity" in v:
            return uid(v)
        if "__extn" in v:
            return _extension(v, depth)
        if "__expr" in v:
            raise Unsupported("`__expr` escapes are not supported natively")
        return {k: value(x, depth + 1) for k, x in v.items()}
    raise Unsupported(f"not a Cedar value: {type(v).__name__}")


def _extension(v: dict[str, Any], depth: int) -> Any:
    ext = v["__extn"]
    if len(v) != 1 or type(ext) is not dict or type(ext.get("fn")) is not str:
        raise Unsupported("malformed `__extn` escape")
    fn = FUNCTIONS.get(ext["fn"])
    if "arg" in ext and len(ext) == 2:
        args = [value(ext["arg"], depth + 1)]
    elif "args" in ext and len(ext) == 2 and type(ext["args"]) is list:
        args = [value(a, depth + 1) for a in ext["args"]]
    else:
        raise Unsupported("malformed `__extn` escape")
    if fn is None or (fn[0] is not None and fn[0] != len(args)):
        raise Unsupported(f"unknown extension function {ext['fn']!r:.100}")
    try:
        return fn[1](*args)
    except EvalError as e:
        raise Unsupported(str(e)) from None
