"""Test helpers for the gateway and the COAZ endpoints: signing keys and tokens, a scripted
upstream MCP server (an ASGI app), and an in-process gateway wired to it."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from joserfc import jwt
from joserfc.jwk import ECKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from pdp.gateway import Decider, Gateway, create_gateway_app
from pdp.settings import Settings
from tests.conftest import POLICIES
from tests.waiting import wait_until

ISSUER = "https://as.example.com"
RESOURCE = "https://gw.example.com/mcp"
UPSTREAM = "http://upstream.test/mcp"
UPSTREAM_TOKEN = "upstream-s3cret"
TOOLS: list[dict[str, Any]] = json.loads((POLICIES / "mcp" / "tools.json").read_text())["tools"]


class Keys:
    """An ES256 signing key, its public JWKS in a file, and tokens signed with it."""

    def __init__(self, directory: Path, *, issuer: str = ISSUER, kid: str = "k1") -> None:
        self.key = ECKey.generate_key("P-256", parameters={"kid": kid, "use": "sig",
                                                           "alg": "ES256"})
        self.issuer = issuer
        self.kid = kid
        self.jwks_file = directory / "jwks.json"
        self.jwks_file.write_text(json.dumps({"keys": [self.key.as_dict(private=False)]}))

    def token(self, audience: str = RESOURCE, *, sub: str | None = "alice@example.com",
              client_id: str | None = "agent-app-1", lifetime: int = 600,
              **extra: Any) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {"iss": self.issuer, "aud": audience, "iat": now,
                                  "exp": now + lifetime, **extra}
        if sub is not None:
            claims["sub"] = sub
        if client_id is not None:
            claims["client_id"] = client_id
        return jwt.encode({"alg": "ES256", "kid": self.kid}, claims, self.key)


def wait_serving(proc: subprocess.Popen[bytes], url: str, what: str) -> None:
    """Poll ``url`` until it answers (or ``proc`` exits, or 30 s pass)."""
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


def gateway_settings(keys: Keys, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "policies": POLICIES / "mcp", "decision_log": "off", "watch": False,
        "entity_store": "memory",
        "gateway_upstream": UPSTREAM, "gateway_public_url": "https://gw.example.com",
        "gateway_upstream_token": UPSTREAM_TOKEN, "authorization_servers": [ISSUER],
        "token_jwks_file": keys.jwks_file,
    }
    values.update(overrides)
    return Settings(**values)


def message(method: str, params: Mapping[str, Any] | None = None,
            request_id: Any = 1) -> dict[str, Any]:
    body: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if request_id is not None:
        body["id"] = request_id
    if params is not None:
        body["params"] = dict(params)
    return body


def call(name: str, arguments: Mapping[str, Any], request_id: Any = 1) -> dict[str, Any]:
    return message("tools/call", {"name": name, "arguments": dict(arguments)}, request_id)


def sse(*messages: Mapping[str, Any]) -> bytes:
    return b"".join(b"event: message\r\ndata: " + orjson.dumps(m) + b"\r\n\r\n"
                    for m in messages)


@dataclass
class FakeUpstream:
    """A scripted Streamable HTTP MCP server that records what reaches it.

    ``sse`` answers with ``text/event-stream`` instead of JSON; ``tools`` is what ``tools/list``
    lists; ``status`` forces an HTTP status for every POST; ``stream`` is what ``GET`` sends.
    """

    tools: list[dict[str, Any]] = field(default_factory=lambda: list(TOOLS))
    sse: bool = False
    status: int | None = None
    stream: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    session_id: str = "session-1"

    def posted(self, method: str | None = None) -> list[dict[str, Any]]:
        """The JSON-RPC messages POSTed (flattened batches), optionally of one method."""
        out: list[dict[str, Any]] = []
        for r in self.requests:
            if r["method"] != "POST":
                continue
            body = r["body"]
            for m in body if isinstance(body, list) else [body]:
                if method is None or m.get("method") == method:
                    out.append(m)
        return out

    def calls(self) -> list[str]:
        return [m["params"]["name"] for m in self.posted("tools/call")]

    def answer(self, m: Mapping[str, Any]) -> dict[str, Any] | None:
        if "method" not in m or "id" not in m:
            return None
        result: dict[str, Any]
        if m["method"] == "initialize":
            result = {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}},
                      "serverInfo": {"name": "fake", "version": "1"}}
        elif m["method"] == "tools/list":
            result = {"tools": self.tools}
        elif m["method"] == "tools/call":
            result = {"content": [{"type": "text", "text": f"ran {m['params']['name']}"}]}
        else:
            result = {}
        return {"jsonrpc": "2.0", "id": m["id"], "result": result}

    def app(self) -> Starlette:
        async def endpoint(request: Request) -> Response:
            raw = await request.body()
            body = orjson.loads(raw) if raw else None
            self.requests.append({"method": request.method, "headers": dict(request.headers),
                                  "body": body, "raw": raw})
            if self.status is not None:
                return Response(b"", self.status)
            if request.method == "GET":
                return StreamingResponse(iter([sse(*self.stream)]),
                                         media_type="text/event-stream")
            if request.method == "DELETE":
                return Response(b"", 200)
            messages = body if isinstance(body, list) else [body]
            answers = [a for a in (self.answer(m) for m in messages) if a is not None]
            headers = {}
            if any(m.get("method") == "initialize" for m in messages):
                headers["mcp-session-id"] = self.session_id
            if not answers:
                return Response(b"", 202, headers=headers)
            if self.sse:
                return StreamingResponse(iter([b": keep-alive\r\n\r\n", sse(*answers)]),
                                         media_type="text/event-stream", headers=headers)
            payload = answers if isinstance(body, list) else answers[0]
            return Response(orjson.dumps(payload), media_type="application/json",
                            headers=headers)

        return Starlette(routes=[Route("/mcp", endpoint, methods=["GET", "POST", "DELETE"])])


def make_gateway(keys: Keys, upstream: FakeUpstream, *, decider: Decider | None = None,
                 pdp_client: httpx.AsyncClient | None = None, **overrides: Any) -> Gateway:
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=upstream.app()))
    return Gateway.from_settings(gateway_settings(keys, **overrides), decider=decider,
                                 upstream_client=client, pdp_client=pdp_client)


def client_for(gateway: Gateway) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_gateway_app(gateway)),
                             base_url="https://gw.example.com")


MCP_HEADERS = {"accept": "application/json, text/event-stream",
               "content-type": "application/json"}


def headers(token: str | None, **extra: str) -> dict[str, str]:
    out = dict(MCP_HEADERS)
    if token is not None:
        out["authorization"] = f"Bearer {token}"
    out.update({k.replace("_", "-"): v for k, v in extra.items()})
    return out


def messages_of(response: httpx.Response) -> list[dict[str, Any]]:
    """The JSON-RPC messages of a gateway answer, JSON or SSE."""
    kind = response.headers.get("content-type", "")
    if kind.startswith("text/event-stream"):
        out = []
        for block in response.text.replace("\r\n", "\n").split("\n\n"):
            data = [line[5:].strip() for line in block.split("\n") if line.startswith("data:")]
            if data:
                out.append(json.loads("\n".join(data)))
        return out
    body = response.json()
    return body if isinstance(body, list) else [body]
