"""The decision endpoints' short path through the application.

FastAPI puts every request through its own layers (server errors, telemetry, an application
body limit, exception handlers, an exit stack, the router) around the application's
middleware. The AuthZEN decision endpoints need none of the inner ones: they read and bound
their own body, answer every error themselves (:func:`pdp.http.responses.json_endpoint`) and
use no dependencies. A ``POST`` to one of them therefore goes through the application's own
middleware (request id and metrics, authentication, rate limit, timeout: every check) and a
500 guard, straight to its endpoint; everything else takes FastAPI's full path.

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
        return _Lane(full, ServerErrorMiddleware(inner, handler=handler, debug=self.debug),
                     frozenset(endpoints))


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


class _Endpoints:
    __slots__ = ("_endpoints",)

    def __init__(self, endpoints: Mapping[str, Endpoint]) -> None:
        self._endpoints = endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self._endpoints[scope["path"]](Request(scope, receive, send))
        await response(scope, receive, send)
