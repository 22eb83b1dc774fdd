"""What a client sees when a policy denies its message (docs/spec/coaz.md, "Dialect 2": errors, "a
deployment may instead return a denial as a tool result with ``isError: true``"; MCP
"Authorization": scope challenge; RFC 6750 §3.1 ``insufficient_scope``).

* The JSON-RPC error carries the deny code (``PDP_COAZ_DENY_CODE_*``, -32401 by default) and
  the decision's reason (``reason``/``reason_user``/``message`` of its context) or "Access
  denied". With explanation on (``PDP_EXPLAIN``) its ``data`` is ``{"reason": ...,
  "decisions": [...]}``: every decision of the message with its context, without
  ``reason_admin`` (which is for administrators, never for the client).
* With ``PDP_GATEWAY_DENY_AS_TOOL_RESULT`` a denied ``tools/call`` is answered with a tool
  result instead: ``{"content": [{"type": "text", "text": <reason>}], "isError": true}`` (and
  ``structuredContent`` = the error's ``data`` when explanation is on), which a model reads
  and may react to. Other methods, mapping errors and unavailable decisions stay errors.
* **Step-up.** When a denied decision names scopes the token lacks, and the message was sent
  alone, the answer is HTTP 403 with ``WWW-Authenticate: Bearer error="insufficient_scope",
  scope="<scopes>", resource_metadata=...``, so an MCP client can ask its authorization server
  for them. A decision names them with ``required_scope`` (or ``required_scopes``) in its
  context (a string of space-separated scopes, or a list), or — for this PDP's own policies —
  through a determining policy whose ``@id`` is ``insufficient_scope:<scopes>`` (the gateway
  asks its in-process engine for the determining policies even when explanation is off; they
  reach the client only with explanation on).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pdp.coaz.verdict import Verdict

__all__ = ["DENIED", "DenialStyle", "answer_to", "client_decisions", "denial_error",
           "error_message", "error_object", "missing_scopes"]

#: The message of a denial when the decision carries no reason.
DENIED = "Access denied"

_SCOPE_POLICY = "insufficient_scope:"
_SCOPE_KEYS = ("required_scope", "required_scopes")
# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,200}")
_MAX_SCOPES = 20
_HIDDEN = ("reason_admin",)


def _tokens(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [t for v in value if isinstance(v, str) for t in v.split()]
    return []


def missing_scopes(verdict: Verdict) -> tuple[str, ...]:
    """The scopes the denied decisions name (valid scope tokens only, deduplicated)."""
    found: dict[str, None] = {}
    for decision in verdict.decisions:
        if decision.get("decision") is True:
            continue
        context = decision.get("context")
        if not isinstance(context, Mapping):
            continue
        for key in _SCOPE_KEYS:
            for token in _tokens(context.get(key)):
                found[token] = None
        reasons = context.get("reasons")
        if isinstance(reasons, list):
            for reason in reasons:
                if isinstance(reason, str) and reason.startswith(_SCOPE_POLICY):
                    for token in reason[len(_SCOPE_POLICY):].split():
                        found[token] = None
    return tuple(t for t in found if _SCOPE_TOKEN.fullmatch(t))[:_MAX_SCOPES]


def client_decisions(verdict: Verdict) -> list[dict[str, Any]]:
    """The decisions as a client may see them (no ``reason_admin``)."""
    out: list[dict[str, Any]] = []
    for decision in verdict.decisions:
        item: dict[str, Any] = {"decision": decision.get("decision")}
        context = decision.get("context")
        if isinstance(context, Mapping):
            item["context"] = {k: v for k, v in context.items() if k not in _HIDDEN}
        out.append(item)
    return out


@dataclass(frozen=True, slots=True)
class DenialStyle:
    """How a policy's denial is shown to the client: ``explain`` adds the error's ``data``;
    ``as_tool_result`` answers a denied ``tools/call`` with a tool result."""

    explain: bool = False
    as_tool_result: bool = False


def error_object(code: int, message: str, data: Any = None) -> dict[str, Any]:
    """A JSON-RPC error object (JSON-RPC 2.0 section 5.1)."""
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return error


def error_message(request_id: Any, code: int, message: str,
                  data: Any = None) -> dict[str, Any]:
    """A JSON-RPC error response (``id`` echoed; ``null`` when unknown)."""
    return {"jsonrpc": "2.0", "id": request_id, "error": error_object(code, message, data)}


def denial_error(code: int, verdict: Verdict, explain: bool) -> dict[str, Any]:
    """The JSON-RPC error object of a message a policy denied: the decision's reason (or
    :data:`DENIED`); with ``explain``, ``data`` holds it and the client's view of the
    decisions."""
    text = verdict.reason or DENIED
    data = {"reason": text, "decisions": client_decisions(verdict)} if explain else None
    return error_object(code, text, data)


def answer_to(message: Mapping[str, Any], error: Mapping[str, Any], *, denied: bool,
              style: DenialStyle) -> dict[str, Any] | None:
    """The JSON-RPC answer carrying ``error`` (``None`` for a notification: nothing to
    answer). A ``tools/call`` a policy ``denied`` is answered as a tool result when the
    style says so; anything else is the error response."""
    if "id" not in message:
        return None
    if denied and style.as_tool_result and message.get("method") == "tools/call":
        result: dict[str, Any] = {"content": [{"type": "text", "text": error["message"]}],
                                  "isError": True}
        if "data" in error:
            result["structuredContent"] = error["data"]
        return {"jsonrpc": "2.0", "id": message.get("id"), "result": result}
    return {"jsonrpc": "2.0", "id": message.get("id"), "error": dict(error)}
