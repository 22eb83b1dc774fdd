"""The tool catalogue expires: past ``PDP_GATEWAY_TOOLS_TTL`` the gateway lists the upstream's
tools again before deciding a call, so a changed mapping whose ``list_changed`` notification
never passed through the gateway is not used past the TTL."""

from __future__ import annotations

import time

import orjson
import pytest

from tests.gateway.support import (
    TOOLS,
    FakeUpstream,
    Keys,
    call,
    client_for,
    headers,
    make_gateway,
    message,
    messages_of,
)

STRICT_ECHO = {"name": "echo", "inputSchema": {
    "type": "object", "properties": {"text": {"type": "string"}},
    "x-authzen-mapping": {"evaluation": {
        "action": {"name": "tools/call"}, "resource": {"type": "tool", "id": "echo-v2"}}}}}


@pytest.mark.parametrize(("ttl", "refreshed"), [(0.2, True), (0, False)])
@pytest.mark.asyncio
async def test_expired_definitions_are_listed_again_before_a_call(
        keys: Keys, ttl: float, refreshed: bool) -> None:
    upstream = FakeUpstream()
    gateway = make_gateway(keys, upstream, gateway_tools_ttl=ttl)
    try:
        async with client_for(gateway) as client:
            async def post(body: dict[str, object]) -> list[dict[str, object]]:
                answer = await client.post("/mcp", content=orjson.dumps(body),
                                           headers=headers(keys.token()))
                return messages_of(answer)

            await post(message("tools/list", {}))
            assert "result" in (await post(call("echo", {"text": "hi"})))[0]
            # the upstream changes echo's mapping; no notification reaches the gateway
            upstream.tools = [t for t in TOOLS if t["name"] != "echo"] + [STRICT_ECHO]
            learned = time.monotonic()
            deadline = learned + 5
            while ttl and not gateway.tools.expired() and time.monotonic() < deadline:
                await post(message("ping"))  # let time pass without touching the catalogue
            reply = (await post(call("echo", {"text": "hi"})))[0]
    finally:
        await gateway.aclose()
    if refreshed:
        assert reply["error"]["code"] == -32401  # tool::"echo-v2" is not public
        assert gateway.tools.refreshes == 1
        assert upstream.calls() == ["echo"]
    else:
        assert "result" in reply  # no expiry: the old mapping until something says otherwise
        assert gateway.tools.refreshes == 0


@pytest.mark.asyncio
async def test_list_changed_on_another_users_session_refreshes_before_the_next_call(
        keys: Keys) -> None:
    upstream = FakeUpstream()
    gateway = make_gateway(keys, upstream)
    alice, bob = keys.token(), keys.token(sub="bob@example.com")
    try:
        async with client_for(gateway) as client:
            init = message("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                          "clientInfo": {"name": "t", "version": "1"}})
            opened = await client.post("/mcp", content=orjson.dumps(init),
                                       headers=headers(alice))
            session = opened.headers["mcp-session-id"]
            await client.post("/mcp", content=orjson.dumps(message("tools/list", {})),
                              headers=headers(alice, mcp_session_id=session))
            upstream.tools = [t for t in TOOLS if t["name"] != "echo"] + [STRICT_ECHO]
            upstream.stream = [message("notifications/tools/list_changed", request_id=None)]
            # bob's own session's stream carries the notification
            stream = await client.get("/mcp", headers=headers(bob,
                                                              mcp_session_id="bob-session"))
            assert "tools/list_changed" in stream.text
            reply = messages_of(await client.post(
                "/mcp", content=orjson.dumps(call("echo", {"text": "hi"})),
                headers=headers(alice, mcp_session_id=session)))[0]
    finally:
        await gateway.aclose()
    assert reply["error"]["code"] == -32401  # decided with the new mapping, on alice's session
    assert gateway.tools.refreshes == 1
    assert upstream.calls() == []
