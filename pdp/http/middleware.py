"""The application's outermost ASGI middleware: what every request needs observed.

* ``X-Request-ID`` is echoed on every response (AuthZEN 1.0 section 10.1) and is the request id
  of every log line written while the request is handled (:data:`pdp.logs.REQUEST_ID`). A
  request without the header gets no invented id (the decision log generates one for its
  records).
* The decision endpoints' server time and response status are counted
  (:mod:`pdp.http.metrics`), from the request reaching the application to the response sent,
  so refusals by the layers inside (401, 413, 429) are counted too.

One layer with one ``send`` wrapper does both: each ASGI layer costs a coroutine and each
wrapper a closure on every request, a noticeable share of a cached decision.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pdp.http.metrics import EndpointStats, stats_by_path
from pdp.logs import REQUEST_ID

__all__ = ["ObservabilityMiddleware", "request_id_of"]

_HEADER = b"x-request-id"


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, stats: Mapping[str, EndpointStats]) -> None:
        self.app = app
        self._by_path = stats_by_path(stats)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        stats = self._by_path.get(scope["path"])
        if request_id is None and stats is None:
            await self.app(scope, receive, send)
            return
        status = 500  # no response started: the server answers 500

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if request_id is not None:
                    headers = [(k, v) for k, v in message.get("headers", []) if k != _HEADER]
                    headers.append((_HEADER, request_id))
                    message["headers"] = headers
            await send(message)

        token = None
        if request_id is not None:
            text = request_id.decode("latin-1")
            scope.setdefault("state", {})["request_id"] = text
            token = REQUEST_ID.set(text)
        started = time.perf_counter_ns()
        try:
            await self.app(scope, receive, observed_send)
        finally:
            if stats is not None:
                stats.observe(time.perf_counter_ns() - started, status)
            if token is not None:
                REQUEST_ID.reset(token)


def request_id_of(scope: Scope) -> bytes | None:
    """The request's ``X-Request-ID`` header (the first), if sent."""
    for name, value in scope["headers"]:
        if name == _HEADER:
            return value  # type: ignore[no-any-return]
    return None
