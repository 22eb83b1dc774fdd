"""The gateway's errors are answered in one place, in one shape: an upstream that cannot be
reached is a 502 carrying a JSON-RPC error whatever the method; a header sent twice a 400."""

from __future__ import annotations

import httpx
import orjson
import pytest

from pdp.gateway import Gateway
from tests.gateway.support import Keys, client_for, gateway_settings, headers, message


def _unreachable(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


@pytest.mark.asyncio
@pytest.mark.parametrize("method", ["POST", "GET", "DELETE"])
async def test_an_unreachable_upstream_is_a_bad_gateway_with_a_json_rpc_error(
        keys: Keys, method: str) -> None:
    gateway = Gateway.from_settings(
        gateway_settings(keys),
        upstream_client=httpx.AsyncClient(transport=httpx.MockTransport(_unreachable)))
    async with client_for(gateway) as client:
        answer = await client.request(
            method, "/mcp", headers=headers(keys.token()),
            content=orjson.dumps(message("notifications/initialized", request_id=None))
            if method == "POST" else None)
    await gateway.aclose()
    assert answer.status_code == 502
    body = answer.json()
    assert body["jsonrpc"] == "2.0" and body["id"] is None
    assert body["error"]["code"] == -32603


@pytest.mark.asyncio
async def test_a_header_sent_twice_is_refused_before_the_token_is_read(keys: Keys) -> None:
    gateway = Gateway.from_settings(
        gateway_settings(keys),
        upstream_client=httpx.AsyncClient(transport=httpx.MockTransport(_unreachable)))
    async with client_for(gateway) as client:
        answer = await client.post(
            "/mcp", content=orjson.dumps(message("ping")),
            headers=[*headers(None).items(), ("mcp-session-id", "a"), ("mcp-session-id", "b")])
    await gateway.aclose()
    assert answer.status_code == 400
    assert answer.json()["error"] == {"code": -32600, "message": "the Mcp-Session-Id header "
                                      "was sent more than once"}
