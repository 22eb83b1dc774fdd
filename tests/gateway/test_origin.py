"""``Origin`` validation (MCP Streamable HTTP: a foreign Origin gets 403) and CORS for browser
clients when configured."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio

from pdp.gateway.origin import origin_of
from tests.gateway.support import FakeUpstream, Keys, client_for, headers, make_gateway, message

APP = "https://app.example.com"


@pytest_asyncio.fixture
async def gateway_client(keys: Keys, request: pytest.FixtureRequest,
                         ) -> AsyncIterator[tuple[httpx.AsyncClient, FakeUpstream]]:
    overrides: dict[str, Any] = getattr(request, "param", {})
    upstream = FakeUpstream()
    gateway = make_gateway(keys, upstream, **overrides)
    async with client_for(gateway) as client:
        yield client, upstream
    await gateway.aclose()


async def _list(client: httpx.AsyncClient, keys: Keys, origin: str | None) -> httpx.Response:
    extra = {"origin": origin} if origin is not None else {}
    return await client.post("/mcp", content=orjson.dumps(message("tools/list")),
                             headers=headers(keys.token(), **extra))


@pytest.mark.parametrize("origin", ["https://evil.example.com", "null",
                                    "https://gw.example.com:8443", "http://gw.example.com"])
@pytest.mark.asyncio
async def test_a_foreign_origin_is_refused_before_anything_is_forwarded(
        gateway_client: tuple[httpx.AsyncClient, FakeUpstream], keys: Keys,
        origin: str) -> None:
    client, upstream = gateway_client
    answer = await _list(client, keys, origin)
    assert answer.status_code == 403
    assert upstream.requests == []


@pytest.mark.parametrize("origin", [None, "https://gw.example.com",
                                    "https://GW.example.com:443"])
@pytest.mark.asyncio
async def test_no_origin_or_the_gateways_own_is_served(
        gateway_client: tuple[httpx.AsyncClient, FakeUpstream], keys: Keys,
        origin: str | None) -> None:
    client, upstream = gateway_client
    answer = await _list(client, keys, origin)
    assert answer.status_code == 200
    assert "access-control-allow-origin" not in answer.headers  # CORS is off by default
    assert "origin" not in upstream.requests[0]["headers"]


@pytest.mark.parametrize("gateway_client", [
    {"gateway_allowed_origins": [APP], "gateway_cors": True}], indirect=True)
@pytest.mark.asyncio
async def test_cors_preflight_and_headers_for_allowed_origins(
        gateway_client: tuple[httpx.AsyncClient, FakeUpstream], keys: Keys) -> None:
    client, _ = gateway_client
    preflight = await client.options("/mcp", headers={
        "origin": APP, "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type, mcp-session-id"})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == APP
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "mcp-session-id" in preflight.headers["access-control-allow-headers"]
    answer = await _list(client, keys, APP)
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == APP
    assert "mcp-session-id" in answer.headers["access-control-expose-headers"]
    # a browser must see the 401 challenge too
    unauthenticated = await client.post("/mcp", json=message("tools/list"),
                                        headers={"origin": APP})
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["access-control-allow-origin"] == APP
    foreign = await client.options("/mcp", headers={
        "origin": "https://evil.example.com", "access-control-request-method": "POST"})
    assert foreign.status_code == 403
    assert "access-control-allow-origin" not in foreign.headers
    # the gateway's own origin is not allowed once an allow-list is configured
    assert (await _list(client, keys, "https://gw.example.com")).status_code == 403


@pytest.mark.parametrize(("url", "origin"), [
    ("https://a.example.com/x", "https://a.example.com"),
    ("https://A.example.com:443", "https://a.example.com"),
    ("http://127.0.0.1:8090/mcp", "http://127.0.0.1:8090"),
    ("http://[::1]:80/", "http://[::1]"),
])
def test_origins_are_compared_in_their_serialised_form(url: str, origin: str) -> None:
    assert origin_of(url) == origin
