"""JSON-RPC 2.0 framing as MCP's Streamable HTTP transport uses it (MCP 2025-03-26 to
2026-07-28, "Transports": Streamable HTTP; JSON-RPC 2.0 sections 4-6).

Only what a gateway needs: tell requests, notifications and responses apart, parse a POST body
into messages (a batch only where the protocol version allows one), and build error responses
with the HTTP status the transport asks for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson

from pdp.authzen.body import load_json
from pdp.coaz.denial import error_message
from pdp.errors import RequestError

__all__ = [
    "PARSE_ERROR",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "INVALID_PARAMS",
    "INTERNAL_ERROR",
    "MODERN_VERSIONS",
    "BATCH_VERSIONS",
    "BodyError",
    "error_message",
    "error_status",
    "is_request",
    "parse_messages",
]

PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
INTERNAL_ERROR: Final = -32603

#: Protocol versions with the per-request envelope (no sessions, HTTP status per error code).
MODERN_VERSIONS: Final = frozenset({"2026-07-28"})
#: Protocol versions that allow JSON-RPC batches (2025-06-18 removed them). A request without
#: ``MCP-Protocol-Version`` is taken to be 2025-03-26, as the transport specifies.
BATCH_VERSIONS: Final = frozenset({"2024-11-05", "2025-03-26"})

# 2026-07-28: the HTTP status a JSON-RPC error is answered with; other codes are 200.
_MODERN_STATUS: Final[Mapping[int, int]] = {
    PARSE_ERROR: 400,
    INVALID_REQUEST: 400,
    INVALID_PARAMS: 400,
    METHOD_NOT_FOUND: 404,
}


class BodyError(Exception):
    """A POST body that is not a JSON-RPC message (or an allowed batch of them)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def is_request(message: Mapping[str, Any]) -> bool:
    """A request expects a response: it has a ``method`` and an ``id``."""
    return "method" in message and "id" in message


def parse_messages(raw: bytes, protocol_version: str | None, *,
                   max_batch: int = 100) -> tuple[list[Any], bool]:
    """The messages of a POST body and whether it was a batch (of at most ``max_batch``
    messages); raises :class:`BodyError`."""
    try:
        body = load_json(raw)
    except orjson.JSONDecodeError:
        raise BodyError(PARSE_ERROR, "Parse error: the body is not JSON") from None
    except RequestError as exc:  # a duplicate key, or nesting past any sane depth
        raise BodyError(INVALID_REQUEST, f"Invalid request: {exc.message}") from None
    if isinstance(body, dict):
        return [body], False
    if isinstance(body, list):
        version = protocol_version or "2025-03-26"
        if version not in BATCH_VERSIONS:
            raise BodyError(INVALID_REQUEST,
                            f"JSON-RPC batches are not allowed in protocol version {version}")
        if not body:
            raise BodyError(INVALID_REQUEST, "an empty batch is not a JSON-RPC request")
        if len(body) > max_batch:
            raise BodyError(INVALID_REQUEST, f"a JSON-RPC batch may hold at most {max_batch} "
                            f"messages (PDP_GATEWAY_MAX_BATCH); this one has {len(body)}")
        return body, True
    raise BodyError(INVALID_REQUEST, "the body must be a JSON-RPC message")


def error_status(code: int, protocol_version: str | None) -> int:
    """HTTP status for a lone JSON-RPC error: mapped per code from 2026-07-28, else 200."""
    if protocol_version in MODERN_VERSIONS:
        return _MODERN_STATUS.get(code, 200)
    return 200
