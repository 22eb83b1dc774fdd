"""JSON responses and error bodies shared by the HTTP routes."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from pdp.errors import PDPError, StoreUnavailable

__all__ = ["json_response", "error_response", "JSON"]

JSON = "application/json"


def json_response(body: Any, status: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=JSON, headers=headers)


def error_response(exc: PDPError) -> Response:
    headers: dict[str, str] = {}
    if isinstance(exc, StoreUnavailable):
        headers["Retry-After"] = str(exc.retry_after)
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="pdp"'
    return json_response(exc.to_dict(), exc.status, headers)
