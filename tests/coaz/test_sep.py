"""Dialect 1 (the MCP SEP): ``coaz: true`` and ``x-coaz-mapping`` with JSONPath references."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from pdp.coaz import Deny, Evaluate, MappingOptions, ToolCatalog, map_message
from tests.coaz.spec_examples import (
    GET_CUSTOMER_CALL,
    GET_CUSTOMER_CLAIMS,
    GET_CUSTOMER_REQUEST,
    GET_CUSTOMER_TOOL,
    call,
    load,
)

CLAIMS = {"sub": "alice@example.com", "client_id": "agent-app-1"}


def sep_tool(mapping: dict[str, Any], *, properties: dict[str, Any] | None = None,
             required: list[str] | None = None, name: str = "tool") -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object",
                              "properties": properties if properties is not None else {
                                  "id": {"type": "string"}, "case": {"type": "string"},
                                  "ids": {"type": "array", "items": {"type": "string"}},
                                  "items": {"type": "array"}},
                              "x-coaz-mapping": mapping}
    if required is not None:
        schema["required"] = required
    return {"name": name, "coaz": True, "inputSchema": schema}


def mapping_with(**context: Any) -> dict[str, Any]:
    return {"subject": {"type": "user", "id": "$token['sub']"},
            "resource": {"type": "customer", "id": "$properties['id']"},
            "context": context}


def run(tool: dict[str, Any], arguments: dict[str, Any], claims: dict[str, Any] | None = None,
        options: MappingOptions | None = None) -> Evaluate | Deny:
    catalog = ToolCatalog.from_tools_list([tool])
    assert not catalog.problems, catalog.problems
    outcome = map_message(call({"name": tool["name"], "arguments": arguments}),
                          CLAIMS if claims is None else claims, catalog, options)
    assert isinstance(outcome, Evaluate | Deny)
    return outcome


def test_the_get_customer_example_becomes_exactly_the_request_of_the_spec() -> None:
    catalog = ToolCatalog.from_tools_list([load(GET_CUSTOMER_TOOL)])
    outcome = map_message(call(load(GET_CUSTOMER_CALL)), load(GET_CUSTOMER_CLAIMS), catalog,
                          MappingOptions())
    assert isinstance(outcome, Evaluate)
    assert outcome.evaluation == load(GET_CUSTOMER_REQUEST)
    assert json.dumps(outcome.evaluation) == json.dumps(load(GET_CUSTOMER_REQUEST))
    assert outcome.evaluations is None
    assert outcome.dialect == "sep"
    assert outcome.endpoint == "/access/v1/evaluation"


def test_a_denial_of_a_sep_request_uses_the_sep_deny_code() -> None:
    outcome = run(load(GET_CUSTOMER_TOOL), {"id": "c-1"})
    assert isinstance(outcome, Evaluate)
    assert outcome.deny_code == -32401


def test_the_sep_deny_code_is_configurable() -> None:
    outcome = run(load(GET_CUSTOMER_TOOL), {"id": "c-1"}, options=MappingOptions(
        deny_code_sep=-32001))
    assert isinstance(outcome, Evaluate)
    assert outcome.deny_code == -32001


def test_an_optional_argument_that_is_absent_drops_its_field() -> None:
    outcome = run(load(GET_CUSTOMER_TOOL), {"id": "cust-12345"})
    assert isinstance(outcome, Evaluate) and outcome.evaluation is not None
    assert outcome.evaluation["context"] == {"agent": "agent-app-1"}


def test_a_call_with_a_missing_required_argument_is_a_mapping_error() -> None:
    outcome = run(load(GET_CUSTOMER_TOOL), {"case": "case-67890"})
    assert isinstance(outcome, Deny)
    assert outcome.code == -32602
    assert "'id' is a required property" in outcome.message


def test_a_required_argument_that_selects_nothing_is_a_mapping_error() -> None:
    tool = sep_tool(mapping_with(agent="$token.client_id", first="$properties.ids[0]"),
                    required=["id", "ids"])
    outcome = run(tool, {"id": "x", "ids": []})
    assert isinstance(outcome, Deny) and outcome.code == -32602
    assert "x-coaz-mapping.context.first" in outcome.message


def test_a_token_claim_that_selects_nothing_is_a_mapping_error() -> None:
    outcome = run(load(GET_CUSTOMER_TOOL), {"id": "c-1"}, claims={"sub": "alice"})
    assert isinstance(outcome, Deny) and outcome.code == -32602
    assert "$token['client_id']" in outcome.message
    assert outcome.field == "tools[0].inputSchema.x-coaz-mapping.context.agent"


def test_a_reference_that_selects_many_values_yields_a_list() -> None:
    tool = sep_tool(mapping_with(agent="$token.client_id", ids="$properties.ids[*]"))
    outcome = run(tool, {"id": "x", "ids": ["a", "b", "c"]})
    assert isinstance(outcome, Evaluate) and outcome.evaluation is not None
    assert outcome.evaluation["context"]["ids"] == ["a", "b", "c"]


def test_a_non_singular_query_yields_a_list_even_for_one_value() -> None:
    tool = sep_tool(mapping_with(agent="$token.client_id", ids="$properties.ids[*]"))
    outcome = run(tool, {"id": "x", "ids": ["a"]})
    assert isinstance(outcome, Evaluate) and outcome.evaluation is not None
    assert outcome.evaluation["context"]["ids"] == ["a"]


def test_an_array_argument_is_passed_whole_and_never_fanned_out() -> None:
    tool = sep_tool({"subject": {"type": "user", "id": "$token.sub"},
                     "resource": {"type": "customer", "id": "$properties.id"},
                     "context": {"ids": "$properties.ids"}})
    outcome = run(tool, {"id": "x", "ids": ["a", "b"]})
    assert isinstance(outcome, Evaluate) and outcome.evaluation is not None
    assert outcome.evaluations is None
    assert outcome.evaluation["context"]["ids"] == ["a", "b"]


def test_a_filter_compares_like_rfc_9535_without_loose_equality() -> None:
    tool = sep_tool(mapping_with(agent="$token.client_id",
                                 fives="$properties.items[?@.n == 5].tag"))
    items = [{"n": 5, "tag": "int"}, {"n": "5", "tag": "str"}, {"n": 5.0, "tag": "float"},
             {"n": True, "tag": "bool"}]
    outcome = run(tool, {"id": "x", "items": items})
    assert isinstance(outcome, Evaluate) and outcome.evaluation is not None
    assert outcome.evaluation["context"]["fives"] == ["int", "float"]


def test_without_action_the_action_is_the_tool_name() -> None:
    outcome = run(load(GET_CUSTOMER_TOOL), {"id": "c-1"})
    assert isinstance(outcome, Evaluate) and outcome.evaluation is not None
    assert outcome.evaluation["action"] == {"name": "get_customer"}


def test_an_explicit_action_is_used_as_mapped() -> None:
    mapping = mapping_with(agent="$token.client_id")
    mapping["action"] = {"name": "read", "properties": {"case": "$properties.case"}}
    outcome = run(sep_tool(mapping), {"id": "c-1", "case": "k"})
    assert isinstance(outcome, Evaluate) and outcome.evaluation is not None
    assert outcome.evaluation["action"] == {"name": "read", "properties": {"case": "k"}}
    assert list(outcome.evaluation) == ["subject", "action", "resource", "context"]


def test_literals_of_every_json_type_are_kept() -> None:
    literals = {"s": "text", "n": 3, "f": 2.5, "t": True, "z": None, "l": [1, "a", {"k": "v"}],
                "o": {"nested": {"deep": "yes"}}}
    outcome = run(sep_tool(mapping_with(agent="$token.client_id", **literals)), {"id": "c"})
    assert isinstance(outcome, Evaluate) and outcome.evaluation is not None
    assert outcome.evaluation["context"] == {"agent": "agent-app-1", **literals}


def test_a_string_with_a_dollar_that_is_no_root_is_a_literal() -> None:
    outcome = run(sep_tool(mapping_with(agent="$token.client_id", price="$5", cost="US$ 3")),
                  {"id": "c"})
    assert isinstance(outcome, Evaluate) and outcome.evaluation is not None
    assert outcome.evaluation["context"]["price"] == "$5"
    assert outcome.evaluation["context"]["cost"] == "US$ 3"


@pytest.mark.parametrize("reference", ["$tokn.sub", "$.id", "$", "$propertiesX.id", "$Token.sub"])
def test_a_reference_with_an_unknown_root_is_refused_at_load(reference: str) -> None:
    catalog = ToolCatalog.from_tools_list([sep_tool(mapping_with(agent="$token.client_id",
                                                                 x=reference))])
    error = catalog.errors["tool"]
    assert error.field == "tools[0].inputSchema.x-coaz-mapping.context.x"
    assert "rooted at $properties or $token" in error.message


@pytest.mark.parametrize("reference", [
    "$properties.id | $properties.case",
    "$properties.items[?@.n =~ 'x']",
    "$properties.items[?(@.n == word)]",
    "$properties.items.`len`",
    "$properties.items[?@.n == $.id]",
    "$properties.items[?length(@) > 1]",
    "$properties[",
    "$properties.where",
])
def test_non_standard_or_invalid_jsonpath_is_refused_at_load(reference: str) -> None:
    catalog = ToolCatalog.from_tools_list([sep_tool(mapping_with(agent="$token.client_id",
                                                                 x=reference))])
    assert catalog.errors["tool"].field == "tools[0].inputSchema.x-coaz-mapping.context.x"


def test_a_mapping_with_nothing_from_the_token_is_refused_at_load() -> None:
    mapping = {"subject": {"type": "user", "id": "$properties.id"},
               "resource": {"type": "customer", "id": "$token.sub"},
               "context": {"case": "$properties.case"}}
    catalog = ToolCatalog.from_tools_list([sep_tool(mapping)])
    error = catalog.errors["tool"]
    assert error.field == "tools[0].inputSchema.x-coaz-mapping"
    assert "$token" in error.message


def test_a_token_reference_in_the_context_alone_is_enough() -> None:
    mapping = {"subject": {"type": "user", "id": "$properties.id"},
               "resource": {"type": "customer", "id": "$properties.id"},
               "context": {"agent": "$token.client_id"}}
    assert not ToolCatalog.from_tools_list([sep_tool(mapping)]).problems


@pytest.mark.parametrize(("mapping", "where"), [
    ({"subject": {"type": "u", "id": "$token.sub"}, "context": {}}, "resource"),
    ({"resource": {"type": "c", "id": "x"}, "context": {"a": "$token.sub"}}, "subject"),
    ({"subject": {"type": "u", "id": "$token.sub"}, "resource": {"type": "c", "id": "x"}},
     "context"),
    ({"subject": {"type": "u", "id": "$token.sub"}, "resource": {"type": "c"}, "context": {}},
     "resource.id"),
    ({"subject": {"id": "$token.sub"}, "resource": {"type": "c", "id": "x"}, "context": {}},
     "subject.type"),
    ({"subject": {"type": "u", "id": "$token.sub"}, "resource": {"type": "c", "id": "x"},
      "context": {}, "action": {}}, "action.name"),
    ({"subject": {"type": "u", "id": "$token.sub"}, "resource": {"type": "c", "id": "x"},
      "context": {}, "decision": True}, "decision"),
    ({"subject": "$token.sub", "resource": {"type": "c", "id": "x"}, "context": {}}, "subject"),
])
def test_a_malformed_sep_mapping_is_refused_with_the_path_of_the_problem(
        mapping: dict[str, Any], where: str) -> None:
    catalog = ToolCatalog.from_tools_list([sep_tool(mapping)])
    assert catalog.errors["tool"].field == f"tools[0].inputSchema.x-coaz-mapping.{where}"


def test_a_reference_to_an_undeclared_argument_is_accepted_with_a_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="pdp.coaz"):
        catalog = ToolCatalog.from_tools_list([sep_tool(mapping_with(
            agent="$token.client_id", other="$properties.other"))])
    assert not catalog.problems
    assert catalog.warnings == ("tools[0].inputSchema.x-coaz-mapping.context.other: refers to "
                                "argument 'other', which inputSchema.properties does not declare",)
    assert any("'other'" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("number", [float("nan"), float("inf")])
def test_a_non_finite_literal_is_refused_at_load(number: float) -> None:
    catalog = ToolCatalog.from_tools_list([sep_tool(mapping_with(agent="$token.sub", n=number))])
    assert catalog.errors["tool"].field == "tools[0].inputSchema.x-coaz-mapping.context.n"


def test_a_resolved_id_that_is_not_a_string_is_a_mapping_error() -> None:
    tool = sep_tool({"subject": {"type": "user", "id": "$token.sub"},
                     "resource": {"type": "order", "id": "$properties.n"},
                     "context": {}}, properties={"n": {"type": "integer"}}, required=["n"])
    outcome = run(tool, {"n": 7})
    assert isinstance(outcome, Deny) and outcome.code == -32602
    assert "resource.id" in outcome.message


def test_a_nested_claim_and_an_index_are_singular_references() -> None:
    tool = sep_tool(mapping_with(agent="$token.client_id", org="$token.org['name']",
                                 first="$token.groups[0]", last="$token.groups[-1]"))
    claims = {**CLAIMS, "org": {"name": "acme"}, "groups": ["a", "b"]}
    outcome = run(tool, {"id": "c"}, claims=claims)
    assert isinstance(outcome, Evaluate) and outcome.evaluation is not None
    assert outcome.evaluation["context"] == {"agent": "agent-app-1", "org": "acme",
                                             "first": "a", "last": "b"}


def test_a_whole_variable_can_be_referenced() -> None:
    tool = sep_tool(mapping_with(agent="$token.client_id", args="$properties"))
    outcome = run(tool, {"id": "c", "case": "k"})
    assert isinstance(outcome, Evaluate) and outcome.evaluation is not None
    assert outcome.evaluation["context"]["args"] == {"id": "c", "case": "k"}
