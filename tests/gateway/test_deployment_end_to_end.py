"""End to end as a deployment meets it: a real MCP server (official SDK), ``pdp gateway`` in
front of it (a subprocess configured by flags), a real local authorization server serving a
JWKS and an RFC 7662 introspection endpoint, and the SDK's client.

Shown: an ``at+jwt`` access token verified with keys fetched from the JWKS URL; an opaque
token introspected (an answer without ``aud`` accepted, as configured) and refused once revoked,
within the token-cache lifetime; an ID-JAG refused as an access token; a client-credentials
token (``sub`` = its client) treated as the client, which may only list the tools; a foreign
``Origin`` refused with 403; denials with -32401, never the SDK's timeout code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from joserfc import jwt
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from tests.conftest import POLICIES, ROOT, free_port, stop_server
from tests.gateway.support import ISSUER, Keys, wait_serving
from tests.tokens.helpers import AuthServer, running

UPSTREAM_TOKEN = "upstream-e2e-s3cret"
OPAQUE = "opaque-access-token-7f3a"
LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {}}}}
MCP_HEADERS = {"Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list"}


@dataclass
class Stack:
    url: str
    resource: str
    log: Path
    auth: AuthServer

    def calls(self) -> list[str]:
        entries = [json.loads(line) for line in self.log.read_text().splitlines() if line]
        return [e["call"] for e in entries if "call" in e]


@pytest.fixture(scope="module")
def stack(keys: Keys, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("deployment-e2e")
    log = work / "upstream.jsonl"
    log.touch()
    server_port, gateway_port = free_port(), free_port()
    procs: list[subprocess.Popen[bytes]] = []
    with running(AuthServer("")) as auth:
        auth.jwks = json.loads(keys.jwks_file.read_text())
        try:
            server = subprocess.Popen(
                [sys.executable, str(ROOT / "tests" / "gateway" / "mcp_server.py"),
                 "--port", str(server_port), "--log", str(log), "--token", UPSTREAM_TOKEN],
                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            procs.append(server)
            wait_serving(server, f"http://127.0.0.1:{server_port}/health", "the MCP server")
            env = {**os.environ, "PDP_DECISION_LOG": "off", "PDP_WATCH": "false",
                   "PDP_DATA_DIR": str(work / "data"),
                   "PDP_GATEWAY_UPSTREAM_TOKEN": UPSTREAM_TOKEN,
                   "PDP_TOKEN_INTROSPECTION_CLIENT_SECRET": "s3cret"}
            gateway = subprocess.Popen(
                [sys.executable, "-m", "pdp", "gateway",
                 "--upstream", f"http://127.0.0.1:{server_port}/mcp",
                 "--port", str(gateway_port), "--policies", str(POLICIES / "mcp"),
                 "--authorization-server", ISSUER, "--jwks-url", auth.jwks_url,
                 "--introspection-url", auth.introspection_url,
                 "--introspection-client-id", "gateway", "--introspection-audience",
                 "optional", "--token-cache-seconds", "0.5", "--log-level", "warning"],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            procs.append(gateway)
            base = f"http://127.0.0.1:{gateway_port}"
            wait_serving(gateway, base + "/health", "pdp gateway")
            yield Stack(url=base + "/mcp", resource=base + "/mcp", log=log, auth=auth)
        finally:
            for proc in reversed(procs):
                stop_server(proc)


def _token(keys: Keys, audience: str, typ: str = "at+jwt", **claims: Any) -> str:
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": audience, "sub": "alice@example.com",
               "client_id": "agent-app-1", "iat": now, "exp": now + 600, **claims}
    return jwt.encode({"alg": "ES256", "kid": keys.kid, "typ": typ}, payload, keys.key)


async def _raw(stack: Stack, token: str, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(stack.url, json=LIST, headers={
            **MCP_HEADERS, "Authorization": f"Bearer {token}", **headers})


@pytest.mark.asyncio
async def test_an_access_token_verified_with_keys_from_the_jwks_url(
        stack: Stack, keys: Keys) -> None:
    token = _token(keys, stack.resource)
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http:
        async with Client(streamable_http_client(stack.url, http_client=http)) as mcp:
            assert mcp.protocol_version == "2026-07-28"  # server/discover is not refused
            assert "get_customer" in {t.name for t in (await mcp.list_tools()).tools}
            result = await mcp.call_tool("get_customer", {"id": "cust-67890", "case": "c-9"})
            assert result.content[0].text.startswith("get_customer done")
    assert stack.auth.count("/jwks.json") >= 1
    assert stack.auth.count("/introspect") == 0


@pytest.mark.asyncio
async def test_an_opaque_token_is_introspected_and_refused_once_revoked(
        stack: Stack) -> None:
    now = int(time.time())
    stack.auth.introspection = {"active": True, "iss": ISSUER, "sub": "alice@example.com",
                                "client_id": "agent-app-1", "exp": now + 600}  # no aud
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {OPAQUE}"}) as http:
        async with Client(streamable_http_client(stack.url, http_client=http)) as mcp:
            assert (await mcp.list_tools()).tools
    asked = [r for r in stack.auth.requests if r.path == "/introspect"]
    assert asked and all(b"token=" + OPAQUE.encode() in r.body for r in asked)
    stack.auth.introspection = {"active": False}
    revoked = time.monotonic()
    status = 200
    while status == 200 and time.monotonic() - revoked < 10:
        status = (await _raw(stack, OPAQUE)).status_code
    assert status == 401
    assert time.monotonic() - revoked < 5  # the cache lifetime (0.5 s) plus a loaded machine


@pytest.mark.asyncio
async def test_an_id_jag_is_not_an_access_token(stack: Stack, keys: Keys) -> None:
    answer = await _raw(stack, _token(keys, stack.resource, typ="oauth-id-jag+jwt"))
    assert answer.status_code == 401
    assert (await _raw(stack, _token(keys, stack.resource))).status_code == 200


@pytest.mark.asyncio
async def test_a_client_credentials_token_may_only_list_tools(
        stack: Stack, keys: Keys) -> None:
    token = _token(keys, stack.resource, sub="batch-job", client_id="batch-job")
    before = stack.calls()
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http:
        async with Client(streamable_http_client(stack.url, http_client=http),
                          mode="2026-07-28") as mcp:
            assert (await mcp.list_tools()).tools
            with pytest.raises(MCPError) as denied:
                await mcp.call_tool("echo", {"text": "hi"})
    assert denied.value.code == -32401
    assert stack.calls() == before


@pytest.mark.asyncio
async def test_a_foreign_origin_is_refused(stack: Stack, keys: Keys) -> None:
    token = _token(keys, stack.resource)
    foreign = await _raw(stack, token, Origin="https://evil.example.com")
    assert foreign.status_code == 403
    own = await _raw(stack, token, Origin=stack.url.removesuffix("/mcp"))
    assert own.status_code == 200
