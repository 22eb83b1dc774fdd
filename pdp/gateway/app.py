"""The MCP gateway as an ASGI application (MCP "Transports": Streamable HTTP, 2025-03-26 to
2026-07-28; "Authorization"; RFC 9728; docs/spec/coaz.md).

One MCP endpoint (``PDP_GATEWAY_PATH``, ``/mcp``) in front of one upstream MCP server:

* ``POST``: the client's bearer token is validated first (401 otherwise); the JSON-RPC message
  (or a batch, where the protocol version allows one) is authorized message by message; the
  permitted messages are forwarded and the upstream's answer (``application/json`` or a
  ``text/event-stream``, streamed as it comes) goes back unchanged; a rejected request gets its
  JSON-RPC error (HTTP 200; from 2026-07-28 the status the transport assigns to the code).
  ``tools/list`` responses teach the gateway the tools' mappings on the way through.
* ``GET``: the server-to-client SSE stream, passed through (watched for
  ``notifications/tools/list_changed``).
* ``DELETE``: ends the session upstream.
* any other method (``HEAD`` included) is answered here with 405, never forwarded.

The request's headers are read once (:class:`~pdp.gateway.incoming.Incoming`): a header the
gateway decides on sent twice is a 400, and the session id checked is the one forwarded.

``Mcp-Session-Id`` and ``MCP-Protocol-Version`` travel both ways; the client's
``Authorization`` never goes upstream. ``/.well-known/oauth-protected-resource`` (and the same
with the MCP path appended, RFC 9728 section 3.1) serves the protected-resource metadata.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from pdp.errors import BodyTooLarge, UpstreamError
from pdp.gateway.auth import AuthUnavailable, Unauthenticated
from pdp.gateway.incoming import DuplicateHeader, Incoming
from pdp.gateway.jsonrpc import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    BodyError,
    error_message,
    is_request,
    parse_messages,
)
from pdp.gateway.origin import OriginGuard
from pdp.gateway.runtime import Gateway
from pdp.gateway.sse import SSEParser
from pdp.gateway.tool_filter import ToolFilter, filtered_body, filtered_event
from pdp.gateway.upstream import RESPONSE_HEADERS, UpstreamResponse
from pdp.tokens import WELL_KNOWN_PATH

__all__ = ["create_gateway_app"]

log = logging.getLogger("pdp.gateway")

_JSON = "application/json"
_SSE = "text/event-stream"
_LIST_CHANGED = "notifications/tools/list_changed"


def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=_JSON,
                    headers=dict(headers) if headers else None)


class SessionNotFound(Exception):
    """The request names a session another principal opened (or none): answer 404."""


def _failure(exc: Exception, scope: Scope) -> Response:
    """The gateway's one translation of an error into its HTTP answer: a missing or invalid
    token 401 (with the challenge), keys that cannot be fetched 503, a body too large 413, a
    body that is no JSON-RPC message or a header sent twice 400, another's session 404, an
    upstream that fails 502, anything else a logged 500. Decisions are not errors: a denied
    message is answered with its JSON-RPC error by :mod:`pdp.gateway.authorize`."""
    if isinstance(exc, Unauthenticated):
        return _json({"error": "unauthorized"}, 401, {"WWW-Authenticate": exc.www_authenticate})
    if isinstance(exc, AuthUnavailable):
        return _json({"error": "temporarily_unavailable"}, 503, {"Retry-After": "5"})
    if isinstance(exc, BodyTooLarge):
        return _json(error_message(None, INVALID_REQUEST, exc.message), 413)
    if isinstance(exc, BodyError):
        return _json(error_message(None, exc.code, exc.message), 400)
    if isinstance(exc, DuplicateHeader):
        return _json(error_message(None, INVALID_REQUEST, exc.message), 400)
    if isinstance(exc, SessionNotFound):
        return _json(error_message(None, INVALID_REQUEST, "Session not found"), 404)
    if isinstance(exc, UpstreamError):
        return _json(error_message(None, INTERNAL_ERROR, exc.message), 502)
    log.error("the gateway failed on %s %s", scope.get("method"), scope.get("path"),
              exc_info=exc)
    return _json(error_message(None, INTERNAL_ERROR, "gateway error"), 500)


def _media_type(response: UpstreamResponse) -> str:
    value = response.headers.get("content-type") or ""
    return value.split(";")[0].strip().lower()


def _response_headers(response: UpstreamResponse) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.lower() in RESPONSE_HEADERS}


def _sse_frame(message: Mapping[str, Any]) -> bytes:
    return b"event: message\ndata: " + orjson.dumps(message) + b"\n\n"


class _Watcher:
    """Reads MCP messages out of an upstream answer: learns ``tools/list`` results of the
    requests in ``list_ids`` and notes ``notifications/tools/list_changed``."""

    def __init__(self, gateway: Gateway, list_ids: list[Any]) -> None:
        self.gateway = gateway
        self.list_ids = list_ids

    def message(self, message: Any) -> None:
        if not isinstance(message, dict):
            return
        if message.get("method") == _LIST_CHANGED:
            log.info("the upstream's tool list changed")
            self.gateway.tools.mark_stale()
        elif self.list_ids and "result" in message and message.get("id") in self.list_ids:
            result = message["result"]
            tools = result.get("tools") if isinstance(result, dict) else None
            if isinstance(tools, list):
                self.gateway.tools.learn([t for t in tools if isinstance(t, dict)])

    def body(self, raw: bytes) -> None:
        if not self.list_ids and _LIST_CHANGED.encode() not in raw:
            return
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return
        for message in parsed if isinstance(parsed, list) else [parsed]:
            self.message(message)

    def event(self, data: str) -> None:
        if not data or (not self.list_ids and _LIST_CHANGED not in data):
            return
        try:
            self.message(orjson.loads(data))
        except orjson.JSONDecodeError:
            return


async def _stream(response: UpstreamResponse, watcher: _Watcher,
                  prefix: list[Mapping[str, Any]],
                  tool_filter: ToolFilter | None = None) -> AsyncIterator[bytes]:
    parser = SSEParser()
    try:
        for message in prefix:
            yield _sse_frame(message)
        async for chunk in response.aiter_raw():
            events = parser.feed(chunk)
            for event in events:
                if event.event == "message":
                    watcher.event(event.data)
            if tool_filter is None:
                yield chunk
                continue
            for event in events:  # re-framed, the tools/list answer filtered
                yield await filtered_event(event, tool_filter)
    except UpstreamError as exc:
        log.info("upstream stream ended: %s", exc.message)
    finally:
        await response.aclose()


def create_gateway_app(gateway: Gateway) -> ASGIApp:
    config = gateway.config
    methods = {"POST", "GET", "DELETE"}

    async def authenticate(incoming: Incoming) -> Mapping[str, Any]:
        return await gateway.authenticator.authenticate(incoming.authorization)

    def check_session(incoming: Incoming, claims: Mapping[str, Any]) -> None:
        session_id = incoming.session_id
        if session_id is not None and not gateway.sessions.allows(
                session_id, gateway.principal(claims)):
            raise SessionNotFound()

    async def relay(response: UpstreamResponse, *, watcher: _Watcher,
                    errors: list[Mapping[str, Any]], binds: str | None,
                    tool_filter: ToolFilter | None = None) -> Response:
        status = response.status_code
        if status in (401, 403):
            await response.aclose()
            log.error("the upstream refused the gateway's credentials (HTTP %d)", status)
            raise UpstreamError("the upstream server refused the request")
        headers = _response_headers(response)
        session_id = response.headers.get("mcp-session-id")
        if binds is not None and session_id and 200 <= status < 300:
            gateway.sessions.bind(session_id, binds)
        kind = _media_type(response)
        if kind == _SSE and status == 200:
            return StreamingResponse(_stream(response, watcher, errors, tool_filter),
                                     status_code=status, headers=headers)
        try:
            body = await response.aread()
        except UpstreamError:
            raise UpstreamError("the upstream answer was cut off") from None
        finally:
            await response.aclose()
        if kind == _JSON and status == 200:
            watcher.body(body)
            if tool_filter is not None:
                body = await filtered_body(body, tool_filter)
        if errors:  # a batch of which some messages were rejected here
            answered: list[Any] = []
            if kind == _JSON and body:
                try:
                    parsed = orjson.loads(body)
                    answered = parsed if isinstance(parsed, list) else [parsed]
                except orjson.JSONDecodeError:
                    answered = []
            return _json([*answered, *errors], 200)
        return Response(body, status_code=status, headers=headers)

    async def post(request: Request, incoming: Incoming) -> Response:
        claims = await authenticate(incoming)
        raw = await gateway.read_body(request, incoming.content_length)
        version = incoming.protocol_version
        messages, batch = parse_messages(raw, version, max_batch=config.max_batch)
        check_session(incoming, claims)
        session_id = incoming.session_id

        async def fetch_tools() -> list[dict[str, Any]]:
            return await gateway.upstream.list_tools(session_id=session_id,
                                                     protocol_version=version)

        forward: list[Any] = []
        errors: list[Mapping[str, Any]] = []
        rejected = None
        for message in messages:  # a batch is mapped and decided off the event loop
            rejection = await gateway.authorizer.check(message, claims, fetch_tools,
                                                       request_id=incoming.request_id,
                                                       off_loop=batch)
            if rejection is None:
                forward.append(message)
            else:
                rejected = rejection
                if rejection.response is not None:
                    errors.append(rejection.response)
        if not forward:
            if not errors:
                return Response(status_code=202)
            if not batch:
                assert rejected is not None
                status, extra = gateway.rejection_status(rejected, errors[0], version)
                return _json(errors[0], status, extra)
            return _json(errors, 200)
        # The messages as parsed and authorized, not the raw bytes: a body with duplicate keys
        # must not mean one thing here and another to a differently-written JSON parser.
        content = orjson.dumps(forward if batch else forward[0])
        list_ids = [m.get("id") for m in forward
                    if m.get("method") == "tools/list" and is_request(m)]
        binds = None
        if any(m.get("method") == "initialize" for m in forward):
            binds = gateway.principal(claims)
        try:
            response = await gateway.upstream.open(
                "POST", gateway.upstream.headers(incoming.forward.items()), content)
        except UpstreamError as exc:  # each request forwarded is answered with the failure
            failed = [error_message(m["id"], INTERNAL_ERROR, exc.message)
                      for m in forward if is_request(m)]
            if not failed and not errors:
                raise
            if batch:
                return _json([*failed, *errors], 200)
            return _json(failed[0], 200)
        tool_filter = (ToolFilter(gateway.authorizer, claims, list_ids, incoming.request_id)
                       if list_ids and config.filter_tools else None)
        return await relay(response, watcher=_Watcher(gateway, list_ids), errors=errors,
                           binds=binds, tool_filter=tool_filter)

    async def passthrough(request: Request, incoming: Incoming) -> Response:
        """GET (the server's SSE stream) and DELETE (end the session): authenticated and
        bound to the session's owner, then relayed as they are."""
        claims = await authenticate(incoming)
        check_session(incoming, claims)
        response = await gateway.upstream.open(
            request.method, gateway.upstream.headers(incoming.forward.items()))
        result = await relay(response, watcher=_Watcher(gateway, []), errors=[], binds=None)
        session_id = incoming.session_id
        if request.method == "DELETE" and session_id and 200 <= result.status_code < 300:
            gateway.sessions.forget(session_id)
        return result

    async def endpoint(request: Request) -> Response:
        if request.method not in methods:  # HEAD, OPTIONS, ...: answered here
            return Response(status_code=405, headers={"Allow": "GET, POST, DELETE"})
        try:
            incoming = Incoming.parse(request.scope["headers"])
            if request.method == "POST":
                return await post(request, incoming)
            return await passthrough(request, incoming)
        except Exception as exc:  # noqa: BLE001 - translated, and logged, in one place
            return _failure(exc, request.scope)

    async def metadata(_: Request) -> Response:
        return _json(gateway.resource_metadata, headers={"Cache-Control": "max-age=3600"})

    async def health(_: Request) -> Response:
        return _json({"status": "ok"})

    # RFC 9728 section 3.1: the well-known path, with the resource's path appended; also
    # with this endpoint's path (the same unless a proxy in front rewrites paths) and bare.
    metadata_paths = dict.fromkeys([
        urlsplit(config.resource_metadata_url).path, WELL_KNOWN_PATH + config.path,
        WELL_KNOWN_PATH])
    routes = [
        *(Route(path, metadata, methods=["GET"]) for path in metadata_paths),
        Route("/health", health, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=gateway.lifespan)
    mcp_path = config.path

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        """The MCP endpoint directly (it is on every message's path); the rest via routing."""
        if scope["type"] == "http" and scope["path"] == mcp_path:
            response = await endpoint(Request(scope, receive))
            await response(scope, receive, send)
            return
        await app(scope, receive, send)

    return OriginGuard(asgi, mcp_path=mcp_path, allowed=config.allowed_origins,
                       cors=config.cors)
