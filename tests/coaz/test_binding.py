"""Dialect 2 (the COAZ-MCP binding): ``x-authzen-mapping`` envelopes with CEL expressions."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from pdp.coaz import Deny, Evaluate, MappingOptions, ToolCatalog, map_message
from tests.coaz.spec_examples import COPY_OBJECT_TOOL, TRANSFER_FUNDS_TOOL, call, load

CLAIMS = {"sub": "alice@example.com", "client_id": "agent-app-1"}

COPY_OBJECT_REQUEST = {
    "subject": {"type": "identity", "id": "alice@example.com"},
    "context": {"agent": "agent-app-1"},
    "evaluations": [
        {"action": {"name": "read"}, "resource": {"type": "storage_object", "id": "a/b.txt"}},
        {"action": {"name": "write"}, "resource": {"type": "storage_object", "id": "c/d.txt"}},
    ],
}


def tool(mapping: dict[str, Any], *, properties: dict[str, Any] | None = None,
         required: list[str] | None = None, name: str = "tool") -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties or {
        "id": {"type": "string"}, "who": {"type": "string"}, "n": {"type": "integer"},
        "ids": {"type": "array", "items": {"type": "string"}}}}
    if required:
        schema["required"] = required
    schema["x-authzen-mapping"] = mapping
    return {"name": name, "inputSchema": schema}


def evaluation(**members: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"action": {"name": "read"},
                            "resource": {"type": "doc", "id": "$params.arguments.id"}}
    base.update(members)
    return {"evaluation": {k: v for k, v in base.items() if v is not None}}


def run(definition: dict[str, Any], arguments: dict[str, Any],
        claims: dict[str, Any] | None = None,
        options: MappingOptions | None = None) -> Evaluate | Deny:
    catalog = ToolCatalog.from_tools_list([definition])
    assert not catalog.problems, catalog.problems
    outcome = map_message(call({"name": definition["name"], "arguments": arguments}),
                          CLAIMS if claims is None else claims, catalog, options)
    assert isinstance(outcome, Evaluate | Deny)
    return outcome


def body_of(outcome: Evaluate | Deny) -> dict[str, Any]:
    assert isinstance(outcome, Evaluate), outcome
    return outcome.body


def load_error(definition: dict[str, Any]) -> str | None:
    catalog = ToolCatalog.from_tools_list([definition])
    error = catalog.errors.get(definition["name"])
    return None if error is None else error.field


# -- the spec's examples --------------------------------------------------------------------


def test_the_copy_object_example_becomes_one_evaluations_request_with_two_decisions() -> None:
    outcome = run(load(COPY_OBJECT_TOOL), {"source": "a/b.txt", "destination": "c/d.txt"})
    assert isinstance(outcome, Evaluate)
    assert outcome.evaluation is None
    assert outcome.evaluations == COPY_OBJECT_REQUEST
    assert json.dumps(outcome.evaluations) == json.dumps(COPY_OBJECT_REQUEST)
    assert outcome.endpoint == "/access/v1/evaluations"
    assert outcome.dialect == "binding"
    assert outcome.deny_code == -32001
    assert outcome.warnings == ()


def test_the_copy_object_example_without_a_client_id_drops_the_agent() -> None:
    outcome = run(load(COPY_OBJECT_TOOL), {"source": "a", "destination": "b"},
                  claims={"sub": "alice@example.com"})
    assert body_of(outcome)["context"] == {}


def test_a_copy_object_call_without_its_destination_is_a_mapping_error() -> None:
    outcome = run(load(COPY_OBJECT_TOOL), {"source": "a"})
    assert outcome == Deny(-32602, "arguments do not match the tool's inputSchema at "
                                   "params.arguments: 'destination' is a required property")


@pytest.mark.parametrize(("amount", "risk"), [
    (10001, "high"), (25000.5, "high"), (10000, "standard"), (9999.99, "standard"), (1, "standard"),
])
def test_transfer_funds_puts_the_risk_level_into_the_context(amount: float, risk: str) -> None:
    arguments = {"from_account": "acc-1", "to_account": "acc-2", "amount": amount}
    outcome = run(load(TRANSFER_FUNDS_TOOL), arguments)
    assert body_of(outcome) == {
        "subject": {"type": "identity", "id": "alice@example.com"},
        "action": {"name": "transfer"},
        "resource": {"type": "account", "id": "acc-1"},
        "context": {"agent": "agent-app-1", "amount": amount, "to_account": "acc-2",
                    "risk": risk},
    }


def test_transfer_funds_keeps_an_optional_currency() -> None:
    arguments = {"from_account": "a", "to_account": "b", "amount": 5, "currency": "EUR"}
    assert body_of(run(load(TRANSFER_FUNDS_TOOL), arguments))["context"]["currency"] == "EUR"


def test_transfer_funds_with_a_negative_amount_is_a_mapping_error() -> None:
    outcome = run(load(TRANSFER_FUNDS_TOOL), {"from_account": "a", "to_account": "b",
                                              "amount": -5})
    assert isinstance(outcome, Deny) and outcome.code == -32602


# -- values ---------------------------------------------------------------------------------


def test_a_double_dollar_escapes_a_literal_dollar() -> None:
    definition = tool(evaluation(context={"price": "$$5", "expr": "$$token.sub", "two": "$$$x"}))
    assert body_of(run(definition, {"id": "d"}))["context"] == {
        "price": "$5", "expr": "$token.sub", "two": "$$x"}


def test_literals_of_every_json_type_are_kept() -> None:
    literals = {"s": "text", "n": 3, "f": 2.5, "t": False, "z": None, "big": 2**70,
                "l": [1, "a", {"k": "v"}], "o": {"nested": {"deep": "yes"}}}
    assert body_of(run(tool(evaluation(context=literals)), {"id": "d"}))["context"] == literals


def test_expressions_inside_nested_objects_and_arrays_are_evaluated() -> None:
    definition = tool(evaluation(context={"who": {"me": "$token.sub"},
                                          "list": ["$params.name", "$token.?missing", 1]}))
    assert body_of(run(definition, {"id": "d"}))["context"] == {
        "who": {"me": "alice@example.com"}, "list": ["tool", 1]}


def test_a_missing_optional_claim_drops_its_field() -> None:
    definition = tool(evaluation(context={"agent": "$token.?client_id", "org": "$token.?org"}))
    assert body_of(run(definition, {"id": "d"}))["context"] == {"agent": "agent-app-1"}


def test_an_optional_claim_can_have_a_default() -> None:
    definition = tool(evaluation(context={"org": "$token.?org.orValue('none')"}))
    assert body_of(run(definition, {"id": "d"}))["context"] == {"org": "none"}


def test_plain_selection_of_a_missing_claim_is_a_mapping_error() -> None:
    definition = tool(evaluation(context={"org": "$token.org"}))
    outcome = run(definition, {"id": "d"})
    assert isinstance(outcome, Deny) and outcome.code == -32602
    assert outcome.field == "tools[0].inputSchema.x-authzen-mapping.evaluation.context.org"
    assert "token.org" in outcome.message


def test_an_expression_that_fails_at_run_time_is_a_mapping_error() -> None:
    definition = tool(evaluation(context={"q": "$params.arguments.n / 0"}))
    outcome = run(definition, {"id": "d", "n": 4})
    assert isinstance(outcome, Deny) and outcome.code == -32602
    assert "context.q" in outcome.message


@pytest.mark.parametrize("expression", [
    "$b'bytes'", "$timestamp('2024-01-01T00:00:00Z')", "$duration('1s')", "${1: 'a'}",
    "$1.0 / 0.0", "$int",
])
def test_a_result_that_is_not_json_is_a_mapping_error(expression: str) -> None:
    outcome = run(tool(evaluation(context={"v": expression})), {"id": "d"})
    assert isinstance(outcome, Deny) and outcome.code == -32602


def test_an_integer_outside_64_bits_in_the_arguments_is_a_mapping_error() -> None:
    outcome = run(tool(evaluation()), {"id": "d", "n": 2**64})
    assert isinstance(outcome, Deny) and outcome.code == -32602


@pytest.mark.parametrize("arguments", [{"id": "doc-1\x00-other"}, {"id": "d", "k\x00": "v"}])
def test_a_nul_character_in_the_arguments_is_a_mapping_error_not_a_truncation(
        arguments: dict[str, Any]) -> None:
    outcome = run(tool(evaluation(), properties={"id": {"type": "string"}}), arguments)
    assert isinstance(outcome, Deny) and outcome.code == -32602
    assert "NUL" in outcome.message


def test_a_nul_character_in_the_token_is_a_mapping_error() -> None:
    outcome = run(tool(evaluation()), {"id": "d"}, claims={**CLAIMS, "x": ["a\x00"]})
    assert isinstance(outcome, Deny) and outcome.code == -32602


def test_an_expression_may_build_a_whole_object() -> None:
    definition = tool(evaluation(resource="$ {'type': 'doc', 'id': params.arguments.id}"))
    assert body_of(run(definition, {"id": "d-9"}))["resource"] == {"type": "doc", "id": "d-9"}


def test_a_trailing_comment_in_an_expression_is_harmless() -> None:
    definition = tool(evaluation(context={"a": "$token.sub // who", "b": "$token.?x // opt"}))
    assert body_of(run(definition, {"id": "d"}))["context"] == {"a": "alice@example.com"}


# -- absent parts ---------------------------------------------------------------------------


def test_an_optional_resource_that_is_missing_is_a_mapping_error() -> None:
    definition = tool(evaluation(resource="$token.?resource"))
    outcome = run(definition, {"id": "d"})
    assert isinstance(outcome, Deny) and outcome.code == -32602
    assert outcome.field == "tools[0].inputSchema.x-authzen-mapping.evaluation.resource"


def test_an_optional_action_name_that_is_missing_is_a_mapping_error() -> None:
    definition = tool(evaluation(action={"name": "$token.?verb"}))
    outcome = run(definition, {"id": "d"})
    assert isinstance(outcome, Deny)
    assert outcome.field == "tools[0].inputSchema.x-authzen-mapping.evaluation.action.name"


def test_an_optional_resource_id_that_is_missing_is_a_mapping_error() -> None:
    definition = tool(evaluation(resource={"type": "doc", "id": "$params.arguments.?id"}))
    outcome = run(definition, {})
    assert isinstance(outcome, Deny)
    assert outcome.field == "tools[0].inputSchema.x-authzen-mapping.evaluation.resource.id"


# -- subject anchoring ----------------------------------------------------------------------


def test_a_missing_subject_is_the_token_subject_of_type_identity() -> None:
    body = body_of(run(tool(evaluation()), {"id": "d"}))
    assert body["subject"] == {"type": "identity", "id": "alice@example.com"}
    assert list(body) == ["subject", "action", "resource"]


def test_a_missing_subject_id_is_the_token_subject() -> None:
    body = body_of(run(tool(evaluation(subject={"type": "user"})), {"id": "d"}))
    assert body["subject"] == {"type": "user", "id": "alice@example.com"}


def test_a_missing_subject_type_is_identity() -> None:
    body = body_of(run(tool(evaluation(subject={"id": "$token.sub"})), {"id": "d"}))
    assert body["subject"] == {"type": "identity", "id": "alice@example.com"}


def test_subject_properties_are_kept_when_the_id_is_filled_in() -> None:
    subject = {"properties": {"dept": "$token.?dept.orValue('none')"}}
    body = body_of(run(tool(evaluation(subject=subject)), {"id": "d"}))
    assert body["subject"] == {"properties": {"dept": "none"}, "id": "alice@example.com",
                               "type": "identity"}


def test_an_on_behalf_of_identity_claim_can_be_configured() -> None:
    claims = {**CLAIMS, "obo": "bob@example.com"}
    body = body_of(run(tool(evaluation()), {"id": "d"}, claims=claims,
                       options=MappingOptions(identity_claim="obo")))
    assert body["subject"]["id"] == "bob@example.com"


def test_a_subject_id_not_from_the_token_is_allowed_and_logged_as_a_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    definition = tool(evaluation(subject={"type": "identity", "id": "$params.arguments.who"}))
    with caplog.at_level(logging.WARNING, logger="pdp.coaz"):
        outcome = run(definition, {"id": "d", "who": "mallory"})
    assert isinstance(outcome, Evaluate)
    assert outcome.body["subject"] == {"type": "identity", "id": "mallory"}
    assert len(outcome.warnings) == 1 and "subject.id" in outcome.warnings[0]
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "mallory" not in caplog.text


def test_a_subject_id_equal_to_the_token_subject_gives_no_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    definition = tool(evaluation(subject={"type": "identity", "id": "$params.arguments.who"}))
    with caplog.at_level(logging.WARNING, logger="pdp.coaz"):
        outcome = run(definition, {"id": "d", "who": "alice@example.com"})
    assert isinstance(outcome, Evaluate) and outcome.warnings == ()
    assert not caplog.records


def test_a_token_without_sub_makes_the_client_the_subject() -> None:
    claims = {"client_id": "batch-job", "aud": "https://mcp.example.com"}
    outcome = run(tool(evaluation()), {"id": "d"}, claims=claims)
    assert isinstance(outcome, Evaluate)
    assert outcome.body["subject"] == {"type": "client", "id": "batch-job"}
    assert any("subject is the client" in w for w in outcome.warnings)


def test_a_token_without_sub_or_client_is_a_mapping_error() -> None:
    outcome = run(tool(evaluation()), {"id": "d"}, claims={"scope": "x"})
    assert isinstance(outcome, Deny) and outcome.code == -32602


# -- the evaluations envelope ---------------------------------------------------------------


def test_an_evaluations_entry_with_its_own_subject_is_refused_at_load() -> None:
    definition = tool({"evaluations": {"evaluations": [
        {"subject": {"type": "identity", "id": "x"}, "action": {"name": "a"},
         "resource": {"type": "t", "id": "i"}}]}})
    assert load_error(definition) == \
        "tools[0].inputSchema.x-authzen-mapping.evaluations.evaluations[0].subject"


def test_an_evaluations_entry_built_with_a_subject_is_a_mapping_error() -> None:
    definition = tool({"evaluations": {"resource": {"type": "doc", "id": "x"},
                                       "evaluations": "$[{'subject': {'type': 'u', 'id': 'm'},"
                                                      " 'action': {'name': 'read'}}]"}})
    outcome = run(definition, {})
    assert isinstance(outcome, Deny)
    assert outcome.field == \
        "tools[0].inputSchema.x-authzen-mapping.evaluations.evaluations[0].subject"


def test_an_array_argument_fans_out_only_through_an_explicit_evaluations_expression() -> None:
    definition = tool({"evaluations": {
        "action": {"name": "delete"},
        "evaluations": "$params.arguments.ids.map(i, {'resource': {'type': 'doc', 'id': i}})"}})
    body = body_of(run(definition, {"ids": ["d1", "d2", "d3"]}))
    assert body == {"subject": {"type": "identity", "id": "alice@example.com"},
                    "action": {"name": "delete"},
                    "evaluations": [{"resource": {"type": "doc", "id": f"d{i}"}}
                                    for i in (1, 2, 3)]}


def test_an_empty_fan_out_is_a_mapping_error_not_an_empty_permit() -> None:
    definition = tool({"evaluations": {
        "action": {"name": "delete"},
        "evaluations": "$params.arguments.ids.map(i, {'resource': {'type': 'doc', 'id': i}})"}})
    outcome = run(definition, {"ids": []})
    assert isinstance(outcome, Deny) and outcome.code == -32602
    assert "empty" in outcome.message


def test_entries_inherit_the_top_level_action_and_resource() -> None:
    definition = tool({"evaluations": {
        "resource": {"type": "doc", "id": "$params.arguments.id"},
        "evaluations": [{"action": {"name": "read"}}, {"action": {"name": "share"}}]}})
    body = body_of(run(definition, {"id": "d"}))
    assert body["resource"] == {"type": "doc", "id": "d"}
    assert body["evaluations"] == [{"action": {"name": "read"}}, {"action": {"name": "share"}}]


def test_an_entry_without_action_anywhere_is_refused_at_load() -> None:
    definition = tool({"evaluations": {"evaluations": [{"resource": {"type": "t", "id": "i"}}]}})
    assert load_error(definition) == \
        "tools[0].inputSchema.x-authzen-mapping.evaluations.evaluations[0].action"


@pytest.mark.parametrize("semantic", ["execute_all", "deny_on_first_deny"])
def test_evaluations_options_that_keep_every_decision_enforced_are_kept(semantic: str) -> None:
    definition = tool({"evaluations": {
        "action": {"name": "read"}, "options": {"evaluations_semantic": semantic},
        "evaluations": [{"resource": {"type": "t", "id": "i"}}]}})
    body = body_of(run(definition, {}))
    assert body["options"] == {"evaluations_semantic": semantic}
    assert list(body) == ["subject", "action", "evaluations", "options"]


def test_permit_on_first_permit_is_a_mapping_error() -> None:
    definition = tool({"evaluations": {
        "action": {"name": "read"}, "options": {"evaluations_semantic": "permit_on_first_permit"},
        "evaluations": [{"resource": {"type": "t", "id": "i"}}]}})
    outcome = run(definition, {})
    assert isinstance(outcome, Deny) and "evaluations_semantic" in outcome.message


# -- malformed mappings ---------------------------------------------------------------------


@pytest.mark.parametrize(("mapping", "where"), [
    ({}, ""),
    ({"evaluation": {}, "evaluations": {}}, ""),
    ({"decision": {}}, ""),
    ({"evaluation": []}, ".evaluation"),
    ({"evaluation": {"resource": {"type": "t", "id": "i"}}}, ".evaluation.action"),
    ({"evaluation": {"action": {"name": "a"}}}, ".evaluation.resource"),
    ({"evaluation": {"action": {"name": "a"}, "resource": {"type": "t"}}},
     ".evaluation.resource.id"),
    ({"evaluation": {"action": {}, "resource": {"type": "t", "id": "i"}}},
     ".evaluation.action.name"),
    ({"evaluation": {"action": {"name": "a"}, "resource": {"type": "t", "id": "$token."}}},
     ".evaluation.resource.id"),
    ({"evaluation": {"action": {"name": "a"}, "resource": {"type": "t", "id": "$nope.x"}}},
     ".evaluation.resource.id"),
    ({"evaluation": {"action": {"name": "a"}, "resource": {"type": "t", "id": "$"}}},
     ".evaluation.resource.id"),
    ({"evaluation": {"action": {"name": "a"}, "resource": {"type": "t", "id": "i"},
                     "extra": 1}}, ".evaluation.extra"),
    ({"evaluation": {"action": "read", "resource": {"type": "t", "id": "i"}}},
     ".evaluation.action"),
    ({"evaluation": {"action": {"name": "a"}, "resource": {"type": "t", "id": "i"},
                     "context": [1]}}, ".evaluation.context"),
    ({"evaluations": {"action": {"name": "a"}}}, ".evaluations.evaluations"),
    ({"evaluations": {"action": {"name": "a"}, "evaluations": []}}, ".evaluations.evaluations"),
    ({"evaluations": {"action": {"name": "a"}, "evaluations": "$$x"}},
     ".evaluations.evaluations"),
    ({"evaluations": []}, ".evaluations"),
])
def test_a_malformed_binding_mapping_is_refused_with_the_path_of_the_problem(
        mapping: dict[str, Any], where: str) -> None:
    assert load_error(tool(mapping)) == "tools[0].inputSchema.x-authzen-mapping" + where


def test_expressions_are_compiled_once_when_the_tool_list_is_loaded() -> None:
    catalog = ToolCatalog.from_tools_list([load(COPY_OBJECT_TOOL)])
    entry = catalog.get("copy_object")
    assert entry is not None and entry.mapping is not None
    first = entry.mapping.resolve
    for _ in range(3):
        map_message(call({"name": "copy_object",
                          "arguments": {"source": "a", "destination": "b"}}),
                    CLAIMS, catalog, MappingOptions())
    assert entry.mapping.resolve is first
