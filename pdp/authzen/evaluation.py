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

from pdp.authzen.model import (
    Action,
    Entity,
    EvaluationRequest,
    action,
    entity,
    evaluation_request,
)
from pdp.errors import InvalidField, MissingField

__all__ = ["parse_evaluation", "parse_entity", "parse_action", "parse_context"]


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
