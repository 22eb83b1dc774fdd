"""The decision endpoints' short path through the application.

FastAPI puts every request through its own layers (server errors, telemetry, an application
body limit, exception handlers, an exit stack, the router) around the application's
middleware. The AuthZEN decision endpoints need none of the inner ones: they read and bound
their own body, answer every error themselves (:func:`pdp.http.responses.json_endpoint`) and
use no dependencies. A ``POST`` to one of them therefore goes through the application's own
middleware (request id and metrics, authentication, rate limit, timeout: every check) and a
500 guard, straight to its endpoint; everything else takes FastAPI's full path.

The guard wraps no ``send``: if a layer fails, it tries to start a 500 response, which the
server refuses if one already started (then the failure is only re-raised, for the server
to log and close the connection), and the endpoint's response goes out as its two messages
without Starlette's response machinery.

Used only while FastAPI's telemetry is off (with it on, every request takes the full path so
that each is traced).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["LanedFastAPI"]

Endpoint = Callable[[Request], Awaitable[Response]]


class LanedFastAPI(FastAPI):
    """A FastAPI application whose ``lane`` routes (set before the first request) take the
    short path described above."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lane: Sequence[Route] = ()

    def build_middleware_stack(self) -> ASGIApp:
        full = super().build_middleware_stack()
        endpoints = {route.path: route.endpoint for route in self.lane
                     if route.methods == {"POST"}}
        if not endpoints:
            return full
        inner: ASGIApp = _Endpoints(endpoints)
        for cls, args, kwargs in reversed(self.user_middleware):
            inner = cls(inner, *args, **kwargs)
        handler = self.exception_handlers.get(500) or self.exception_handlers.get(Exception)
        if handler is not None or self.debug:  # Starlette's guard knows how to call them
            return _Lane(full, ServerErrorMiddleware(inner, handler=handler, debug=self.debug),
                         frozenset(endpoints))
        return _Lane(full, _Guard(inner), frozenset(endpoints))


class _Lane:
    __slots__ = ("_full", "_lane", "_paths")

    def __init__(self, full: ASGIApp, lane: ASGIApp, paths: frozenset[str]) -> None:
        self._full, self._lane, self._paths = full, lane, paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and scope["method"] == "POST"
                and scope["path"] in self._paths and not scope.get("root_path")):
            await self._lane(scope, receive, send)
        else:
            await self._full(scope, receive, send)


_FAILED_START = {"type": "http.response.start", "status": 500,
                 "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                             (b"content-length", b"21")]}
_FAILED_BODY = {"type": "http.response.body", "body": b"Internal Server Error"}


class _Guard:
    """A 500 when a layer fails before the response started; the failure is re-raised."""

    __slots__ = ("_app",)

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._app(scope, receive, send)
        except Exception:
            try:  # refused by the server once a response started: nothing more to send
                await send(dict(_FAILED_START))
                await send(dict(_FAILED_BODY))
            except Exception:  # noqa: BLE001, S110 - the original failure is what matters
                pass
            raise


class _Endpoints:
    __slots__ = ("_endpoints",)

    def __init__(self, endpoints: Mapping[str, Endpoint]) -> None:
        self._endpoints = endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self._endpoints[scope["path"]](Request(scope, receive, send))
        if type(response) is not Response:  # a subclass may stream or run a background task
            await response(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": response.status_code,
                    "headers": response.raw_headers})
        await send({"type": "http.response.body", "body": response.body})
