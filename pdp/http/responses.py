"""JSON responses and error bodies shared by the HTTP routes."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from pdp.errors import AuthenticationFailed, InsufficientScope, PDPError

__all__ = ["json_response", "error_response", "JSON"]

JSON = "application/json"


def json_response(body: Any, status: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=JSON, headers=headers)


def error_response(exc: PDPError) -> Response:
    headers: dict[str, str] = {}
    retry_after = getattr(exc, "retry_after", None)  # StoreUnavailable, timeouts, 429
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if isinstance(exc, AuthenticationFailed | InsufficientScope) and exc.challenge:
        headers["WWW-Authenticate"] = exc.challenge
    elif exc.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="authzen"'
    return json_response(exc.to_dict(), exc.status, headers)
