"""The one cedarpy adapter (``pdp.cedar._cedarpy``): each operation works on good input, and
on input Cedar refuses raises ``CedarInputError`` carrying Cedar's message, never cedarpy's
own exception."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from pdp.cedar import _cedarpy
from pdp.errors import CedarInputError, PDPError

POLICIES = 'permit (principal == User::"alice", action == Action::"view", resource);'
SCHEMA = """
entity User;
entity Doc;
action view appliesTo { principal: User, resource: Doc };
"""
ENTITIES = [{"uid": {"type": "User", "id": "alice"}, "attrs": {}, "parents": []}]
REQUEST: dict[str, Any] = {"principal": {"type": "User", "id": "alice"},
                           "action": {"type": "Action", "id": "view"},
                           "resource": {"type": "Doc", "id": "d1"}, "context": {}}
BROKEN = "permit (principal, action, resource) when { principal.role == };"


def test_policy_text_round_trips_through_cedars_json_form() -> None:
    doc = json.loads(_cedarpy.policies_to_json(POLICIES))
    assert list(doc["staticPolicies"]) == ["policy0"]
    assert "alice" in _cedarpy.policies_from_json(json.dumps(doc))


def test_a_policy_set_decides_a_batch_through_the_raw_entry_point() -> None:
    ps = _cedarpy.parse_policies(POLICIES)
    answers = _cedarpy.authorize_batch(
        [dict(REQUEST, context="{}"),
         dict(REQUEST, principal={"type": "User", "id": "bob"}, context="{}")],
        ps, orjson.dumps(ENTITIES).decode())
    assert [a["decision"] for a in answers] == ["Allow", "Deny"]
    assert answers[0]["diagnostics"]["reason"] == ["policy0"]


def test_parsed_entities_decide_as_their_text_does() -> None:
    ps = _cedarpy.parse_policies(POLICIES)
    parsed = _cedarpy.parse_entities(orjson.dumps(ENTITIES).decode())
    extended = _cedarpy.extend_entities(
        parsed, '[{"uid": {"type": "Doc", "id": "d1"}, "attrs": {}, "parents": []}]')
    [answer] = _cedarpy.authorize_batch([dict(REQUEST, context="{}")], ps,
                                        _cedarpy.entities_handle(extended))
    assert answer["decision"] == "Allow"
    uids = {e["uid"]["id"] for e in json.loads(_cedarpy.entities_to_json(extended))}
    assert uids == {"alice", "d1"}


def test_validation_names_each_policy_that_does_not_fit_the_schema() -> None:
    schema = _cedarpy.parse_schema(SCHEMA)
    assert _cedarpy.validate_policies(POLICIES, schema) == []
    problems = _cedarpy.validate_policies(
        'permit (principal == Doc::"d1", action == Action::"view", resource);', schema)
    assert [policy for policy, _ in problems] == ["policy0"]


def test_a_template_is_linked_and_the_link_decides() -> None:
    ps = _cedarpy.parse_policies(
        '@id("t") permit (principal == ?principal, action, resource);')
    [template] = _cedarpy.templates(ps)
    assert template["links"] == []
    linked = _cedarpy.link_template(ps, template["id"], "alice-link",
                                    {"?principal": {"type": "User", "id": "alice"}})
    assert [link["id"] for t in _cedarpy.templates(linked) for link in t["links"]] == [
        "alice-link"]
    [answer] = _cedarpy.authorize_batch([dict(REQUEST, context="{}")], linked, "[]")
    assert (answer["decision"], answer["diagnostics"]["reason"]) == ("Allow", ["alice-link"])


def test_partial_evaluation_leaves_a_residual_over_the_unknown_resource() -> None:
    ps = _cedarpy.parse_policies(
        'permit (principal, action, resource) when { resource.owner == principal };')
    answer = _cedarpy.is_authorized_partial(
        {"principal": 'User::"alice"', "action": 'Action::"view"', "resource": None,
         "context": "{}"}, ps, "[]")
    assert list(answer["residuals"]) == ["policy0"]


def test_a_schema_reads_in_both_syntaxes_and_renders_as_cedar_text() -> None:
    schema = _cedarpy.parse_schema(SCHEMA)
    again = _cedarpy.schema_text(_cedarpy.schema_from_json(json.dumps({"": {
        "entityTypes": {"User": {}}, "actions": {}}})))
    assert "entity User" in _cedarpy.schema_text(schema) and "entity User" in again


REFUSED: list[tuple[str, Callable[[], object]]] = [
    ("policies", lambda: _cedarpy.parse_policies(BROKEN)),
    ("policies to json", lambda: _cedarpy.policies_to_json(BROKEN)),
    ("policies from json", lambda: _cedarpy.policies_from_json('{"staticPolicies": 1}')),
    ("json policy set", lambda: _cedarpy.policy_set_from_json("{")),
    ("format", lambda: _cedarpy.format_policies(BROKEN, line_width=80, indent_width=2)),
    ("schema", lambda: _cedarpy.parse_schema("entity User = ;")),
    ("json schema", lambda: _cedarpy.schema_from_json('{"": {"entityTypes": 3}}')),
    ("validation", lambda: _cedarpy.validate_policies(POLICIES, 3)),
    ("entities", lambda: _cedarpy.parse_entities('[{"uid": 3}]')),
    ("entities against a schema", lambda: _cedarpy.parse_entities(
        '[{"uid": {"type": "Nope", "id": "x"}, "attrs": {}, "parents": []}]',
        _cedarpy.parse_schema(SCHEMA))),
    ("added entities", lambda: _cedarpy.extend_entities(
        _cedarpy.parse_entities("[]"), "[1]")),
    ("link", lambda: _cedarpy.link_template(_cedarpy.parse_policies(POLICIES), "none", "l",
                                            {"?principal": {"type": "User", "id": "a"}})),
    ("links", lambda: _cedarpy.link_templates(_cedarpy.parse_policies(POLICIES), [
        {"template_id": "none", "new_id": "l", "values": {}}])),
    ("batch", lambda: _cedarpy.authorize_batch(
        [{"principal": REQUEST["principal"]}], _cedarpy.parse_policies(POLICIES), "[]")),
]


@pytest.mark.parametrize(("what", "call"), REFUSED, ids=[w for w, _ in REFUSED])
def test_input_cedar_refuses_raises_the_pdps_error_with_cedars_message(
        what: str, call: Callable[[], object]) -> None:
    with pytest.raises(PDPError) as caught:
        call()
    assert type(caught.value) is CedarInputError
    assert caught.value.message and caught.value.status == 400
    assert caught.value.__cause__ is None  # cedarpy's exception is not chained along


def test_a_request_cedar_cannot_build_is_answered_with_no_decision_and_cedars_reason() -> None:
    # (evaluation reports these in its answer: the engine denies such an answer)
    ps = _cedarpy.parse_policies(POLICIES)
    [batch] = _cedarpy.authorize_batch([dict(REQUEST, context="{")], ps, "[]")
    [entities] = _cedarpy.authorize_batch([dict(REQUEST, context="{}")], ps, "[1]")
    single = _cedarpy.is_authorized(dict(REQUEST, principal="not a uid"), ps,
                                    _cedarpy.parse_entities("[]"))
    partial = _cedarpy.is_authorized_partial(
        {"principal": "not a uid", "action": 'Action::"view"', "resource": None,
         "context": "{}"}, ps, "[]")
    for answer in (batch, entities, single, partial):
        assert answer["decision"] == "NoDecision"
        assert answer["diagnostics"]["errors"]


def test_a_policy_text_that_does_not_parse_is_a_validation_problem() -> None:
    [(policy, problem)] = _cedarpy.validate_policies(BROKEN, _cedarpy.parse_schema(SCHEMA))
    assert policy == "" and "unexpected token" in problem
