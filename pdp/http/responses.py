"""JSON responses, and the one place where an error becomes an HTTP answer.

:func:`error_answer` translates any exception raised while answering: a
:class:`~pdp.errors.PDPError` becomes its status and JSON body (with ``Retry-After`` and
``WWW-Authenticate`` where they apply; a 5xx is logged), anything else a logged 500
``internal_error`` saying what could not be done (the PEP denies). Every error answer is
``Cache-Control: no-store``. :func:`json_endpoint` wraps a handler returning a JSON body with
it (the AuthZEN, search and COAZ endpoints); the FastAPI routes (admin, metadata) reach it
through the application's exception handler.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from pdp.errors import AuthenticationFailed, InsufficientScope, PDPError

__all__ = ["JSON", "NO_STORE", "error_answer", "error_parts", "error_response",
           "json_endpoint", "json_response"]

log = logging.getLogger("pdp.http")

JSON = "application/json"
#: Decisions are answers for one moment: no cache on the way may keep or replay them.
NO_STORE = {"Cache-Control": "no-store"}

Endpoint = Callable[[Request], Awaitable[Response]]


def json_response(body: Any, status: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=JSON, headers=headers)


def _error_headers(exc: PDPError) -> dict[str, str]:
    headers: dict[str, str] = {}
    retry_after = getattr(exc, "retry_after", None)  # StoreUnavailable, timeouts, 429
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if isinstance(exc, AuthenticationFailed | InsufficientScope) and exc.challenge:
        headers["WWW-Authenticate"] = exc.challenge
    elif exc.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="authzen"'
    headers["Cache-Control"] = "no-store"
    return headers


def error_response(exc: PDPError) -> Response:
    return json_response(exc.to_dict(), exc.status, _error_headers(exc))


def error_parts(exc: Exception, method: str, path: str, *,
                failure: str = "the request failed") -> tuple[int, dict[str, str], bytes]:
    """Status, headers and JSON body answering ``exc``, raised while answering ``method``
    ``path`` (see the module); a server error is logged."""
    if isinstance(exc, PDPError):
        if exc.status >= 500:
            log.error("%s %s failed: %s", method, path, exc.message)
        headers = _error_headers(exc)
        return exc.status, headers, orjson.dumps(exc.to_dict())
    log.error("%s %s failed", method, path, exc_info=exc)
    return 500, dict(NO_STORE), orjson.dumps({"error": "internal_error", "message": failure})


def error_answer(request: Request, exc: Exception, *,
                 failure: str = "the request failed") -> Response:
    """The answer to ``exc`` raised while answering ``request`` (see the module)."""
    status, headers, body = error_parts(exc, request.method, request.url.path, failure=failure)
    return Response(body, status_code=status, media_type=JSON, headers=headers)


def json_endpoint(handle: Callable[[Request], Awaitable[Any]], *, failure: str) -> Endpoint:
    """An endpoint answering ``handle``'s JSON body (``no-store``), or its error translated
    by :func:`error_answer`; ``failure`` says what an unexpected error left undone."""

    async def endpoint(request: Request) -> Response:
        try:
            body = await handle(request)
        except Exception as exc:  # noqa: BLE001 - translated, and logged, in one place
            return error_answer(request, exc, failure=failure)
        return json_response(body, headers=NO_STORE)

    return endpoint
