"""ASGI middleware: ``PDP_REQUEST_TIMEOUT`` for requests that await work.

Everything until the response starts (reading the body, awaited work such as fetching a JWKS
for a COAZ token, admin database work in the thread pool) must finish within the timeout;
past it the request is answered 408 ``request_timeout`` if the client was still sending its
body, else 503 ``timeout`` with ``Retry-After`` (the PEP denies and retries). Work running in
a thread cannot be interrupted: the answer then waits for it to return.

Admin routes (``body_only`` prefixes) are bounded only until their body has arrived: a reload
of a large policy set or a bulk import may rightly take longer than a decision ever should, and
answering 503 while the work goes on in its thread would only hide its outcome.

The lean decision routes (evaluation, evaluations, search) are ``exempt``: their processing
is synchronous on the event loop (which is what makes them fast) and cannot be interrupted,
and their body read is bounded by :class:`pdp.http.deadlines.Deadlines` instead, at a
fraction of the cost of a timer per request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pdp.errors import PDPError, ProcessingTimeout, RequestTimeout
from pdp.http.responses import error_response

__all__ = ["TimeoutMiddleware"]

log = logging.getLogger("pdp.http")


class TimeoutMiddleware:
    def __init__(self, app: ASGIApp, timeout: float, exempt: Iterable[str] = (),
                 body_only: tuple[str, ...] = ()) -> None:
        self.app = app
        self.timeout = timeout
        self.exempt = frozenset(exempt)
        self.body_only = body_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        if self.body_only and scope["path"].startswith(self.body_only):
            await self.app(scope, self._bounded(receive), send)
            return
        started = False
        reading = False

        async def tracked_receive() -> Message:
            nonlocal reading
            reading = True
            message = await receive()
            reading = False  # not reset when cancelled: the timeout hit the body read
            return message

        try:
            async with asyncio.timeout(self.timeout) as deadline:
                async def tracked_send(message: Message) -> None:
                    nonlocal started
                    if message["type"] == "http.response.start":
                        started = True
                        deadline.reschedule(None)  # the response is under way: no timeout
                    await send(message)

                await self.app(scope, tracked_receive, tracked_send)
        except TimeoutError:
            if started or not deadline.expired():
                raise
            error: PDPError
            if reading:
                error = RequestTimeout.after(self.timeout)
            else:
                error = ProcessingTimeout(f"the request was not answered within "
                                          f"{self.timeout:g} s")
            log.warning("%s %s: %s", scope.get("method"), scope["path"], error.message)
            await error_response(error)(scope, receive, send)

    def _bounded(self, receive: Receive) -> Receive:
        """``receive`` whose messages must all arrive within the timeout (408 otherwise, as
        :class:`RequestTimeout` raised where the route reads its body)."""
        loop = asyncio.get_running_loop()
        until = loop.time() + self.timeout

        async def bounded_receive() -> Message:
            try:
                async with asyncio.timeout_at(until):
                    return await receive()
            except TimeoutError:
                raise RequestTimeout.after(self.timeout) from None

        return bounded_receive
