"""Loading a ``tools/list`` result into a catalogue, and calling the tools in it."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from pdp.coaz import Deny, Evaluate, MappingOptions, ToolCatalog, map_message
from pdp.errors import MappingError
from tests.coaz.spec_examples import COPY_OBJECT_TOOL, GET_CUSTOMER_TOOL, call, load

CLAIMS = {"sub": "alice@example.com", "client_id": "agent-app-1"}


def plain(name: str = "plain", **schema: Any) -> dict[str, Any]:
    return {"name": name, "inputSchema": {"type": "object", **schema}}


def outcome_of(catalog: ToolCatalog, name: str, arguments: Any = None) -> Evaluate | Deny:
    params: dict[str, Any] = {"name": name}
    if arguments is not None:
        params["arguments"] = arguments
    outcome = map_message(call(params), CLAIMS, catalog, MappingOptions())
    assert isinstance(outcome, Evaluate | Deny)
    return outcome


def test_both_dialects_load_into_one_catalogue() -> None:
    catalog = ToolCatalog.from_tools_list(
        [load(GET_CUSTOMER_TOOL), load(COPY_OBJECT_TOOL), plain()], server_id="crm")
    assert catalog.problems == ()
    assert catalog.server_id == "crm"
    dialects = {name: entry.dialect for name, entry in catalog.tools.items()}
    assert dialects == {"get_customer": "sep", "copy_object": "binding", "plain": None}


def test_a_malformed_mapping_is_reported_with_its_path_and_only_that_tool_fails() -> None:
    broken = {"name": "broken", "inputSchema": {"type": "object", "x-authzen-mapping": {
        "evaluation": {"action": {"name": "a"}, "resource": {"type": "t"}}}}}
    catalog = ToolCatalog.from_tools_list([load(GET_CUSTOMER_TOOL), plain(), broken,
                                           load(COPY_OBJECT_TOOL)])
    assert [e.field for e in catalog.problems] == [
        "tools[2].inputSchema.x-authzen-mapping.evaluation.resource.id"]
    assert list(catalog.errors) == ["broken"]
    failed = outcome_of(catalog, "broken", {})
    assert isinstance(failed, Deny) and failed.code == -32602
    assert "tools[2].inputSchema.x-authzen-mapping.evaluation.resource.id" in failed.message
    assert isinstance(outcome_of(catalog, "get_customer", {"id": "c"}), Evaluate)
    assert isinstance(outcome_of(catalog, "plain", {}), Evaluate)
    assert isinstance(outcome_of(catalog, "copy_object", {"source": "a", "destination": "b"}),
                      Evaluate)


def test_a_refused_tool_definition_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="pdp.coaz"):
        ToolCatalog.from_tools_list([{"name": "x"}], server_id="crm")
    assert "crm" in caplog.text and "tools[0].inputSchema" in caplog.text


@pytest.mark.parametrize(("definition", "field"), [
    ({"name": "t"}, "tools[0].inputSchema"),
    ({"name": "t", "inputSchema": {"properties": {}}}, "tools[0].inputSchema.type"),
    ({"name": "t", "inputSchema": {"type": "array"}}, "tools[0].inputSchema.type"),
    ({"name": "t", "inputSchema": {"type": "object", "properties": {"a": {"type": "strin"}}}},
     "tools[0].inputSchema.properties.a.type"),
    ({"name": "t", "coaz": "yes", "inputSchema": {"type": "object"}}, "tools[0].coaz"),
    ({"name": "t", "coaz": True, "inputSchema": {"type": "object"}},
     "tools[0].inputSchema.x-coaz-mapping"),
    ({"name": "t", "inputSchema": {"type": "object", "x-coaz-mapping": {}}}, "tools[0].coaz"),
    ({"name": "t", "coaz": False, "inputSchema": {"type": "object", "x-coaz-mapping": {}}},
     "tools[0].coaz"),
    ({"name": "t", "coaz": True, "inputSchema": {"type": "object", "x-coaz-mapping": {},
                                                  "x-authzen-mapping": {}}},
     "tools[0].inputSchema"),
])
def test_a_malformed_tool_definition_is_refused_with_the_path_of_the_problem(
        definition: dict[str, Any], field: str) -> None:
    catalog = ToolCatalog.from_tools_list([definition])
    assert catalog.errors["t"].field == field


def test_a_tool_without_a_usable_name_is_reported_and_skipped() -> None:
    catalog = ToolCatalog.from_tools_list(["nope", {"inputSchema": {"type": "object"}},
                                           {"name": 5}, plain()])
    assert [e.field for e in catalog.problems] == ["tools[0]", "tools[1].name", "tools[2].name"]
    assert list(catalog.tools) == ["plain"]


def test_a_tool_defined_twice_cannot_be_called() -> None:
    catalog = ToolCatalog.from_tools_list([plain("dup"), plain("other"), plain("dup")])
    assert catalog.errors["dup"].field == "tools[2]"
    assert "tools[0], tools[2]" in catalog.errors["dup"].message
    assert isinstance(outcome_of(catalog, "dup", {}), Deny)
    assert isinstance(outcome_of(catalog, "other", {}), Evaluate)


def test_a_name_outside_the_recommended_characters_is_accepted_with_a_warning() -> None:
    catalog = ToolCatalog.from_tools_list([plain("get customer")])
    assert not catalog.problems
    assert catalog.warnings and "tools[0].name" in catalog.warnings[0]
    assert isinstance(outcome_of(catalog, "get customer", {}), Evaluate)


def test_a_tools_value_that_is_not_an_array_raises() -> None:
    with pytest.raises(MappingError) as raised:
        ToolCatalog.from_tools_list({"tools": []})  # type: ignore[arg-type]
    assert raised.value.field == "tools"


def test_calling_a_tool_that_is_not_in_the_catalogue_is_a_mapping_error() -> None:
    outcome = outcome_of(ToolCatalog.from_tools_list([plain()]), "unknown", {})
    assert outcome == Deny(-32602, "unknown tool 'unknown'", field="params.name")


@pytest.mark.parametrize("params", [{}, {"name": 3}, {"name": "plain", "arguments": [1]}])
def test_a_tools_call_with_malformed_params_is_a_mapping_error(params: dict[str, Any]) -> None:
    outcome = map_message(call(params), CLAIMS, ToolCatalog.from_tools_list([plain()]),
                          MappingOptions())
    assert isinstance(outcome, Deny) and outcome.code == -32602


def test_a_call_without_arguments_is_validated_as_an_empty_object() -> None:
    catalog = ToolCatalog.from_tools_list([plain("a"), plain("b", required=["q"])])
    assert isinstance(outcome_of(catalog, "a"), Evaluate)
    assert isinstance(outcome_of(catalog, "b"), Deny)


@pytest.mark.parametrize(("schema", "arguments", "field"), [
    ({"properties": {"n": {"type": "integer"}}}, {"n": "5"}, "params.arguments.n"),
    ({"properties": {"n": {"type": "integer"}}}, {"n": True}, "params.arguments.n"),
    ({"properties": {"n": {"type": "integer", "minimum": 0}}}, {"n": -1}, "params.arguments.n"),
    ({"properties": {"s": {"type": "string", "enum": ["a"]}}}, {"s": "b"}, "params.arguments.s"),
    ({"additionalProperties": False}, {"x": 1}, "params.arguments"),
    ({"properties": {"l": {"type": "array", "items": {"type": "string"}}}}, {"l": ["a", 2]},
     "params.arguments.l[1]"),
])
def test_arguments_that_violate_the_input_schema_are_a_mapping_error(
        schema: dict[str, Any], arguments: dict[str, Any], field: str) -> None:
    outcome = outcome_of(ToolCatalog.from_tools_list([plain(**schema)]), "plain", arguments)
    assert isinstance(outcome, Deny) and outcome.code == -32602
    assert outcome.field == field
    assert "inputSchema" in outcome.message


def test_a_tool_without_mapping_uses_the_default_tools_call_mapping() -> None:
    outcome = outcome_of(ToolCatalog.from_tools_list([plain()]), "plain", {})
    assert isinstance(outcome, Evaluate)
    assert outcome.dialect == "default"
    assert outcome.evaluation == {"subject": {"type": "identity", "id": "alice@example.com"},
                                  "action": {"name": "tools/call"},
                                  "resource": {"type": "tool", "id": "plain"},
                                  "context": {"agent": "agent-app-1"}}


def test_an_empty_catalogue_denies_every_tool_call() -> None:
    outcome = outcome_of(ToolCatalog(), "anything", {})
    assert isinstance(outcome, Deny) and outcome.code == -32602


def test_deeply_nested_arguments_are_a_mapping_error_not_a_crash() -> None:
    nested: Any = "leaf"
    for _ in range(5_000):
        nested = [nested]
    catalog = ToolCatalog.from_tools_list([load(COPY_OBJECT_TOOL), {
        "name": "deep", "inputSchema": {"type": "object", "x-authzen-mapping": {"evaluation": {
            "action": {"name": "a"}, "resource": {"type": "t", "id": "i"},
            "context": {"all": "$params.arguments"}}}}}])
    outcome = outcome_of(catalog, "deep", {"x": nested})
    assert isinstance(outcome, Deny) and outcome.code == -32602


def test_a_request_deeper_than_the_limit_is_a_mapping_error() -> None:
    catalog = ToolCatalog.from_tools_list([{
        "name": "copy", "inputSchema": {"type": "object", "x-authzen-mapping": {"evaluation": {
            "action": {"name": "a"}, "resource": {"type": "t", "id": "i"},
            "context": {"all": "$params.arguments"}}}}}])
    arguments = {"x": [[["leaf"]]]}  # body, context, arguments, and three arrays: depth 6
    for limit, allowed in ((6, True), (5, False)):
        outcome = map_message(call({"name": "copy", "arguments": arguments}), CLAIMS, catalog,
                              MappingOptions(max_depth=limit))
        assert isinstance(outcome, Evaluate) == allowed, outcome
