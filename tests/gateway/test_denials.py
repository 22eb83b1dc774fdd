"""What a denied user sees: the deny code (not the SDK's -32001 timeout), the reason and, with
explanation on, the decisions in ``data`` (never ``reason_admin``); a denied tool call as a
tool result with ``isError`` by setting; 403 ``insufficient_scope`` naming the scopes a policy
says are missing; ``scopes_supported`` in the metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from pdp.coaz.denial import client_decisions, missing_scopes
from pdp.gateway import Verdict
from tests.gateway.support import (
    FakeUpstream,
    Keys,
    call,
    client_for,
    headers,
    make_gateway,
    messages_of,
)

POLICIES = """
@id("people-call-echo")
permit (principal is identity, action == Action::"tools/call", resource == tool::"echo");

@id("insufficient_scope:customers.delete")
forbid (principal, action == Action::"tools/call", resource == tool::"delete_customer");
"""
METADATA = "https://gw.example.com/.well-known/oauth-protected-resource/mcp"


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    (tmp_path / "policies.cedar").write_text(POLICIES)
    return tmp_path


async def _call(keys: Keys, policies: Path, tool: str, arguments: dict[str, Any],
                **settings: Any) -> tuple[int, dict[str, str], dict[str, Any], FakeUpstream]:
    upstream = FakeUpstream()
    gateway = make_gateway(keys, upstream, policies=policies, **settings)
    try:
        async with client_for(gateway) as client:
            answer = await client.post("/mcp", content=orjson.dumps(call(tool, arguments)),
                                       headers=headers(keys.token()))
    finally:
        await gateway.aclose()
    [reply] = messages_of(answer)
    return answer.status_code, dict(answer.headers), reply, upstream


@pytest.mark.asyncio
async def test_a_denial_is_a_json_rpc_error_with_the_default_deny_code(
        keys: Keys, policies: Path) -> None:
    status, _, reply, upstream = await _call(keys, policies, "get_customer",
                                             {"id": "c-1", "case": "x"})
    assert status == 200
    assert reply["error"] == {"code": -32401, "message": "Access denied"}  # no data
    assert upstream.calls() == []


@pytest.mark.asyncio
async def test_with_explanation_on_the_denial_carries_its_decisions(
        keys: Keys, policies: Path) -> None:
    _, _, reply, _ = await _call(keys, policies, "get_customer", {"id": "c-1", "case": "x"},
                                 explain=True)
    data = reply["error"]["data"]
    assert data["reason"] == "Access denied"
    assert data["decisions"] == [{"decision": False,
                                  "context": {"outcome": "no_permit", "reasons": []}}]


@pytest.mark.asyncio
async def test_a_denied_tool_call_may_be_answered_as_a_tool_result(
        keys: Keys, policies: Path) -> None:
    status, _, reply, upstream = await _call(keys, policies, "get_customer",
                                             {"id": "c-1", "case": "x"},
                                             gateway_deny_as_tool_result=True)
    assert status == 200
    assert reply["result"] == {"content": [{"type": "text", "text": "Access denied"}],
                               "isError": True}
    assert upstream.calls() == []


@pytest.mark.asyncio
async def test_a_policy_naming_a_missing_scope_asks_for_it(keys: Keys, policies: Path) -> None:
    status, answer_headers, reply, upstream = await _call(keys, policies, "delete_customer",
                                                          {"id": "c-1"})
    assert status == 403
    assert answer_headers["www-authenticate"] == (
        f'Bearer error="insufficient_scope", scope="customers.delete", '
        f'resource_metadata="{METADATA}"')
    assert reply["error"]["code"] == -32401
    assert "data" not in reply["error"]  # the policy ids reach the client only when explained
    assert upstream.calls() == []


def test_scopes_come_from_the_decision_context_or_the_policy_id() -> None:
    verdict = Verdict(False, (
        {"decision": True, "context": {"required_scope": "ignored"}},
        {"decision": False, "context": {"required_scopes": ["a b", 5], "reason_admin": "x"}},
        {"decision": False, "context": {"reasons": ["insufficient_scope:c a", "other"]}},
        {"decision": False, "context": {"required_scope": 'bad"quote ok'}},
    ))
    assert missing_scopes(verdict) == ("a", "b", "c", "ok")
    assert all("reason_admin" not in d.get("context", {}) for d in client_decisions(verdict))


@pytest.mark.asyncio
async def test_scopes_supported_are_published(keys: Keys, policies: Path) -> None:
    gateway = make_gateway(keys, FakeUpstream(), policies=policies,
                           scopes_supported=["mcp:tools", "customers.delete"])
    try:
        async with client_for(gateway) as client:
            metadata = (await client.get("/.well-known/oauth-protected-resource/mcp")).json()
    finally:
        await gateway.aclose()
    assert metadata["scopes_supported"] == ["mcp:tools", "customers.delete"]
