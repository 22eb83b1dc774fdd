"""ASGI middleware: echo ``X-Request-ID`` on every response (AuthZEN 1.0 section 10.1) and make
it the request id of every log line written while the request is handled
(:data:`pdp.logs.REQUEST_ID`). A request without the header gets no invented id (the decision
log generates one for its records)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pdp.logs import REQUEST_ID

__all__ = ["RequestIdMiddleware"]

_HEADER = b"x-request-id"


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        for name, value in scope["headers"]:
            if name == _HEADER:
                request_id = value
                break
        if request_id is None:
            await self.app(scope, receive, send)
            return
        text = request_id.decode("latin-1")
        scope.setdefault("state", {})["request_id"] = text

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k != _HEADER]
                headers.append((_HEADER, request_id))
                message["headers"] = headers
            await send(message)

        token = REQUEST_ID.set(text)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)
