"""The deployment's method table on top of the default mappings: allow, deny, or map to a
request with a binding envelope; configuration mistakes refused; unknown methods still
denied."""

from __future__ import annotations

from typing import Any

import pytest

from pdp.coaz import Deny, Evaluate, MappingOptions, Pass, ToolCatalog, map_message
from pdp.coaz.methods import MethodTable
from pdp.errors import MappingError

SERVER = "https://mcp.example.com/mcp"
CLAIMS = {"sub": "alice@example.com", "client_id": "agent-app-1", "aud": SERVER}
CATALOG = ToolCatalog.from_tools_list([])


def _options(entries: dict[str, Any]) -> MappingOptions:
    return MappingOptions(server_resource=SERVER, methods=MethodTable.compile(entries))


def _request(method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": method}
    if params is not None:
        message["params"] = params
    return message


def test_an_allowed_method_passes_without_a_decision() -> None:
    options = _options({"roots/list": "allow"})
    assert map_message(_request("roots/list"), CLAIMS, CATALOG, options) == Pass()


def test_a_denied_method_is_refused_even_when_it_has_a_default() -> None:
    options = _options({"resources/templates/list": "deny"})
    outcome = map_message(_request("resources/templates/list"), CLAIMS, CATALOG, options)
    assert isinstance(outcome, Deny) and outcome.code == -32001


def test_a_mapped_method_builds_its_request_with_cel() -> None:
    # the reference implementation's completion/complete request
    options = _options({"completion/complete": {"evaluation": {
        "action": {"name": "completion/complete"},
        "resource": {"type": "$params.ref.type", "id": "$params.ref.name"},
        "context": {"agent": "$token.?client_id", "argument_name": "$params.argument.name"}}}})
    params = {"ref": {"type": "ref/prompt", "name": "summarise"},
              "argument": {"name": "topic", "value": "c"}}
    outcome = map_message(_request("completion/complete", params), CLAIMS, CATALOG, options)
    assert isinstance(outcome, Evaluate)
    assert outcome.evaluation == {
        "subject": {"type": "identity", "id": "alice@example.com"},
        "action": {"name": "completion/complete"},
        "resource": {"type": "ref/prompt", "id": "summarise"},
        "context": {"agent": "agent-app-1", "argument_name": "topic"}}


def test_a_custom_method_may_be_mapped() -> None:
    options = _options({"acme/export": {"evaluation": {
        "action": {"name": "export"}, "resource": {"type": "dataset", "id": "$params.id"}}}})
    outcome = map_message(_request("acme/export", {"id": "d-1"}), CLAIMS, CATALOG, options)
    assert isinstance(outcome, Evaluate)
    assert outcome.evaluation is not None
    assert outcome.evaluation["resource"] == {"type": "dataset", "id": "d-1"}
    missing = map_message(_request("acme/export", {}), CLAIMS, CATALOG, options)
    assert isinstance(missing, Deny) and missing.code == -32602


def test_a_method_in_neither_table_is_denied() -> None:
    options = _options({"roots/list": "allow"})
    outcome = map_message(_request("acme/unknown"), CLAIMS, CATALOG, options)
    assert isinstance(outcome, Deny) and outcome.code == -32001


@pytest.mark.parametrize("entries", [
    {"tools/call": "allow"},
    {"ping": "deny"},
    {"notifications/initialized": "deny"},
    {"roots/list": "maybe"},
    {"roots/list": {"resource": {"type": "x", "id": "y"}}},
    {"roots/list": {"evaluation": {"action": {"name": "x"}}}},
    {"roots/list": {"evaluation": {"action": {"name": "x"},
                                   "resource": {"type": "x", "id": "$params.("}}}},
    {"": "allow"},
])
def test_an_unusable_entry_is_refused_when_the_table_is_compiled(
        entries: dict[str, Any]) -> None:
    with pytest.raises(MappingError):
        MethodTable.compile(entries)
