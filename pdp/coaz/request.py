"""Checks and finishing touches on a built AuthZEN request body (docs/spec/coaz.md, "Dialect 2":
absent ``subject``/``action``/``resource`` is a mapping error, the ``evaluations`` envelope, and
the RFC 8693 ``act`` claim).

A body that reaches the PDP is exactly an AuthZEN 1.0 ``/access/v1/evaluation`` or
``/access/v1/evaluations`` request: ``subject`` and ``resource`` carry non-empty string ``type``
and ``id`` (and optionally an object ``properties``), ``action`` a non-empty string ``name``
(and optionally ``properties``), ``context`` is an object. Under ``evaluations`` every entry is
complete once the top-level defaults are applied, no entry carries its own ``subject``, the list
is not empty (an empty list would otherwise authorise nothing and forward the call), and
``options.evaluations_semantic``, if given, keeps "forward only if every decision is true"
meaningful (``execute_all`` or ``deny_on_first_deny``). A body never nests arrays and objects
deeper than :attr:`pdp.coaz.MappingOptions.max_depth`, which the PDP would refuse.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pdp.coaz.template import at
from pdp.errors import MappingError

__all__ = ["check_depth", "check_evaluation", "check_evaluations", "expose_act"]

_ENTITY_MEMBERS = frozenset({"type", "id", "properties"})
_ACTION_MEMBERS = frozenset({"name", "properties"})
_ENTRY_MEMBERS = frozenset({"action", "resource", "context"})
_BODY_MEMBERS = frozenset({"subject", "action", "resource", "context", "evaluations", "options"})
_SEMANTICS = frozenset({"execute_all", "deny_on_first_deny"})
_EMPTY: dict[str, Any] = {}


def _fail(where: str, message: str) -> MappingError:
    return MappingError(f"{where}: {message}", field=where)


def _entity_ok(value: Any) -> bool:
    return (type(value) is dict and value.keys() <= _ENTITY_MEMBERS
            and type(value.get("type")) is str and value["type"] != ""
            and type(value.get("id")) is str and value["id"] != ""
            and type(value.get("properties", _EMPTY)) is dict)


def _action_ok(value: Any) -> bool:
    return (type(value) is dict and value.keys() <= _ACTION_MEMBERS
            and type(value.get("name")) is str and value["name"] != ""
            and type(value.get("properties", _EMPTY)) is dict)


def _entity_problem(value: Any, where: str) -> MappingError:
    if not isinstance(value, dict):
        return _fail(where, "must be an object")
    for key in value:
        if key not in _ENTITY_MEMBERS:
            return _fail(at(where, key), "unknown member (expected type, id, properties)")
    for key in ("type", "id"):
        if key not in value:
            return _fail(at(where, key), "absent")
        if not isinstance(value[key], str) or not value[key]:
            return _fail(at(where, key), "must be a non-empty string")
    return _fail(at(where, "properties"), "must be an object")


def _action_problem(value: Any, where: str) -> MappingError:
    if not isinstance(value, dict):
        return _fail(where, "must be an object")
    for key in value:
        if key not in _ACTION_MEMBERS:
            return _fail(at(where, key), "unknown member (expected name, properties)")
    if "name" not in value:
        return _fail(at(where, "name"), "absent")
    if not isinstance(value["name"], str) or not value["name"]:
        return _fail(at(where, "name"), "must be a non-empty string")
    return _fail(at(where, "properties"), "must be an object")


def _check_parts(body: Mapping[str, Any], where: str, *, need: tuple[str, ...]) -> None:
    for key in need:
        if key not in body:
            raise _fail(at(where, key), "absent")
    if "subject" in body and not _entity_ok(body["subject"]):
        raise _entity_problem(body["subject"], at(where, "subject"))
    if "resource" in body and not _entity_ok(body["resource"]):
        raise _entity_problem(body["resource"], at(where, "resource"))
    if "action" in body and not _action_ok(body["action"]):
        raise _action_problem(body["action"], at(where, "action"))
    if "context" in body and type(body["context"]) is not dict:
        raise _fail(at(where, "context"), "must be an object")


def _parts_ok(body: Mapping[str, Any]) -> bool:
    return (("subject" not in body or _entity_ok(body["subject"]))
            and ("resource" not in body or _entity_ok(body["resource"]))
            and ("action" not in body or _action_ok(body["action"]))
            and ("context" not in body or type(body["context"]) is dict))


def check_evaluation(body: dict[str, Any], where: str) -> None:
    """Raise :class:`MappingError` unless ``body`` is a complete evaluation request."""
    if "subject" in body and "action" in body and "resource" in body and _parts_ok(body):
        return
    _check_parts(body, where, need=("subject", "action", "resource"))
    raise _fail(where, "not a valid AuthZEN evaluation request")


def _evaluations_ok(body: dict[str, Any]) -> bool:
    entries = body.get("evaluations")
    if not (type(entries) is list and entries and "subject" in body
            and body.keys() <= _BODY_MEMBERS and _parts_ok(body)):
        return False
    for entry in entries:
        if not (type(entry) is dict and entry.keys() <= _ENTRY_MEMBERS
                and ("action" in entry or "action" in body)
                and ("resource" in entry or "resource" in body) and _parts_ok(entry)):
            return False
    options = body.get("options", _EMPTY)
    return type(options) is dict \
        and options.get("evaluations_semantic", "execute_all") in _SEMANTICS


def check_evaluations(body: dict[str, Any], where: str) -> None:
    """Raise :class:`MappingError` unless ``body`` is a complete evaluations request."""
    if _evaluations_ok(body):
        return
    _explain_evaluations(body, where)
    raise _fail(where, "not a valid AuthZEN evaluations request")


def _explain_evaluations(body: dict[str, Any], where: str) -> None:
    _check_parts(body, where, need=("subject",))
    here = at(where, "evaluations")
    entries = body.get("evaluations")
    if not isinstance(entries, list):
        raise _fail(here, "must be an array")
    if not entries:
        raise _fail(here, "is empty: there would be no decision to enforce")
    for i, entry in enumerate(entries):
        spot = at(here, i)
        if type(entry) is dict and entry.keys() <= _ENTRY_MEMBERS \
                and ("action" in entry or "action" in body) \
                and ("resource" in entry or "resource" in body):
            _check_parts(entry, spot, need=())
            continue
        if not isinstance(entry, dict):
            raise _fail(spot, "must be an object")
        if "subject" in entry:
            raise _fail(at(spot, "subject"),
                        "an entry must not carry its own subject (it comes from the token)")
        for key in entry:
            if key not in _ENTRY_MEMBERS:
                raise _fail(at(spot, key), "unknown member (expected action, resource, context)")
        missing = "action" if "action" not in entry else "resource"
        raise _fail(at(spot, missing), "absent here and in the top-level defaults")
    for key in body:
        if key not in _BODY_MEMBERS:
            raise _fail(at(where, key), "unknown member")
    if "options" in body:
        options = body["options"]
        if not isinstance(options, dict):
            raise _fail(at(where, "options"), "must be an object")
        semantic = options.get("evaluations_semantic", "execute_all")
        if semantic not in _SEMANTICS:
            raise _fail(at(at(where, "options"), "evaluations_semantic"),
                        "must be execute_all or deny_on_first_deny (every decision is enforced)")


def expose_act(body: dict[str, Any], claims: Mapping[str, Any]) -> None:
    """Make ``context.act`` exactly the token's ``act`` claim, in the body and in every
    ``evaluations`` entry that has its own ``context`` (it would replace the default)."""
    act = claims.get("act")
    if act is not None:
        body.setdefault("context", {})
    contexts = [body["context"]] if isinstance(body.get("context"), dict) else []
    entries = body.get("evaluations")
    if isinstance(entries, list):
        contexts.extend(e["context"] for e in entries
                        if isinstance(e, dict) and isinstance(e.get("context"), dict))
    for context in contexts:
        if act is None:
            context.pop("act", None)
        else:
            context["act"] = act


def check_depth(body: dict[str, Any], limit: int, where: str) -> None:
    """Raise :class:`MappingError` if arrays and objects nest deeper than ``limit`` in ``body``
    (which is depth 1)."""
    stack: list[tuple[Any, int]] = [(body, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            raise _fail(where, f"the request would nest arrays and objects deeper than {limit} "
                        "levels")
        children = node.values() if type(node) is dict else node
        stack.extend((c, depth + 1) for c in children if type(c) is dict or type(c) is list)
