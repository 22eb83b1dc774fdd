"""The AuthZEN endpoints as lean Starlette routes (AuthZEN 1.0 sections 6, 7, 10).

They parse the body (content type, size, JSON, nesting), call the service and shape the
response; no per-request model validation or response re-serialisation beyond one orjson
call. They are mounted in the FastAPI application and documented in its OpenAPI schema.

With ``PDP_BENCH_NOOP=on`` a fourth, undocumented route ``POST /bench/noop`` reads the body
and answers a constant decision: the same server, middleware and options minus the PDP, which
is what the HTTP benchmark compares the AuthZEN endpoints with.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive

from pdp.authzen import parse_json_body
from pdp.authzen.evaluation import EvaluationReader
from pdp.authzen.metadata import EVALUATION_PATH, EVALUATIONS_PATH
from pdp.errors import BodyTooLarge, RequestTimeout
from pdp.http.deadlines import Deadlines
from pdp.http.responses import json_endpoint
from pdp.service import PDPService

__all__ = ["BENCH_NOOP_PATH", "EXPLAIN_HEADER", "BodyRequest", "DecisionEndpoint",
           "access_routes", "access_routes_of", "body_endpoint", "body_too_large",
           "decision_endpoints", "declared_too_large",
           "explanation_asked", "read_body", "request_id", "wants_explanation"]

EXPLAIN_HEADER = "x-pdp-explain"
BENCH_NOOP_PATH = "/bench/noop"
_TRUE = {"1", "true", "yes", "on"}
_NAMES = frozenset({"access_evaluation", "access_evaluations", "bench_noop"})


async def read_body(request: Request, limit: int,
                    deadlines: Deadlines | None = None) -> bytes:
    """The body, refusing with 413 as soon as it grows past ``limit`` bytes, and with 408 if
    it has not all arrived by the deadline (with ``deadlines``; else the caller bounds it)."""
    too_large = declared_too_large(request.headers.get("content-length"), limit)
    if too_large is not None:
        raise too_large
    # straight from the server: no stream object per request
    if deadlines is None:
        return await _receive_body(request.receive, limit)
    task = deadlines.enter()
    try:
        return await _receive_body(request.receive, limit)
    except asyncio.CancelledError:
        if not deadlines.expired(task):
            raise
        task.uncancel()
        raise RequestTimeout.after(deadlines.timeout) from None
    finally:
        deadlines.leave(task)


def declared_too_large(declared: str | None, limit: int) -> BodyTooLarge | None:
    """The 413 for a ``Content-Length`` header value over ``limit``, else None."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return BodyTooLarge(f"request body is {declared} bytes; the limit is {limit}",
                            field="body")
    return None


def body_too_large(limit: int) -> BodyTooLarge:
    """The 413 for a body that grew past ``limit`` bytes while arriving."""
    return BodyTooLarge(f"request body exceeds the limit of {limit} bytes", field="body")


async def _receive_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect()
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise body_too_large(limit)
        if not message.get("more_body", False):
            if not chunks:
                return chunk  # the usual case: the whole body in one message
            chunks.append(chunk)
            return b"".join(chunks)
        chunks.append(chunk)


def wants_explanation(request: Request, default: bool) -> bool:
    return explanation_asked(request.headers.get(EXPLAIN_HEADER), default)


def explanation_asked(value: str | None, default: bool) -> bool:
    """Whether an ``X-PDP-Explain`` header value (None: not sent) asks for an explanation."""
    return default if value is None else value.strip().lower() in _TRUE


def request_id(request: Request) -> str | None:
    """The ``X-Request-ID`` the middleware saw, for the decision log (None: none was sent)."""
    state: dict[str, Any] | None = request.scope.get("state")
    return None if state is None else state.get("request_id")


@dataclass(frozen=True, slots=True)
class BodyRequest:
    """What a decision endpoint reads of a request, whichever server path brought it."""

    content_type: str | None
    body: bytes
    explain: str | None  # the X-PDP-Explain header, if sent
    request_id: str | None  # the X-Request-ID header, if sent


@dataclass(frozen=True, slots=True)
class DecisionEndpoint:
    """A decision endpoint without its framework: ``answer`` takes the request as read and
    returns the JSON response body, or raises the error to answer with (translated by
    :func:`~pdp.http.responses.error_parts`; anything else is a 500 saying ``failure``).
    Served as a Starlette route (:func:`access_routes`) and by the server's direct lane
    (:mod:`pdp.http.direct`)."""

    path: str
    name: str
    answer: Callable[[BodyRequest], dict[str, Any]]
    max_body_bytes: int
    timeout: float
    failure: str = "the decision could not be made"


