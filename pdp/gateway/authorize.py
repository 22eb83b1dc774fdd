"""Deciding one client-to-server MCP message (docs/spec/coaz.md, "Dialect 2": pass-through, default
mappings, errors, enforcement; "Dialect 1": the SEP deny code).

:class:`Authorizer` turns a message and the validated token's claims into ``None`` (forward it)
or a :class:`Rejection` (answer this JSON-RPC error instead): the COAZ mapper
(:func:`pdp.coaz.map_message`) builds the AuthZEN request from the tool catalogue, a
:class:`~pdp.gateway.decide.Decider` answers it, and only an all-``true`` answer forwards.
A ``tools/call`` of a tool the catalogue does not know first refreshes the catalogue
(:class:`~pdp.gateway.catalog.ToolStore`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pdp.coaz import Deny, Evaluate, MappingOptions, Pass, map_message
from pdp.errors import UpstreamError
from pdp.gateway.catalog import ToolStore
from pdp.gateway.decide import Decider, Verdict
from pdp.gateway.jsonrpc import INTERNAL_ERROR, INVALID_REQUEST, error_message

__all__ = ["Authorizer", "DenialStyle", "Rejection", "DENIED", "denial"]

log = logging.getLogger("pdp.gateway")
decisions_log = logging.getLogger("pdp.gateway.decisions")

#: The message of a denial when the decision carries no reason.
DENIED = "Access denied"

ToolsFetcher = Callable[[], Awaitable[list[dict[str, Any]]]]


@dataclass(frozen=True, slots=True)
class Rejection:
    """Do not forward; answer ``response`` (``None`` for a notification: nothing to answer).
    ``scopes``: the policy's reason names scopes the token lacks (answer HTTP 403
    ``insufficient_scope`` when this is the only message)."""

    code: int
    message: str
    response: dict[str, Any] | None
    scopes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DenialStyle:
    """How a policy's denial is shown to the client (see :mod:`pdp.gateway.denial`)."""

    explain: bool = False
    as_tool_result: bool = False


def _reject(message: Mapping[str, Any], code: int, text: str) -> Rejection:
    if "id" not in message:
        return Rejection(code, text, None)
    return Rejection(code, text, error_message(message.get("id"), code, text))


class Authorizer:
    def __init__(self, decider: Decider, tools: ToolStore, options: MappingOptions,
                 style: DenialStyle = DenialStyle()) -> None:
        self.decider = decider
        self.tools = tools
        self.options = options
        self.style = style

    async def check(self, message: Any, claims: Mapping[str, Any],
                    fetch_tools: ToolsFetcher | None = None, *,
                    off_loop: bool = False) -> Rejection | None:
        """``off_loop``: map (and, with the in-process engine, decide) in a worker thread, so
        that a batch does not hold the event loop for its whole length."""
        if not isinstance(message, dict):
            return Rejection(INVALID_REQUEST, "not a JSON-RPC message",
                             error_message(None, INVALID_REQUEST, "not a JSON-RPC message"))
        if message.get("method") == "tools/call":
            params = message.get("params")
            name = params.get("name") if isinstance(params, dict) else None
            if isinstance(name, str) and self.tools.needs_refresh(name):
                try:
                    await self.tools.refresh(fetch_tools or _no_upstream, name)
                except UpstreamError as exc:
                    log.warning("tools/call %r not decided: %s", name, exc.message)
                    return _reject(message, INTERNAL_ERROR,
                                   "the tool list needed to authorize this call is unavailable")
        catalog = self.tools.catalog()
        if off_loop:
            outcome = await asyncio.to_thread(map_message, message, claims, catalog,
                                              self.options)
        else:
            outcome = map_message(message, claims, catalog, self.options)
        if isinstance(outcome, Pass):
            return None
        if isinstance(outcome, Deny):
            decisions_log.info("deny %s: %s", _what(message), outcome.message)
            return _reject(message, outcome.code, outcome.message)
        assert isinstance(outcome, Evaluate)
        try:
            decide_now = getattr(self.decider, "decide_now", None)
            if off_loop and decide_now is not None:
                verdict = await asyncio.to_thread(decide_now, outcome.endpoint, outcome.body)
            else:
                verdict = await self.decider.decide(outcome.endpoint, outcome.body)
        except UpstreamError as exc:
            log.warning("%s not decided: %s", _what(message), exc.message)
            return _reject(message, INTERNAL_ERROR, "the authorization decision is unavailable")
        if outcome.warnings:
            decisions_log.info("%s: %s", _what(message), "; ".join(outcome.warnings))
        if verdict.allowed:
            decisions_log.debug("permit %s (%s) %s", _what(message), outcome.dialect,
                                _who(outcome.body))
            return None
        decisions_log.info("deny %s (%s) %s", _what(message), outcome.dialect,
                           _who(outcome.body))
        return denial(message, outcome.deny_code, verdict, self.style)


def denial(message: Mapping[str, Any], code: int, verdict: Verdict,
           style: DenialStyle) -> Rejection:
    """The answer to a message a policy denied (see :mod:`pdp.gateway.denial`)."""
    from pdp.gateway.denial import denial_answer, missing_scopes

    text = verdict.reason or DENIED
    scopes = missing_scopes(verdict)
    if "id" not in message:
        return Rejection(code, text, None, scopes)
    return Rejection(code, text, denial_answer(message, code, text, verdict, style), scopes)


async def _no_upstream() -> list[dict[str, Any]]:
    raise UpstreamError("no upstream to list the tools of")


def _who(body: Mapping[str, Any]) -> str:
    """Subject, client and actor of a request, for the decisions log line."""
    subject = body.get("subject")
    context = body.get("context")
    context = context if isinstance(context, Mapping) else {}
    act = context.get("act")
    actor = act.get("sub") if isinstance(act, Mapping) else None
    who = (f"{subject.get('type')}:{subject.get('id')}" if isinstance(subject, Mapping)
           else None)
    return f"subject={who!r} client={context.get('agent')!r} actor={actor!r}"


def _what(message: Mapping[str, Any]) -> str:
    method = message.get("method")
    params = message.get("params")
    if method == "tools/call" and isinstance(params, dict):
        return f"tools/call {params.get('name')!r}"
    return str(method)
