"""End to end: a real MCP server (official SDK, Streamable HTTP, uvicorn), ``pdp gateway`` in
front of it (a subprocess with the shipped ``policies/mcp`` and a JWKS file made here), and the
SDK's Streamable HTTP client with a bearer token signed here.

Shown: an allowed call returns the tool's result; denied calls get the deny error of their
mapping's dialect (-32401 SEP, -32001 binding) and never reach the tool; an invalid token gets
401 with the protected-resource challenge; the upstream only ever sees the gateway's own
credentials. Run once with the SDK's default negotiation (the gateway denies the 2026-07-28
``server/discover`` probe, which the COAZ binding does not map, so the client falls back to the
2025-11-25 handshake) and once pinned to 2026-07-28.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from tests.conftest import POLICIES, ROOT, free_port, stop_server
from tests.gateway.support import ISSUER, Keys
from tests.waiting import wait_until

UPSTREAM_TOKEN = "upstream-e2e-s3cret"


@dataclass
class Stack:
    url: str
    resource: str
    log: Path

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]

    def calls(self) -> list[tuple[str, dict[str, Any]]]:
        return [(e["call"], e["arguments"]) for e in self.entries() if "call" in e]


def _wait(proc: subprocess.Popen[bytes], url: str, what: str) -> None:
    def answers() -> bool:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"{what} exited: {err}")
        try:
            httpx.get(url, timeout=1)
            return True
        except httpx.HTTPError:
            return False

    wait_until(answers, timeout=30, message=f"{what} starting")


@pytest.fixture(scope="module")
def stack(keys: Keys, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("e2e")
    log = work / "upstream.jsonl"
    log.touch()
    server_port, gateway_port = free_port(), free_port()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        server = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "gateway" / "mcp_server.py"),
             "--port", str(server_port), "--log", str(log), "--token", UPSTREAM_TOKEN],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        procs.append(server)
        _wait(server, f"http://127.0.0.1:{server_port}/health", "the MCP server")
        env = {**os.environ, "PDP_DECISION_LOG": "off", "PDP_WATCH": "false",
               "PDP_DATA_DIR": str(work / "data"),
               "PDP_GATEWAY_UPSTREAM_TOKEN": UPSTREAM_TOKEN}
        gateway = subprocess.Popen(
            [sys.executable, "-m", "pdp", "gateway",
             "--upstream", f"http://127.0.0.1:{server_port}/mcp",
             "--port", str(gateway_port), "--policies", str(POLICIES / "mcp"),
             "--jwks-file", str(keys.jwks_file), "--authorization-server", ISSUER,
             "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        procs.append(gateway)
        base = f"http://127.0.0.1:{gateway_port}"
        _wait(gateway, base + "/health", "pdp gateway")
        yield Stack(url=base + "/mcp", resource=base + "/mcp", log=log)
    finally:
        for proc in reversed(procs):
            stop_server(proc)


def _text(result: Any) -> str:
    return str(result.content[0].text)


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", ["auto", "2026-07-28"])
async def test_sdk_client_through_the_gateway(stack: Stack, keys: Keys, mode: Any) -> None:
    before = len(stack.calls())
    token = keys.token(stack.resource)  # alice: support staff, treasurer, analyst
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http:
        async with Client(streamable_http_client(stack.url, http_client=http), mode=mode) as mcp:
            assert mcp.protocol_version == ("2025-11-25" if mode == "auto" else mode)
            listed = await mcp.list_tools()
            assert {t.name for t in listed.tools} >= {"get_customer", "copy_object"}

            # SEP dialect: support staff may read a customer while working a case
            allowed = await mcp.call_tool("get_customer", {"id": "cust-67890", "case": "c-7"})
            assert _text(allowed) == 'get_customer done: {"case": "c-7", "id": "cust-67890"}'
            # ... and not without one: the SEP deny code
            with pytest.raises(MCPError) as sep_denied:
                await mcp.call_tool("get_customer", {"id": "cust-67890"})
            assert sep_denied.value.code == -32401
            assert sep_denied.value.message == "Access denied"

            # binding dialect, two decisions: the destination is under retention lock
            with pytest.raises(MCPError) as binding_denied:
                await mcp.call_tool("copy_object", {"source": "reports/q1.csv",
                                                    "destination": "archive/2020.csv"})
            assert binding_denied.value.code == -32001
            copied = await mcp.call_tool("copy_object", {"source": "reports/q1.csv",
                                                         "destination": "reports/q1-copy.csv"})
            assert _text(copied).startswith("copy_object done")

    # the denied calls never reached the tools
    assert stack.calls()[before:] == [
        ("get_customer", {"id": "cust-67890", "case": "c-7"}),
        ("copy_object", {"source": "reports/q1.csv", "destination": "reports/q1-copy.csv"}),
    ]
    # the upstream saw the gateway's credentials only, never the client's token
    seen = {e["authorization"] for e in stack.entries() if e.get("path") == "/mcp"}
    assert seen == {f"Bearer {UPSTREAM_TOKEN}"}


@pytest.mark.asyncio
async def test_invalid_tokens_get_the_protected_resource_challenge(
        stack: Stack, keys: Keys) -> None:
    metadata_url = stack.resource.replace("/mcp", "/.well-known/oauth-protected-resource/mcp")
    before = len(stack.entries())
    async with httpx.AsyncClient() as http:
        for token in ("garbage", keys.token("https://other.example.com/mcp")):
            answer = await http.post(stack.url, json={"jsonrpc": "2.0", "id": 1,
                                                      "method": "tools/list"},
                                     headers={"Authorization": f"Bearer {token}",
                                              "Accept": "application/json, text/event-stream"})
            assert answer.status_code == 401
            assert answer.headers["www-authenticate"] == (
                f'Bearer error="invalid_token", resource_metadata="{metadata_url}"')
        metadata = (await http.get(metadata_url)).json()
    assert metadata["resource"] == stack.resource
    assert metadata["authorization_servers"] == [ISSUER]
    assert len(stack.entries()) == before  # nothing reached the upstream