# (parsed JSON body, the request as read) → response body
Handler = Callable[[Any, BodyRequest], dict[str, Any]]


def _parsed(service: PDPService, handle: Handler) -> Callable[[BodyRequest], dict[str, Any]]:
    max_bytes, max_depth = service.settings.max_body_bytes, service.settings.max_depth

    def answer(request: BodyRequest) -> dict[str, Any]:
        body = parse_json_body(request.content_type, request.body, max_bytes=max_bytes,
                               max_depth=max_depth)
        return handle(body, request)

    return answer


def body_endpoint(service: PDPService, handle: Handler, *, failure: str,
                  off_loop: bool = False) -> Callable[[Request], Awaitable[Response]]:
    """A POST endpoint of the AuthZEN API: the body is read and parsed (content type, size,
    JSON, nesting) and ``handle`` answers; errors are translated by
    :func:`~pdp.http.responses.json_endpoint` (an unexpected failure is a 500 saying
    ``failure``: the PEP denies). ``off_loop``: ``handle`` runs in a worker thread (work too
    long for the event loop)."""
    answer = _parsed(service, handle)
    return _route_endpoint(answer, service.settings.max_body_bytes,
                           service.settings.request_timeout, failure=failure,
                           off_loop=off_loop)


def _route_endpoint(answer: Callable[[BodyRequest], dict[str, Any]], limit: int,
                    timeout: float, *, failure: str,
                    off_loop: bool = False) -> Callable[[Request], Awaitable[Response]]:
    deadlines = Deadlines(timeout)

    async def read(request: Request) -> dict[str, Any]:
        raw = await read_body(request, limit, deadlines)
        got = BodyRequest(request.headers.get("content-type"), raw,
                           request.headers.get(EXPLAIN_HEADER), request_id(request))
        if off_loop:
            return await run_in_threadpool(answer, got)
        return answer(got)

    return json_endpoint(read, failure=failure)


def _evaluation(service: PDPService) -> Callable[[BodyRequest], dict[str, Any]]:
    """``/access/v1/evaluation``: what :func:`_parsed` and a handler do, in one call."""
    settings = service.settings
    max_bytes, max_depth, explain = settings.max_body_bytes, settings.max_depth, settings.explain

    read = EvaluationReader(max_bytes=max_bytes, max_depth=max_depth)

    def answer(request: BodyRequest) -> dict[str, Any]:
        asked = request.explain
        return service.evaluation(
            read(request.content_type, request.body),
            explain=explain if asked is None else explanation_asked(asked, explain),
            request_id=request.request_id)

    return answer


def _evaluations(service: PDPService) -> Handler:
    explain = service.settings.explain

    def handle(body: Any, request: BodyRequest) -> dict[str, Any]:
        return service.evaluations(body, explain=explanation_asked(request.explain, explain),
                                   request_id=request.request_id)

    return handle


def _noop(request: BodyRequest) -> dict[str, Any]:
    return {"decision": True}


def decision_endpoints(service: PDPService) -> list[DecisionEndpoint]:
    """The AuthZEN decision endpoints (and the benchmark's no-op when enabled)."""
    settings = service.settings
    limit, timeout = settings.max_body_bytes, settings.request_timeout
    endpoints = [
        DecisionEndpoint(EVALUATION_PATH, "access_evaluation", _evaluation(service), limit,
                         timeout),
        DecisionEndpoint(EVALUATIONS_PATH, "access_evaluations",
                         _parsed(service, _evaluations(service)), limit, timeout),
    ]
    if settings.bench_noop == "on":  # the HTTP benchmark's baseline (benchmarks/)
        endpoints.append(DecisionEndpoint(BENCH_NOOP_PATH, "bench_noop", _noop, limit, timeout))
    return endpoints


def access_routes_of(routes: Sequence[Route]) -> list[Route]:
    """Those of ``routes`` that are this module's decision endpoints (and the no-op)."""
    return [r for r in routes if r.name in _NAMES]


def access_routes(service: PDPService) -> list[Route]:
    return [Route(e.path, _route_endpoint(e.answer, e.max_body_bytes, e.timeout,
                                          failure=e.failure),
                  methods=["POST"], name=e.name)
            for e in decision_endpoints(service)]
