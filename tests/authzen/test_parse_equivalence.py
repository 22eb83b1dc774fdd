"""The request parsers' common-shape path changes nothing: on any input, parsing an evaluation,
an entity or an action gives what the module's field-by-field path gives (composed here into
the parsers as they were, as the reference), the same values or the same error (class,
message, field)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pdp.authzen.evaluation import (
    _checked_entity,
    _optional_object,
    _require_object,
    _require_string,
    parse_action,
    parse_context,
    parse_entity,
    parse_evaluation,
)
from pdp.authzen.model import Action, Entity, EvaluationRequest, _setters
from pdp.errors import InvalidField, RequestError

# -- the reference: the field-by-field path, one check at a time, through the classes -------
# (the module's own checks, which the common shape must agree with)


def _reference_entity(value: Any, field: str, *, require_id: bool = True) -> Entity:
    return _checked_entity(value, field, require_id)


def _reference_action(value: Any, field: str = "action") -> Action:
    obj = _require_object(value, field)
    return Action(_require_string(obj, "name", field), _optional_object(obj, "properties", field))


def _reference_evaluation(body: Any) -> EvaluationRequest:
    if not isinstance(body, dict):
        raise InvalidField("the request body must be a JSON object", field="$")
    return EvaluationRequest(
        subject=_reference_entity(body.get("subject"), "subject"),
        action=_reference_action(body.get("action")),
        resource=_reference_entity(body.get("resource"), "resource"),
        context=parse_context(body.get("context")),
    )


# -- the comparison ------------------------------------------------------------------------


class _Dict(dict[str, Any]):
    """A dict subclass (as a caller other than the JSON reader might pass)."""


class _Str(str):
    pass


def _outcome(parse: Callable[[], Any]) -> Any:
    try:
        value = parse()
    except RequestError as exc:
        return ("error", type(exc), exc.message, exc.field)
    return ("value", type(value), value, _identities(value))


def _identities(value: Any) -> Any:
    """Each field's class, and for a mapping its identity: the request's own objects."""
    if isinstance(value, EvaluationRequest):
        return (_identities(value.subject), _identities(value.action),
                _identities(value.resource), id(value.context))
    return tuple((type(v), id(v) if isinstance(v, dict) else None)
                 for v in (getattr(value, f.name) for f in fields(value)))


_scalar = (st.none() | st.booleans() | st.integers(-2, 2) | st.floats(allow_nan=False)
           | st.sampled_from(["", "a", "user"]) | st.builds(_Str, st.sampled_from(["", "x"])))
_object = st.dictionaries(st.sampled_from(["p", "q"]), _scalar, max_size=2)
_any = _scalar | st.lists(_scalar, max_size=2) | _object | _object.map(_Dict)
_entity = _any | st.fixed_dictionaries(
    {}, optional={"type": _any, "id": _any, "properties": _any, "other": _any}) | \
    st.fixed_dictionaries({"type": st.just("t"), "id": st.just("i")},
                          optional={"properties": _any}).map(_Dict)
_action = _any | st.fixed_dictionaries({}, optional={"name": _any, "properties": _any})
_body = _any | st.fixed_dictionaries(
    {}, optional={"subject": _entity, "action": _action, "resource": _entity,
                  "context": _any, "evaluations": _any})
_valid_entity = st.fixed_dictionaries({"type": st.text(max_size=3), "id": st.text(max_size=3)},
                                      optional={"properties": _object | st.none()})
_valid_body = st.fixed_dictionaries(
    {"subject": _valid_entity, "resource": _valid_entity,
     "action": st.fixed_dictionaries({"name": st.text(max_size=3)},
                                     optional={"properties": _object | st.none()})},
    optional={"context": _object | st.none()})


@settings(max_examples=1500, deadline=None)
@given(body=_body | _valid_body)
def test_an_evaluation_parses_as_the_reference_parses_it(body: Any) -> None:
    assert _outcome(lambda: parse_evaluation(body)) == \
        _outcome(lambda: _reference_evaluation(body))


@settings(max_examples=800, deadline=None)
@given(value=_entity | _valid_entity, require_id=st.booleans())
def test_an_entity_parses_as_the_reference_parses_it(value: Any, require_id: bool) -> None:
    assert _outcome(lambda: parse_entity(value, "resource", require_id=require_id)) == \
        _outcome(lambda: _reference_entity(value, "resource", require_id=require_id))


@settings(max_examples=500, deadline=None)
@given(value=_action)
def test_an_action_parses_as_the_reference_parses_it(value: Any) -> None:
    assert _outcome(lambda: parse_action(value, "action")) == \
        _outcome(lambda: _reference_action(value, "action"))


def test_the_common_shape_gives_the_classes_own_values() -> None:
    properties, context = {"a": 1}, {"ip": "10.0.0.1"}
    body = {"subject": {"type": "user", "id": "alice", "properties": properties},
            "action": {"name": "read"}, "resource": {"type": "doc", "id": "1"},
            "context": context}
    parsed = parse_evaluation(body)
    assert parsed == EvaluationRequest(Entity("user", "alice", {"a": 1}), Action("read"),
                                       Entity("doc", "1"), {"ip": "10.0.0.1"})
    assert hash(parsed.action) == hash(Action("read"))
    assert parsed.subject.properties is properties
    assert parsed.context is context


def test_a_builder_is_refused_for_a_class_whose_fields_it_does_not_set() -> None:
    with pytest.raises(TypeError, match="sets"):
        _setters(Entity, ("type", "id"))
    with pytest.raises(TypeError, match="sets"):
        _setters(Action, ("properties", "name"))


def test_a_builder_is_refused_for_a_class_that_checks_its_fields() -> None:
    @dataclass(frozen=True, slots=True)
    class Checked:
        name: str

        def __post_init__(self) -> None:
            if not self.name:
                raise ValueError("empty")

    with pytest.raises(TypeError, match="__post_init__"):
        _setters(Checked, ("name",))
