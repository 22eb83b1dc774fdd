"""``Origin`` validation and CORS for the gateway (MCP "Transports", Streamable HTTP, security
warning: servers MUST validate ``Origin`` on every incoming connection, and answer an invalid
one with 403; the Fetch standard's CORS protocol for browser clients).

* A request to the MCP endpoint whose ``Origin`` is not in the allow-list
  (``PDP_GATEWAY_ALLOWED_ORIGINS``; by default the gateway's own public origin) is answered
  403 before anything else happens — no token check, nothing forwarded. A request without
  ``Origin`` (not from a browser) is not affected; ``Origin: null`` is foreign unless listed.
  The gateway does not forward ``Origin`` upstream: the upstream's client is the gateway, and
  this check is made for it.
* With ``PDP_GATEWAY_CORS`` on, a preflight (``OPTIONS`` with
  ``Access-Control-Request-Method``) from an allowed origin gets 204 with the methods and
  headers MCP uses, and every answer to an allowed origin carries
  ``Access-Control-Allow-Origin`` (that origin, ``Vary: Origin``) and exposes
  ``Mcp-Session-Id`` and ``WWW-Authenticate``. A preflight from a foreign origin gets 403.
  With it off, no CORS header is ever sent (browsers then refuse cross-origin calls).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["OriginGuard", "origin_of"]

_ALLOW_METHODS = b"GET, POST, DELETE, OPTIONS"
_ALLOW_HEADERS = (b"authorization, content-type, accept, mcp-session-id, "
                  b"mcp-protocol-version, last-event-id, mcp-method, mcp-name")
_EXPOSE_HEADERS = b"mcp-session-id, mcp-protocol-version, www-authenticate"
_MAX_AGE = b"600"


def origin_of(url: str) -> str:
    """The serialised origin of ``url`` (``scheme://host[:port]``, default port omitted)."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        raise ValueError(f"not an absolute URL: {url!r}")
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(parts.scheme)
    port = f":{parts.port}" if parts.port is not None and parts.port != default else ""
    return f"{parts.scheme}://{host}{port}".lower()


class OriginGuard:
    """ASGI middleware in front of the gateway (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, mcp_path: str, allowed: Iterable[str],
                 cors: bool) -> None:
        self.app = app
        self.mcp_path = mcp_path
        self.allowed = frozenset(o if o == "null" else origin_of(o) for o in allowed)
        self.cors = cors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin: bytes | None = None
        preflight = False
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value
            elif name == b"access-control-request-method":
                preflight = True
        if origin is None:
            await self.app(scope, receive, send)
            return
        allowed = _serialised(origin) in self.allowed
        if scope["method"] == "OPTIONS" and preflight and self.cors:
            await _answer(send, 204 if allowed else 403, self._cors_headers(origin, allowed)
                          + ([(b"access-control-allow-methods", _ALLOW_METHODS),
                              (b"access-control-allow-headers", _ALLOW_HEADERS),
                              (b"access-control-max-age", _MAX_AGE)] if allowed else []),
                          None if allowed else _FORBIDDEN)
            return
        if not allowed and scope["path"] == self.mcp_path:
            await _answer(send, 403, [(b"vary", b"origin")], _FORBIDDEN)
            return
        if not (self.cors and allowed):
            await self.app(scope, receive, send)
            return
        extra = self._cors_headers(origin, True)

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        await self.app(scope, receive, with_cors)

    @staticmethod
    def _cors_headers(origin: bytes, allowed: bool) -> list[tuple[bytes, bytes]]:
        if not allowed:
            return [(b"vary", b"origin")]
        return [(b"access-control-allow-origin", origin), (b"vary", b"origin"),
                (b"access-control-expose-headers", _EXPOSE_HEADERS)]


def _serialised(origin: bytes) -> str | None:
    text = origin.decode("latin-1").strip()
    if text == "null":
        return text
    try:
        return origin_of(text)
    except ValueError:
        return None


_FORBIDDEN = orjson.dumps({"error": "forbidden_origin",
                           "message": "this Origin may not use this server"})


async def _answer(send: Send, status: int, headers: list[tuple[bytes, bytes]],
                  body: bytes | None) -> None:
    out = list(headers)
    if body is not None:
        out += [(b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode())]
    else:
        out.append((b"content-length", b"0"))
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": body or b""})
