"""The decision endpoints answered by the server's protocol itself, with every check the
application's middleware makes.

A decision is synchronous work on the event loop: reading the body is the only wait. Through
ASGI, each request still costs a task, a scope's worth of message dictionaries, a coroutine
per middleware layer and a response object: measured on one core, more CPU than the decision.
:class:`DirectLane` lets ``pdp serve``'s HTTP protocol (:mod:`pdp.http.protocol`) answer
``POST`` to the decision endpoints from the bytes it parsed, calling the same checks, in the
same order, as the middleware of :func:`pdp.http.app.app_from_environment`:

1. :class:`~pdp.http.exposure.Exposure` (Host allow-list, loopback-only without credentials);
2. the request id (echoed as ``X-Request-ID``, set for log lines) and the endpoint's HTTP
   metrics, which count everything refused below;
3. PEP authentication (:meth:`pdp.auth.Authenticator.authenticate_now`);
4. the rate limit (:func:`pdp.http.ratelimit.rate_refusal`);
5. the body, bounded in size (413) and time (408, ``PDP_REQUEST_TIMEOUT``), then the endpoint
   (:class:`~pdp.http.access.DecisionEndpoint`), errors translated by
   :func:`~pdp.http.responses.error_parts`.

A request the lane cannot answer exactly as the application would goes to the application:
a bearer JWT (its check may fetch keys), ``Expect: 100-continue``, a request pipelined behind
one the application is answering, a path spelled other than exactly, any other method. The
protocol uses the lane only when the loaded application is the one that built it (nothing
wraps it: no proxy-header rewriting, no root path) and telemetry is off.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from pdp.auth import Authenticator
from pdp.errors import PDPError, RequestTimeout
from pdp.http.access import (
    EXPLAIN_HEADER,
    BodyRequest,
    DecisionEndpoint,
    body_too_large,
    declared_too_large,
)
from pdp.http.auth import credentials_of, log_refusal
from pdp.http.exposure import Exposure
from pdp.http.metrics import EndpointStats, stats_by_path
from pdp.http.middleware import request_id_of
from pdp.http.ratelimit import rate_refusal
from pdp.http.responses import error_parts
from pdp.logs import REQUEST_ID
from pdp.ratelimit import RateLimiter

__all__ = ["DirectLane", "DirectRequest", "Reply"]

_REQUEST_ID = b"x-request-id"
_CONTENT_TYPE = b"content-type"
_EXPLAIN = EXPLAIN_HEADER.encode()
_JSON_NO_STORE = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]

#: status, headers (without content-length), body
Reply = tuple[int, list[tuple[bytes, bytes]], bytes]


@dataclass(slots=True)
class DirectRequest:
    """One admitted request while its body arrives."""

    endpoint: DecisionEndpoint
    scope: dict[str, Any]
    started: int  # perf_counter_ns when the head was complete
    stats: EndpointStats | None
    request_id: bytes | None
    refusal: Exception | None = None  # answered once the body is in (a check's failure too)
    at_once: bool = False  # answered as soon as the head is in, and the connection closed
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0

    @property
    def limit(self) -> int:
        return self.endpoint.max_body_bytes

    @property
    def timeout(self) -> float:
        return self.endpoint.timeout


@dataclass(frozen=True)
class DirectLane:
    """The decision endpoints and the checks in front of them (see the module)."""

    endpoints: Mapping[bytes, DecisionEndpoint]
    stats: Mapping[str, EndpointStats]  # by path, as ENDPOINTS names them
    pep: Authenticator
    limiter: RateLimiter | None
    exposure: Exposure | None = None  # set by the served application (app_from_environment)

    @classmethod
    def of(cls, endpoints: Sequence[DecisionEndpoint], *, stats: Mapping[str, EndpointStats],
           pep: Authenticator, limiter: RateLimiter | None) -> DirectLane:
        return cls({e.path.encode("ascii"): e for e in endpoints}, stats_by_path(stats), pep,
                   limiter)

    def behind(self, exposure: Exposure) -> DirectLane:
        return replace(self, exposure=exposure)

    def admit(self, scope: dict[str, Any], path: bytes) -> DirectRequest | None:
        """For the head of a ``POST`` to ``path`` (``scope`` filled as uvicorn fills it):
        the :class:`DirectRequest` to collect the body of (perhaps already refused: answered
        when the body is in, or ``at_once`` when exposure refused it, uncounted as in the
        application), or None: the application must answer. A check that fails unexpectedly
        refuses the request with a 500, answered when the body is in (the connection serves
        on)."""
        endpoint = self.endpoints.get(path)
        exposure = self.exposure
        if endpoint is None or exposure is None:
            return None
        try:
            refusal = exposure.refusal(scope)
        except Exception as exc:  # noqa: BLE001 - a 500, logged, as in the application
            return DirectRequest(endpoint, scope, 0, None, None, exc)
        if refusal is not None:
            return DirectRequest(endpoint, scope, 0, None, None, refusal, at_once=True)
        request = DirectRequest(endpoint, scope, time.perf_counter_ns(),
                                self.stats.get(endpoint.path), request_id_of(scope))
        try:
            return self._check(request, scope)
        except Exception as exc:  # noqa: BLE001 - a 500, logged, as in the application
            request.refusal = exc
            request.at_once = False
            return request

    def _check(self, request: DirectRequest, scope: dict[str, Any]) -> DirectRequest | None:
        """Authentication, the rate limit and the declared body size, for ``request``."""
        if self.pep.enabled:
            try:
                principal = self.pep.authenticate_now(credentials_of(scope))
            except PDPError as exc:
                log_refusal(scope, exc)
                request.refusal = exc
                return request
            if principal is None:
                return None  # a bearer JWT: the application's authentication awaits it
            scope["state"]["principal"] = principal
        if self.limiter is not None:
            request.refusal = rate_refusal(self.limiter, scope)
        if request.refusal is None:
            request.refusal = declared_too_large(_content_length(scope),
                                                 request.endpoint.max_body_bytes)
            request.at_once = request.refusal is not None  # not read: answered, closed
        return request

    def receive(self, request: DirectRequest, chunk: bytes) -> Reply | None:
        """Keep a piece of the body; past the size limit, the 413 to close with."""
        if request.refusal is not None:
            return None
        request.size += len(chunk)
        if request.size > request.limit:
            return self._finish(request, _error(body_too_large(request.limit), request.scope))
        request.chunks.append(chunk)
        return None

    def expired(self, request: DirectRequest) -> Reply:
        """The 408 for a body that did not arrive within the timeout."""
        return self._finish(request, _error(RequestTimeout.after(request.timeout),
                                            request.scope))

    def respond(self, request: DirectRequest) -> Reply:
        """The answer once the whole body is in."""
        if request.refusal is not None:
            return self._finish(request, _error(request.refusal, request.scope))
        chunks = request.chunks
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        content_type = explain = text_id = None
        for name, value in request.scope["headers"]:
            if name == _CONTENT_TYPE:
                if content_type is None:
                    content_type = value.decode("latin-1")
            elif name == _EXPLAIN:
                if explain is None:
                    explain = value.decode("latin-1")
        token = None
        if request.request_id is not None:
            text_id = request.request_id.decode("latin-1")
            token = REQUEST_ID.set(text_id)
        try:
            try:
                answer = request.endpoint.answer(BodyRequest(content_type, body, explain, text_id))
                reply: Reply = (200, list(_JSON_NO_STORE), orjson.dumps(answer))
            except Exception as exc:  # noqa: BLE001 - translated, and logged, in one place
                reply = _error(exc, request.scope, failure=request.endpoint.failure)
        finally:
            if token is not None:
                REQUEST_ID.reset(token)
        return self._finish(request, reply)

    @staticmethod
    def _finish(request: DirectRequest, reply: Reply) -> Reply:
        if request.request_id is not None:
            reply[1].append((_REQUEST_ID, request.request_id))
        stats = request.stats
        if stats is not None:
            stats.observe(time.perf_counter_ns() - request.started, reply[0])
            stats.direct += 1
        return reply


def _content_length(scope: Mapping[str, Any]) -> str | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return str(value.decode("latin-1"))
    return None


def _error(exc: Exception, scope: Mapping[str, Any], *,
           failure: str = "the request failed") -> Reply:
    status, headers, body = error_parts(exc, scope["method"], scope["path"], failure=failure)
    return status, [(b"content-type", b"application/json"),
                    *((k.lower().encode("latin-1"), v.encode("latin-1"))
                      for k, v in headers.items())], body
