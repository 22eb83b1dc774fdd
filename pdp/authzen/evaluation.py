"""Access Evaluation API (AuthZEN 1.0 section 6): parsing one evaluation request.

Unknown fields are ignored (section 5); required fields are checked with the name of the
field at fault.

Each part's parser first tries the common shape, every check passing at once (an object with
strings where strings go), and builds the value with the model's fast builders; anything else
goes the field-by-field path, which names the first field at fault (the same value for an
input the common shape accepts, and the only path that raises).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from pdp.authzen.body import escapes_unicode, keys_all_kept, parse_json_body
from pdp.authzen.model import (
    Action,
    Entity,
    EvaluationRequest,
    action,
    entity,
    evaluation_request,
)
from pdp.errors import InvalidField, MissingField

__all__ = ["EvaluationReader", "parse_evaluation", "parse_entity", "parse_action",
           "parse_context", "read_evaluation", "kept_entity"]


def _require_object(value: Any, field: str) -> Mapping[str, Any]:
    if value is None:
        raise MissingField(f"'{field}' is required", field=field)
    if not isinstance(value, dict):
        raise InvalidField(f"'{field}' must be an object", field=field)
    return value


def _require_string(obj: Mapping[str, Any], key: str, field: str) -> str:
    value = obj.get(key)
    if value is None:
        raise MissingField(f"'{field}.{key}' is required", field=f"{field}.{key}")
    if not isinstance(value, str):
        raise InvalidField(f"'{field}.{key}' must be a string", field=f"{field}.{key}")
    return value


def _optional_object(obj: Mapping[str, Any], key: str, field: str) -> Mapping[str, Any] | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidField(f"'{field}.{key}' must be an object", field=f"{field}.{key}")
    return value


def parse_entity(value: Any, field: str, *, require_id: bool = True) -> Entity:
    if isinstance(value, dict):
        type_, id_, properties = value.get("type"), value.get("id"), value.get("properties")
        if isinstance(type_, str) and isinstance(id_, str) \
                and (properties is None or isinstance(properties, dict)):
            return entity(type_, id_, properties)
    return _checked_entity(value, field, require_id)


def _checked_entity(value: Any, field: str, require_id: bool) -> Entity:
    obj = _require_object(value, field)
    type_ = _require_string(obj, "type", field)
    if require_id:
        id_ = _require_string(obj, "id", field)
    else:
        raw = obj.get("id")
        id_ = raw if isinstance(raw, str) else ""
    return Entity(type_, id_, _optional_object(obj, "properties", field))


def parse_action(value: Any, field: str = "action") -> Action:
    if isinstance(value, dict):
        name, properties = value.get("name"), value.get("properties")
        if isinstance(name, str) and (properties is None or isinstance(properties, dict)):
            return action(name, properties)
    obj = _require_object(value, field)
    return Action(_require_string(obj, "name", field), _optional_object(obj, "properties", field))


def parse_context(value: Any, field: str = "context") -> Mapping[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidField(f"'{field}' must be an object", field=field)
    return value


def parse_evaluation(body: Any) -> EvaluationRequest:
    """Parse ``{subject, action, resource, context?}``; raise a RequestError naming the field."""
    if not isinstance(body, dict):
        raise InvalidField("the request body must be a JSON object", field="$")
    return evaluation_request(
        parse_entity(body.get("subject"), "subject"),
        parse_action(body.get("action")),
        parse_entity(body.get("resource"), "resource"),
        parse_context(body.get("context")),
    )


_KEPT = 4096  # entities and actions without properties a reader keeps, of each
_loads, _dumps = orjson.loads, orjson.dumps


def read_evaluation(content_type: str | None, body: bytes, *, max_bytes: int,
                    max_depth: int) -> EvaluationRequest:
    """``parse_evaluation(parse_json_body(content_type, body, ...))`` in one step (see
    :class:`EvaluationReader`, which an endpoint keeps)."""
    return EvaluationReader(max_bytes=max_bytes, max_depth=max_depth)(content_type, body)


class EvaluationReader:
    """Reads an evaluation body: ``parse_evaluation(parse_json_body(content_type, body,
    ...))`` in one step, the same request for every body those accept, and their error for
    every other.

    The usual body (``application/json``, no ``\\u`` escape, the common shape) is checked
    at once, from what orjson parsed and a count or two over the text:

    * **Nesting.** A body with only the fields AuthZEN names, whose properties and context
      hold no object or array, is three deep at most. Any other is measured by its brackets,
      whose count bounds the depth.
    * **Duplicate keys**, by the argument of :func:`~pdp.authzen.body.refuse_duplicates`:
      the keys orjson kept are counted without writing the whole body again (the keys of the
      four objects and of flat properties and context, what orjson writes of nested ones:
      never more than orjson would write). Each key in the text is followed by its own
      colon, so when the text has exactly that many colons, it has no more keys than orjson
      kept: none was repeated. (A colon inside a string is counted on both sides or only in
      the text, never only in the count.) Otherwise the ``":`` left once blanks are taken
      out must match the count.

    Any other body, or a count that differs (a key repeated, or a ``":`` inside a string),
    takes the two steps, which alone raise.

    A reader keeps the subjects, resources and actions without properties it made (they are
    immutable; at most 4,096 of each, emptied when full): the same entity asked about again
    is the same object."""

    __slots__ = ("_max_bytes", "_max_depth", "_entities", "_actions")

    def __init__(self, *, max_bytes: int, max_depth: int) -> None:
        self._max_bytes = max_bytes
        self._max_depth = max_depth
        self._entities: dict[tuple[str, str], Entity] = {}
        self._actions: dict[str, Action] = {}

    def __call__(self, content_type: str | None, body: bytes) -> EvaluationRequest:
        max_bytes, max_depth = self._max_bytes, self._max_depth
        if content_type == "application/json" and len(body) <= max_bytes \
                and not escapes_unicode(body):
            try:
                value = _loads(body)
            except orjson.JSONDecodeError:
                value = None
            if type(value) is dict:
                s, a, r = value.get("subject"), value.get("action"), value.get("resource")
                if type(s) is dict and type(a) is dict and type(r) is dict:
                    found = self._common(body, value, s, a, r)
                    if found is not None:
                        return found
        return parse_evaluation(parse_json_body(content_type, body, max_bytes=max_bytes,
                                                max_depth=max_depth))

    def _common(self, body: bytes, value: dict[str, Any], s: dict[str, Any],
                a: dict[str, Any], r: dict[str, Any]) -> EvaluationRequest | None:
        """The request of a body of the common shape whose keys orjson all kept, else
        None."""
        st, si, sp = s.get("type"), s.get("id"), s.get("properties")
        name, ap = a.get("name"), a.get("properties")
        rt, ri, rp = r.get("type"), r.get("id"), r.get("properties")
        if not (type(st) is str and type(si) is str and type(name) is str
                and type(rt) is str and type(ri) is str):
            return None
        context = value.get("context")
        keys = len(value) + len(s) + len(a) + len(r)
        # flat: only the fields AuthZEN names (each object at its fewest keys), and below,
        # properties and context without objects or arrays: at most three deep
        flat = self._max_depth >= 3 and keys == (
            (3 if context is None else 4) + (2 if sp is None else 3) + (1 if ap is None else 2)
            + (2 if rp is None else 3))
        for part in (sp, ap, rp, context):
            if part is not None:
                if type(part) is not dict:
                    return None
                if part:
                    found = _flat_keys(part)
                    if found < 0:
                        flat = False
                        found = _dumps(part).count(b'":')
                    keys += found
        if not flat and body.count(b"{") + body.count(b"[") > self._max_depth:
            return None
        if not keys_all_kept(body, keys):
            return None
        entities = self._entities
        subject = entity(st, si, sp) if sp is not None else kept_entity(st, si, entities)
        resource = entity(rt, ri, rp) if rp is not None else kept_entity(rt, ri, entities)
        act = self._actions.get(name) if ap is None else None
        if act is None:
            act = action(name, ap)
            if ap is None:
                _keep(self._actions, name, act)
        return evaluation_request(subject, act, resource, context)



def kept_entity(type_: str, id_: str, kept: dict[tuple[str, str], Entity]) -> Entity:
    """The entity ``type_``/``id_`` without properties, the same object each time: ``kept``
    holds those made (immutable; at most 4,096, emptied when full)."""
    found = kept.get((type_, id_))
    if found is None:
        found = entity(type_, id_, None)
        _keep(kept, (type_, id_), found)
    return found


def _keep(kept: dict[Any, Any], key: Any, value: Any) -> None:
    """Keep ``value`` under ``key``, emptying ``kept`` first when it holds ``_KEPT``
    (:class:`pdp.caches.Memo`'s rule; this package uses nothing of the PDP but its errors)."""
    if len(kept) >= _KEPT:
        kept.clear()
    kept[key] = value


def _flat_keys(part: dict[str, Any]) -> int:
    """The number of ``part``'s keys when no value is an object or an array, else -1."""
    for value in part.values():
        if type(value) is dict or type(value) is list:
            return -1
    return len(part)
