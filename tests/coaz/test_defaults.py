"""The binding's default mappings, pass-through and fail-closed dispatch."""

from __future__ import annotations

from typing import Any

import pytest

from pdp.coaz import (
    DEFAULT_METHODS,
    INVALID_REQUEST,
    Deny,
    Evaluate,
    MappingOptions,
    Pass,
    ToolCatalog,
    map_message,
)

SERVER = "https://mcp.example.com/mcp"
CLAIMS = {"sub": "alice@example.com", "client_id": "agent-app-1", "aud": SERVER}
SUBJECT = {"type": "identity", "id": "alice@example.com"}
MCP_SERVER = {"type": "mcp_server", "id": SERVER}
CATALOG = ToolCatalog.from_tools_list([
    {"name": "plain", "inputSchema": {"type": "object", "properties": {"q": {"type": "string"}},
                                      "required": ["q"]}}])
OPTIONS = MappingOptions(server_resource=SERVER)


def request(method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": 7, "method": method}
    if params is not None:
        message["params"] = params
    return message


def evaluate(method: str, params: dict[str, Any] | None = None,
             claims: dict[str, Any] | None = None,
             options: MappingOptions = OPTIONS) -> Evaluate:
    outcome = map_message(request(method, params), CLAIMS if claims is None else claims,
                          CATALOG, options)
    assert isinstance(outcome, Evaluate), outcome
    assert outcome.evaluations is None and outcome.evaluation is not None
    assert outcome.dialect == "default" and outcome.deny_code == -32001
    return outcome


# One case per row of the default-mapping table in docs/spec/coaz.md.
ROWS: list[tuple[str, dict[str, Any] | None, dict[str, Any], dict[str, Any]]] = [
    ("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                    "clientInfo": {"name": "c", "version": "1"}},
     MCP_SERVER, {"agent": "agent-app-1", "protocol_version": "2025-11-25"}),
    ("tools/list", None, MCP_SERVER, {"agent": "agent-app-1"}),
    ("resources/list", {"cursor": "abc"}, MCP_SERVER, {"agent": "agent-app-1"}),
    ("prompts/list", None, MCP_SERVER, {"agent": "agent-app-1"}),
    ("tasks/list", None, MCP_SERVER, {"agent": "agent-app-1"}),
    ("tools/call", {"name": "plain", "arguments": {"q": "x"}},
     {"type": "tool", "id": "plain"}, {"agent": "agent-app-1"}),
    ("resources/read", {"uri": "file:///a.txt"},
     {"type": "resource", "id": "file:///a.txt"}, {"agent": "agent-app-1"}),
    ("resources/subscribe", {"uri": "file:///a.txt"},
     {"type": "resource", "id": "file:///a.txt"}, {"agent": "agent-app-1"}),
    ("resources/unsubscribe", {"uri": "file:///a.txt"},
     {"type": "resource", "id": "file:///a.txt"}, {"agent": "agent-app-1"}),
    ("prompts/get", {"name": "summarise", "arguments": {"x": "y"}},
     {"type": "prompt", "id": "summarise"}, {"agent": "agent-app-1"}),
    ("completion/complete", {"ref": {"type": "ref/prompt", "name": "summarise"},
                             "argument": {"name": "a", "value": "b"}},
     {"type": "prompt", "id": "summarise"}, {"agent": "agent-app-1", "argument_name": "a"}),
    ("completion/complete", {"ref": {"type": "ref/resource", "uri": "file:///{p}"},
                             "argument": {"name": "p", "value": "x"}},
     {"type": "resource", "id": "file:///{p}"}, {"agent": "agent-app-1", "argument_name": "p"}),
    ("logging/setLevel", {"level": "debug"}, MCP_SERVER,
     {"agent": "agent-app-1", "level": "debug"}),
    ("tasks/get", {"taskId": "t-1"}, {"type": "task", "id": "t-1"}, {"agent": "agent-app-1"}),
    ("tasks/result", {"taskId": "t-1"}, {"type": "task", "id": "t-1"}, {"agent": "agent-app-1"}),
    ("tasks/cancel", {"taskId": "t-1"}, {"type": "task", "id": "t-1"}, {"agent": "agent-app-1"}),
    # beyond the binding's table
    ("resources/templates/list", None, MCP_SERVER, {"agent": "agent-app-1"}),
    ("server/discover", {}, MCP_SERVER, {"agent": "agent-app-1"}),
    ("subscriptions/listen", {}, MCP_SERVER, {"agent": "agent-app-1"}),
    ("roots/list", None, MCP_SERVER, {"agent": "agent-app-1"}),
    ("sampling/createMessage", {"messages": [], "maxTokens": 100}, MCP_SERVER,
     {"agent": "agent-app-1", "max_tokens": 100}),
    ("elicitation/create", {"message": "?", "requestedSchema": {}}, MCP_SERVER,
     {"agent": "agent-app-1", "mode": "form"}),
    ("elicitation/create", {"mode": "url", "message": "?", "url": "https://x"}, MCP_SERVER,
     {"agent": "agent-app-1", "mode": "url"}),
]


@pytest.mark.parametrize(("method", "params", "resource", "context"), ROWS,
                         ids=[f"{r[0]}-{i}" for i, r in enumerate(ROWS)])
def test_each_row_of_the_default_mapping_table_builds_its_request(
        method: str, params: dict[str, Any] | None, resource: dict[str, Any],
        context: dict[str, Any]) -> None:
    outcome = evaluate(method, params)
    assert outcome.evaluation == {"subject": SUBJECT, "action": {"name": method},
                                  "resource": resource, "context": context}
    assert list(outcome.body) == ["subject", "action", "resource", "context"]


def test_the_table_covers_exactly_the_default_methods() -> None:
    assert {row[0] for row in ROWS} == DEFAULT_METHODS


def test_the_agent_is_dropped_when_the_token_has_no_client_id() -> None:
    outcome = evaluate("tools/list", claims={"sub": "alice@example.com", "aud": SERVER})
    assert outcome.body["context"] == {}


@pytest.mark.parametrize(("method", "params", "field"), [
    ("initialize", {}, "params.protocolVersion"),
    ("resources/read", {}, "params.uri"),
    ("resources/read", {"uri": 5}, "params.uri"),
    ("prompts/get", {"name": ""}, "params.name"),
    ("completion/complete", {}, "params.ref"),
    ("completion/complete", {"ref": {"type": "ref/prompt"}}, "params.ref.name"),
    ("completion/complete", {"ref": {"type": "ref/resource"}}, "params.ref.uri"),
    ("logging/setLevel", {}, "params.level"),
    ("tasks/get", {"taskId": None}, "params.taskId"),
])
def test_a_missing_parameter_of_a_default_mapping_is_a_mapping_error(
        method: str, params: dict[str, Any], field: str) -> None:
    outcome = map_message(request(method, params), CLAIMS, CATALOG, OPTIONS)
    assert isinstance(outcome, Deny)
    assert outcome.code == -32602 and outcome.field == field


# -- $token.aud ------------------------------------------------------------------------------


def test_a_list_audience_resolves_to_this_server() -> None:
    claims = {**CLAIMS, "aud": ["https://other.example.com", SERVER]}
    assert evaluate("tools/list", claims=claims).body["resource"] == MCP_SERVER


@pytest.mark.parametrize(("aud", "options"), [
    (["https://a.example.com", "https://b.example.com"], OPTIONS),
    (["https://a.example.com", "https://b.example.com"], MappingOptions()),
    ("https://other.example.com", OPTIONS),
    (None, OPTIONS),
    (5, OPTIONS),
])
def test_an_audience_that_does_not_resolve_to_one_string_is_a_mapping_error(
        aud: Any, options: MappingOptions) -> None:
    claims = {k: v for k, v in CLAIMS.items() if k != "aud"}
    if aud is not None:
        claims["aud"] = aud
    outcome = map_message(request("tools/list"), claims, CATALOG, options)
    assert isinstance(outcome, Deny) and outcome.code == -32602 and outcome.field == "aud"


def test_without_a_configured_resource_a_single_audience_is_used() -> None:
    outcome = evaluate("tools/list", claims={**CLAIMS, "aud": [SERVER]},
                       options=MappingOptions())
    assert outcome.body["resource"] == MCP_SERVER


# -- identity -------------------------------------------------------------------------------


def test_a_client_credentials_token_makes_the_client_the_subject() -> None:
    outcome = evaluate("tools/list", claims={"client_id": "batch", "aud": SERVER})
    assert outcome.body["subject"] == {"type": "client", "id": "batch"}
    assert outcome.warnings == ("token has no 'sub' claim: the subject is the client 'batch'",)


def test_the_client_subject_type_is_configurable() -> None:
    outcome = evaluate("tools/list", claims={"azp": "batch", "aud": SERVER},
                       options=MappingOptions(server_resource=SERVER,
                                              client_subject_type="service"))
    assert outcome.body["subject"] == {"type": "service", "id": "batch"}


def test_an_on_behalf_of_claim_names_the_subject() -> None:
    outcome = evaluate("tools/list", claims={**CLAIMS, "obo_sub": "bob"},
                       options=MappingOptions(server_resource=SERVER, identity_claim="obo_sub"))
    assert outcome.body["subject"] == {"type": "identity", "id": "bob"}


def test_a_token_with_sub_but_without_the_on_behalf_of_claim_is_a_mapping_error() -> None:
    outcome = map_message(request("tools/list"), CLAIMS, CATALOG,
                          MappingOptions(server_resource=SERVER, identity_claim="obo_sub"))
    assert isinstance(outcome, Deny) and outcome.code == -32602


# -- act --------------------------------------------------------------------------------------


def test_the_act_claim_is_exposed_in_the_context_when_configured() -> None:
    act = {"sub": "agent-app-1", "act": {"sub": "orchestrator"}}
    options = MappingOptions(server_resource=SERVER, expose_act=True)
    outcome = evaluate("tools/list", claims={**CLAIMS, "act": act}, options=options)
    assert outcome.body["context"] == {"agent": "agent-app-1", "act": act}


def test_the_default_mappings_carry_the_act_claim_as_issued() -> None:
    act = {"sub": "agent-app-1", "act": {"sub": "orchestrator"}}
    outcome = evaluate("tools/list", claims={**CLAIMS, "act": act})
    assert outcome.body["context"] == {"agent": "agent-app-1", "act": act}


def test_the_agent_is_the_authorized_party_when_the_token_has_no_client_id() -> None:
    outcome = evaluate("tools/list", claims={"sub": "alice@example.com", "azp": "spa-app",
                                             "aud": SERVER})
    assert outcome.body["context"] == {"agent": "spa-app"}


@pytest.mark.parametrize("claims", [
    {"sub": "batch", "client_id": "batch", "aud": SERVER},
    {"sub": "batch", "azp": "batch", "aud": SERVER},
    {"client_id": "batch", "aud": SERVER},
])
def test_a_client_credentials_token_is_a_client_token(claims: dict[str, Any]) -> None:
    outcome = evaluate("tools/list", claims=claims)
    assert outcome.body["subject"] == {"type": "client", "id": "batch"}
    assert outcome.body["context"] == {"agent": "batch"}
    assert outcome.warnings and "client" in outcome.warnings[0]


def test_sub_equal_to_the_client_may_be_taken_as_a_person() -> None:
    options = MappingOptions(server_resource=SERVER, sub_is_client=False)
    outcome = evaluate("tools/list", claims={"sub": "batch", "client_id": "batch",
                                             "aud": SERVER}, options=options)
    assert outcome.body["subject"] == {"type": "identity", "id": "batch"}


def test_the_claims_naming_the_client_are_configurable() -> None:
    options = MappingOptions(server_resource=SERVER, client_claims=("cid",))
    outcome = evaluate("tools/list", claims={"sub": "svc", "cid": "svc", "client_id": "x",
                                             "aud": SERVER}, options=options)
    assert outcome.body["subject"] == {"type": "client", "id": "svc"}
    assert outcome.body["context"] == {"agent": "svc"}


# -- pass-through and fail-closed -----------------------------------------------------------


@pytest.mark.parametrize("method", ["ping", "notifications/initialized",
                                    "notifications/cancelled", "notifications/roots/list_changed",
                                    "notifications/progress"])
def test_ping_and_notifications_pass_without_a_pdp_call(method: str) -> None:
    message = {"jsonrpc": "2.0", "method": method, "params": {"x": 1}}
    assert map_message(message, {}, CATALOG, OPTIONS) == Pass()


@pytest.mark.parametrize("message", [
    {"jsonrpc": "2.0", "id": 4, "result": {"roots": []}},
    {"jsonrpc": "2.0", "id": 4, "error": {"code": -1, "message": "no"}},
])
def test_responses_to_server_initiated_requests_pass(message: dict[str, Any]) -> None:
    assert map_message(message, CLAIMS, CATALOG, OPTIONS) == Pass()


@pytest.mark.parametrize("method", ["resources/templates/lists", "sampling/create",
                                    "tools/delete", "", "PING", "notification/x"])
def test_a_method_without_a_mapping_is_denied(method: str) -> None:
    outcome = map_message(request(method), CLAIMS, CATALOG, OPTIONS)
    assert outcome == Deny(-32001, f"method {method!r} is not allowed")


def test_the_binding_deny_code_is_configurable_for_unknown_methods() -> None:
    outcome = map_message(request("x/y"), CLAIMS, CATALOG,
                          MappingOptions(deny_code_binding=-32003))
    assert isinstance(outcome, Deny) and outcome.code == -32003


@pytest.mark.parametrize("message", [
    {"jsonrpc": "2.0", "id": 1},
    {"jsonrpc": "2.0", "id": 1, "method": 5},
    ["not", "a", "message"],
])
def test_a_malformed_json_rpc_message_is_an_invalid_request(message: Any) -> None:
    outcome = map_message(message, CLAIMS, CATALOG, OPTIONS)
    assert isinstance(outcome, Deny) and outcome.code == INVALID_REQUEST


def test_params_that_are_not_an_object_are_a_mapping_error() -> None:
    outcome = map_message({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": [1]},
                          CLAIMS, CATALOG, OPTIONS)
    assert isinstance(outcome, Deny) and outcome.code == -32602


def test_the_mapping_error_code_is_configurable() -> None:
    outcome = map_message(request("resources/read", {}), CLAIMS, CATALOG,
                          MappingOptions(mapping_error_code=-32000))
    assert isinstance(outcome, Deny) and outcome.code == -32000


def test_a_delegation_chain_deeper_than_the_limit_is_a_mapping_error() -> None:
    act: dict[str, Any] = {"sub": "a"}
    for i in range(40):
        act = {"sub": f"a{i}", "act": act}
    outcome = map_message(request("tools/list"), {**CLAIMS, "act": act}, CATALOG,
                          MappingOptions(server_resource=SERVER, expose_act=True))
    assert isinstance(outcome, Deny) and outcome.code == -32602
