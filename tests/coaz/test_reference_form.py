"""The reference implementation's tool format (``coaz: true`` with an envelope-less
``x-authzen-mapping`` of CEL strings) is a third input form: its tools and calls give the
requests that implementation sends."""

from __future__ import annotations

from typing import Any

import pytest

from pdp.coaz import Deny, Evaluate, MappingOptions, ToolCatalog, map_message

SERVER = "coaz-mcp-server"
TOOLS: list[dict[str, Any]] = [
    {"name": "get_customer", "coaz": True, "description": "Get customer details by ID",
     "inputSchema": {
         "type": "object",
         "properties": {"customer_id": {"type": "string"}},
         "required": ["customer_id"],
         "x-authzen-mapping": {
             "subject": {"type": "token.role", "id": "token.sub"},
             "context": {"agent": "token.client_id"},
             "evaluations": [{"resource": {"type": "'customer'",
                                           "id": "params.arguments.customer_id"}}]}}},
    {"name": "transfer_customer", "coaz": True,
     "inputSchema": {
         "type": "object",
         "properties": {"customer_id": {"type": "string"}, "source_region": {"type": "string"},
                        "destination_region": {"type": "string"}},
         "required": ["customer_id", "source_region", "destination_region"],
         "x-authzen-mapping": {
             "subject": {"type": "token.role", "id": "token.sub",
                         "properties": {"department": "token.department"}},
             "context": {"agent": "token.client_id"},
             "evaluations": [
                 {"action": {"name": "'read'"},
                  "resource": {"type": "'customer_region'",
                               "id": "params.arguments.source_region"}},
                 {"action": {"name": "'write'"},
                  "resource": {"type": "'customer_region'",
                               "id": "params.arguments.destination_region"}}]}}},
]
ADMIN = {"iss": "http://localhost:9101", "aud": SERVER, "sub": "alice@example.com",
         "role": "admin", "department": "platform-ops", "client_id": "agent-v2"}
CATALOG = ToolCatalog.from_tools_list(TOOLS, server_id=SERVER)
OPTIONS = MappingOptions(server_resource=SERVER)


def _call(name: str, arguments: dict[str, Any], claims: dict[str, Any] = ADMIN) -> Any:
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
               "params": {"name": name, "arguments": arguments}}
    return map_message(message, claims, CATALOG, OPTIONS)


def test_the_tools_load_without_problems() -> None:
    assert CATALOG.problems == ()
    assert {e.dialect for e in CATALOG.tools.values()} == {"binding"}


def test_one_entry_is_one_evaluation_with_the_tool_as_action() -> None:
    outcome = _call("get_customer", {"customer_id": "cust-123"})
    assert isinstance(outcome, Evaluate) and outcome.endpoint == "/access/v1/evaluation"
    assert outcome.body == {
        "subject": {"type": "admin", "id": "alice@example.com"},
        "action": {"name": "get_customer"},
        "resource": {"type": "customer", "id": "cust-123"},
        "context": {"agent": "agent-v2"}}
    assert list(outcome.body) == ["subject", "action", "resource", "context"]


def test_several_entries_are_one_evaluations_request() -> None:
    outcome = _call("transfer_customer", {"customer_id": "cust-123",
                                          "source_region": "us-west-2",
                                          "destination_region": "eu-west-1"})
    assert isinstance(outcome, Evaluate) and outcome.endpoint == "/access/v1/evaluations"
    assert outcome.body == {
        "subject": {"type": "admin", "id": "alice@example.com",
                    "properties": {"department": "platform-ops"}},
        "context": {"agent": "agent-v2"},
        "evaluations": [
            {"action": {"name": "read"},
             "resource": {"type": "customer_region", "id": "us-west-2"}},
            {"action": {"name": "write"},
             "resource": {"type": "customer_region", "id": "eu-west-1"}}]}


def test_a_member_whose_expression_has_no_value_is_omitted() -> None:
    claims = {k: v for k, v in ADMIN.items() if k not in ("department", "client_id")}
    outcome = _call("transfer_customer", {"customer_id": "c", "source_region": "a",
                                          "destination_region": "b"}, claims)
    assert isinstance(outcome, Evaluate)
    assert outcome.body["subject"] == {"type": "admin", "id": "alice@example.com",
                                       "properties": {}}
    assert outcome.body["context"] == {}


def test_a_missing_resource_id_is_a_mapping_error() -> None:
    outcome = _call("get_customer", {})
    assert isinstance(outcome, Deny) and outcome.code == -32602


@pytest.mark.parametrize("mapping", [
    {"subject": {"id": "token.sub"}},                               # no evaluations
    {"subject": {"id": "token.sub"}, "evaluations": []},
    {"subject": {"id": "token.sub"}, "evaluations": [{"action": {"name": "'x'"}}]},
    {"subject": {"id": "token.sub"}, "evaluations": [{"resource": {"id": "token.("}}]},
    {"subject": {"id": "token.sub"}, "evaluations": [{"resource": {}}], "extra": {}},
])
def test_a_malformed_mapping_is_refused_when_the_list_is_loaded(
        mapping: dict[str, Any]) -> None:
    tool = {"name": "t", "coaz": True,
            "inputSchema": {"type": "object", "x-authzen-mapping": mapping}}
    catalog = ToolCatalog.from_tools_list([tool])
    assert len(catalog.problems) == 1
