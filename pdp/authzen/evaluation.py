"""Access Evaluation API (AuthZEN 1.0 section 6): parsing one evaluation request.

Unknown fields are ignored (section 5); required fields are checked with the name of the
field at fault.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pdp.authzen.model import Action, Entity, EvaluationRequest
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
    obj = _require_object(value, field)
    type_ = _require_string(obj, "type", field)
    if require_id:
        id_ = _require_string(obj, "id", field)
    else:
        raw = obj.get("id")
        id_ = raw if isinstance(raw, str) else ""
    return Entity(type_, id_, _optional_object(obj, "properties", field))


def parse_action(value: Any, field: str = "action") -> Action:
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
    return EvaluationRequest(
        subject=parse_entity(body.get("subject"), "subject"),
        action=parse_action(body.get("action")),
        resource=parse_entity(body.get("resource"), "resource"),
        context=parse_context(body.get("context")),
    )
