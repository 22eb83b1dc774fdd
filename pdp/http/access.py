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
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive

from pdp.authzen import parse_evaluation, parse_json_body
from pdp.authzen.metadata import EVALUATION_PATH, EVALUATIONS_PATH
from pdp.errors import BodyTooLarge, RequestTimeout
from pdp.http.deadlines import Deadlines
from pdp.http.responses import json_endpoint, json_response
from pdp.service import PDPService

__all__ = ["BENCH_NOOP_PATH", "EXPLAIN_HEADER", "access_routes", "access_routes_of",
           "body_endpoint", "read_body", "request_id", "wants_explanation"]

EXPLAIN_HEADER = "x-pdp-explain"
BENCH_NOOP_PATH = "/bench/noop"
_TRUE = {"1", "true", "yes", "on"}
_NAMES = frozenset({"access_evaluation", "access_evaluations", "bench_noop"})


async def read_body(request: Request, limit: int,
                    deadlines: Deadlines | None = None) -> bytes:
    """The body, refusing with 413 as soon as it grows past ``limit`` bytes, and with 408 if
    it has not all arrived by the deadline (with ``deadlines``; else the caller bounds it)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"request body is {declared} bytes; the limit is {limit}",
                           field="body")
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
            raise BodyTooLarge(f"request body exceeds the limit of {limit} bytes", field="body")
        if not message.get("more_body", False):
            if not chunks:
                return chunk  # the usual case: the whole body in one message
            chunks.append(chunk)
            return b"".join(chunks)
        chunks.append(chunk)


def wants_explanation(request: Request, default: bool) -> bool:
    value = request.headers.get(EXPLAIN_HEADER)
    return default if value is None else value.strip().lower() in _TRUE


def request_id(request: Request) -> str | None:
    """The ``X-Request-ID`` the middleware saw, for the decision log (None: none was sent)."""
    state: dict[str, Any] | None = request.scope.get("state")
    return None if state is None else state.get("request_id")


# (parsed JSON body, the request) → response body
Handler = Callable[[Any, Request], dict[str, Any]]


def body_endpoint(service: PDPService, handle: Handler, *, failure: str,
                  off_loop: bool = False) -> Callable[[Request], Awaitable[Response]]:
    """A POST endpoint of the AuthZEN API: the body is read and parsed (content type, size,
    JSON, nesting) and ``handle`` answers; errors are translated by
    :func:`~pdp.http.responses.json_endpoint` (an unexpected failure is a 500 saying
    ``failure``: the PEP denies). ``off_loop``: ``handle`` runs in a worker thread (work too
    long for the event loop)."""
    settings = service.settings
    deadlines = Deadlines(settings.request_timeout)

    async def answer(request: Request) -> dict[str, Any]:
        raw = await read_body(request, settings.max_body_bytes, deadlines)
        body = parse_json_body(request.headers.get("content-type"), raw,
                               max_bytes=settings.max_body_bytes,
                               max_depth=settings.max_depth)
        if off_loop:
            return await run_in_threadpool(handle, body, request)
        return handle(body, request)

    return json_endpoint(answer, failure=failure)


def _evaluation(service: PDPService) -> Handler:
    explain = service.settings.explain

    def handle(body: Any, request: Request) -> dict[str, Any]:
        return service.evaluation(parse_evaluation(body),
                                  explain=wants_explanation(request, explain),
                                  request_id=request_id(request))

    return handle


def _evaluations(service: PDPService) -> Handler:
    explain = service.settings.explain

    def handle(body: Any, request: Request) -> dict[str, Any]:
        return service.evaluations(body, explain=wants_explanation(request, explain),
                                   request_id=request_id(request))

    return handle


def _noop(service: PDPService) -> Callable[[Request], Awaitable[Response]]:
    limit = service.settings.max_body_bytes
    deadlines = Deadlines(service.settings.request_timeout)

    async def noop(request: Request) -> Response:
        await read_body(request, limit, deadlines)
        return json_response({"decision": True})

    return noop


def access_routes_of(routes: Sequence[Route]) -> list[Route]:
    """Those of ``routes`` that are this module's decision endpoints (and the no-op)."""
    return [r for r in routes if r.name in _NAMES]


def access_routes(service: PDPService) -> list[Route]:
    routes = [
        Route(EVALUATION_PATH, body_endpoint(service, _evaluation(service),
                                             failure="the decision could not be made"),
              methods=["POST"], name="access_evaluation"),
        Route(EVALUATIONS_PATH, body_endpoint(service, _evaluations(service),
                                              failure="the decision could not be made"),
              methods=["POST"], name="access_evaluations"),
    ]
    if service.settings.bench_noop == "on":  # the HTTP benchmark's baseline (benchmarks/)
        routes.append(Route(BENCH_NOOP_PATH, _noop(service), methods=["POST"],
                            name="bench_noop"))
    return routes
