"""The gateway's side of the upstream MCP server (MCP "Transports": Streamable HTTP, sessions,
protocol-version header; "Security Best Practices": token passthrough is forbidden).

Requests are forwarded with an allow-list of headers: the MCP ones (``Mcp-Session-Id``,
``MCP-Protocol-Version``, ``Mcp-Method``, ``Mcp-Name``, ``Mcp-Param-*``, ``Last-Event-ID``),
``Accept``, ``Content-Type`` and tracing headers. The client's ``Authorization`` never goes
upstream: the gateway sends its own configured credentials, if any. Responses are streamed
back unchanged with an allow-list of headers.

The HTTP transport is :class:`~pdp.gateway.http1.Http1Client` (the fast path) or, given an
``httpx.AsyncClient`` (tests against an ASGI app, embedding), :class:`HttpxTransport`.
:meth:`Upstream.list_tools` is the gateway's own ``tools/list`` call (all pages), made in the
client's session and protocol version, used to refresh the tool catalogue.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol

import orjson

from pdp.errors import UpstreamError
from pdp.gateway.jsonrpc import MODERN_VERSIONS
from pdp.gateway.sse import SSEParser

if TYPE_CHECKING:
    import httpx

__all__ = ["Upstream", "UpstreamResponse", "Transport", "HttpxTransport", "REQUEST_HEADERS",
           "RESPONSE_HEADERS", "forwardable"]

log = logging.getLogger("pdp.gateway")

#: Request headers passed upstream (lowercase); ``mcp-param-*`` too.
REQUEST_HEADERS: Final = frozenset({
    "accept", "content-type", "last-event-id", "mcp-session-id", "mcp-protocol-version",
    "mcp-method", "mcp-name", "x-request-id", "traceparent", "tracestate", "user-agent",
})
#: Response headers passed back to the client (lowercase).
RESPONSE_HEADERS: Final = frozenset({
    "content-type", "mcp-session-id", "cache-control", "retry-after", "x-accel-buffering",
    "mcp-protocol-version", "x-request-id", "allow",
})
_PROTOCOL_VERSION_META: Final = "io.modelcontextprotocol/protocolVersion"
_CLIENT_CAPABILITIES_META: Final = "io.modelcontextprotocol/clientCapabilities"
_MAX_PAGES: Final = 100


def forwardable(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The request headers that may go upstream (names lowercased)."""
    out: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        if key in REQUEST_HEADERS or key.startswith("mcp-param-"):
            out[key] = value
    return out


class UpstreamResponse(Protocol):
    """A response whose body is still to be read; failures raise UpstreamError."""

    status_code: int

    @property
    def headers(self) -> Mapping[str, str]: ...

    def aiter_raw(self) -> AsyncIterator[bytes]: ...

    async def aread(self) -> bytes: ...

    async def aclose(self) -> None: ...


class Transport(Protocol):
    async def request(self, method: str, headers: Mapping[str, str],
                      body: bytes | None = None) -> UpstreamResponse: ...

    async def aclose(self) -> None: ...


class _HttpxResponse:
    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self.status_code = response.status_code

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        import httpx

        try:
            async for chunk in self._response.aiter_raw():
                yield chunk
        except httpx.HTTPError as exc:
            raise UpstreamError(f"the upstream answer was cut off: "
                                f"{exc.__class__.__name__}") from None
        finally:
            await self._response.aclose()

    async def aread(self) -> bytes:
        return b"".join([chunk async for chunk in self.aiter_raw()])

    async def aclose(self) -> None:
        await self._response.aclose()


class HttpxTransport:
    """Requests to ``url`` through an ``httpx.AsyncClient`` (any httpx transport)."""

    def __init__(self, client: httpx.AsyncClient, url: str) -> None:
        self.client = client
        self.url = url

    async def request(self, method: str, headers: Mapping[str, str],
                      body: bytes | None = None) -> UpstreamResponse:
        import httpx

        request = self.client.build_request(method, self.url, headers=headers, content=body)
        try:
            return _HttpxResponse(await self.client.send(request, stream=True))
        except httpx.HTTPError as exc:
            raise UpstreamError(f"the upstream could not be reached: "
                                f"{exc.__class__.__name__}") from None

    async def aclose(self) -> None:
        await self.client.aclose()


