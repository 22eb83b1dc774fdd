"""The COAZ request and answers as ``/coaz/v1/map``, ``/coaz/v1/authorize`` and ``pdp eval``
read and write them (docs/spec/coaz.md; the endpoints' documentation in
:mod:`pdp.http.coaz`).

Request: ``{"message": {...}, "tools": [...]?, "token": "<JWT>"? | "claims": {...}?,
"server": "<resource id>"?}``. Answers: :func:`map_body` (``outcome`` ``pass``, ``evaluate``
with the AuthZEN request, ``deny`` with the JSON-RPC error, ``unauthenticated`` with the
``WWW-Authenticate`` value) and :func:`authorize_body` (the same with ``allow`` and the
decisions).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pdp.coaz import Evaluate
from pdp.coaz_service.core import CoazResult
from pdp.errors import InvalidField, MissingField

__all__ = ["CoazCall", "authorize_body", "map_body", "parse_call"]


@dataclass(frozen=True, slots=True)
class CoazCall:
    """One request: ``claims`` are trusted as validated (the caller checks who may send
    them); ``tools`` ``None``: the server has none (a ``tools/call`` names an unknown
    tool)."""

    message: Any
    tools: list[Any] | None
    server: str | None
    token: str | None = None
    claims: Mapping[str, Any] | None = None


def parse_call(body: Any, default_server: str | None) -> CoazCall:
    """The request in ``body`` (InvalidField / MissingField when it is not one)."""
    if not isinstance(body, dict):
        raise InvalidField("the body must be a JSON object", field="body")
    if "message" not in body:
        raise MissingField("message is required", field="message")
    server = body.get("server", default_server)
    if server is not None and (not isinstance(server, str) or not server):
        raise InvalidField("server must be a non-empty string", field="server")
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise InvalidField("tools must be an array of tool definitions", field="tools")
    if "token" in body and "claims" in body:
        raise InvalidField("send either token or claims, not both", field="claims")
    if "claims" in body:
        if not isinstance(body["claims"], dict):
            raise InvalidField("claims must be an object", field="claims")
        return CoazCall(body["message"], tools, server, claims=body["claims"])
    if "token" in body:
        token = body["token"]
        if not isinstance(token, str) or not token:
            raise InvalidField("token must be a non-empty string", field="token")
        return CoazCall(body["message"], tools, server, token=token)
    return CoazCall(body["message"], tools, server)


def _request(outcome: Evaluate, out: dict[str, Any]) -> None:
    if outcome.evaluation is not None:
        out["evaluation"] = outcome.evaluation
    else:
        out["evaluations"] = outcome.evaluations
    out["dialect"] = outcome.dialect
    if outcome.warnings:
        out["warnings"] = list(outcome.warnings)


def map_body(result: CoazResult) -> dict[str, Any]:
    """The ``/coaz/v1/map`` answer."""
    if result.kind == "unauthenticated":
        return {"outcome": "unauthenticated", "www_authenticate": result.www_authenticate}
    if result.kind == "pass":
        return {"outcome": "pass"}
    if result.kind == "deny":
        return {"outcome": "deny", "error": dict(result.error or {})}
    out: dict[str, Any] = {"outcome": "evaluate"}
    assert isinstance(result.mapped, Evaluate)
    _request(result.mapped, out)
    return out


def authorize_body(result: CoazResult) -> dict[str, Any]:
    """The ``/coaz/v1/authorize`` answer: ``error`` whenever ``allow`` is false."""
    out: dict[str, Any] = {"allow": result.allow, "outcome": result.kind,
                           "decisions": [dict(d) for d in result.decisions]}
    if isinstance(result.mapped, Evaluate):
        out["request"] = result.mapped.body
        out["endpoint"] = result.mapped.endpoint
        out["dialect"] = result.mapped.dialect
        if result.mapped.warnings:
            out["warnings"] = list(result.mapped.warnings)
    if result.www_authenticate is not None:
        out["www_authenticate"] = result.www_authenticate
    if not result.allow and result.error is not None:
        out["error"] = dict(result.error)
    return out