class Upstream:
    def __init__(self, url: str, transport: Transport, *, token: str | None = None,
                 timeout: float = 30.0) -> None:
        self.url = url
        self.transport = transport
        self.timeout = timeout
        self._auth = {"authorization": f"Bearer {token}"} if token else {}
        self._ids = itertools.count(1)

    def headers(self, incoming: Iterable[tuple[str, str]]) -> dict[str, str]:
        out = forwardable(incoming)
        out["accept-encoding"] = "identity"  # stream bytes through as they are
        out.update(self._auth)
        return out

    async def open(self, method: str, headers: Mapping[str, str],
                   content: bytes | None = None) -> UpstreamResponse:
        """Send one request and return the response with its body not yet read."""
        try:
            return await self.transport.request(method, headers, content)
        except UpstreamError as exc:
            log.warning("upstream %s %s failed: %s", method, self.url, exc.message)
            raise UpstreamError("the upstream MCP server could not be reached") from None

    async def list_tools(self, *, session_id: str | None,
                         protocol_version: str | None) -> list[dict[str, Any]]:
        """Every tool the upstream lists to this session (all pages)."""
        tools: list[dict[str, Any]] = []
        cursor: str | None = None
        try:
            async with asyncio.timeout(self.timeout):
                for _ in range(_MAX_PAGES):
                    result = await self._list_page(session_id, protocol_version, cursor)
                    page = result.get("tools")
                    if not isinstance(page, list):
                        raise UpstreamError("the upstream's tools/list result has no tools")
                    tools.extend(t for t in page if isinstance(t, dict))
                    cursor = result.get("nextCursor")
                    if not isinstance(cursor, str) or not cursor:
                        return tools
        except TimeoutError:
            raise UpstreamError("the upstream's tools/list timed out") from None
        raise UpstreamError("the upstream's tools/list has too many pages")

    async def _list_page(self, session_id: str | None, protocol_version: str | None,
                         cursor: str | None) -> dict[str, Any]:
        request_id = f"pdp-gateway-tools-{next(self._ids)}"
        params: dict[str, Any] = {}
        if cursor is not None:
            params["cursor"] = cursor
        headers = {"accept": "application/json, text/event-stream",
                   "content-type": "application/json", "accept-encoding": "identity",
                   **self._auth}
        if session_id:
            headers["mcp-session-id"] = session_id
        if protocol_version:
            headers["mcp-protocol-version"] = protocol_version
        if protocol_version in MODERN_VERSIONS:
            params["_meta"] = {_PROTOCOL_VERSION_META: protocol_version,
                               _CLIENT_CAPABILITIES_META: {}}
            headers["mcp-method"] = "tools/list"
        body = orjson.dumps({"jsonrpc": "2.0", "id": request_id, "method": "tools/list",
                             "params": params})
        response = await self.open("POST", headers, body)
        try:
            if response.status_code != 200:
                raise UpstreamError(f"the upstream answered tools/list with HTTP "
                                    f"{response.status_code}")
            kind = (response.headers.get("content-type") or "").split(";")[0].strip().lower()
            if kind == "application/json":
                message = orjson.loads(await response.aread())
                return _result(message, request_id)
            if kind == "text/event-stream":
                parser = SSEParser()
                async for chunk in response.aiter_raw():
                    for event in parser.feed(chunk):
                        if event.event != "message" or not event.data:
                            continue
                        message = orjson.loads(event.data)
                        if isinstance(message, dict) and message.get("id") == request_id:
                            return _result(message, request_id)
                raise UpstreamError("the upstream's tools/list stream ended without a result")
            raise UpstreamError(f"the upstream answered tools/list with {kind or 'no type'}")
        except orjson.JSONDecodeError:
            raise UpstreamError("the upstream's tools/list answer is not JSON") from None
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        await self.transport.aclose()


def _result(message: Any, request_id: str) -> dict[str, Any]:
    if not isinstance(message, dict) or message.get("id") != request_id:
        raise UpstreamError("the upstream's tools/list answer is not its response")
    if "error" in message:
        error = message["error"]
        detail = error.get("message") if isinstance(error, dict) else None
        raise UpstreamError(f"the upstream refused tools/list: {detail or 'error'}")
    result = message.get("result")
    if not isinstance(result, dict):
        raise UpstreamError("the upstream's tools/list response has no result")
    return result
