"""Deciding one client-to-server MCP message at the gateway (docs/spec/coaz.md, "Dialect 2":
pass-through, default mappings, errors, enforcement; "Dialect 1": the SEP deny code).

:class:`Authorizer` adapts the gateway to the one COAZ flow
(:class:`~pdp.coaz_service.CoazCore`): a ``tools/call`` of a tool the catalogue does not know
first refreshes the catalogue (:class:`~pdp.gateway.catalog.ToolStore`), then the core maps
and decides the message with the validated token's claims and the client's request id, and
the result becomes ``None`` (forward it) or a :class:`Rejection` (answer this JSON-RPC message
instead).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pdp.coaz import MappingOptions
from pdp.coaz.denial import DenialStyle, error_message
from pdp.coaz_service import INTERNAL_ERROR, CoazCore, CoazResult, Decider
from pdp.errors import UpstreamError
from pdp.gateway.catalog import ToolStore

__all__ = ["Authorizer", "DenialStyle", "Rejection"]

log = logging.getLogger("pdp.gateway")

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


class Authorizer:
    def __init__(self, core: CoazCore, tools: ToolStore) -> None:
        self.core = core
        self.tools = tools

    @property
    def decider(self) -> Decider:
        return self.core.decider

    @property
    def options(self) -> MappingOptions:
        return self.core.options

    async def check(self, message: Any, claims: Mapping[str, Any],
                    fetch_tools: ToolsFetcher | None = None, *, request_id: str | None = None,
                    off_loop: bool = False) -> Rejection | None:
        """``off_loop``: map (and, with the in-process engine, decide) in a worker thread, so
        that a batch does not hold the event loop for its whole length."""
        if isinstance(message, dict) and message.get("method") == "tools/call":
            params = message.get("params")
            name = params.get("name") if isinstance(params, dict) else None
            if isinstance(name, str) and self.tools.needs_refresh(name):
                try:
                    await self.tools.refresh(fetch_tools or _no_upstream, name)
                except UpstreamError as exc:
                    log.warning("tools/call %r not decided: %s", name, exc.message)
                    text = "the tool list needed to authorize this call is unavailable"
                    return Rejection(INTERNAL_ERROR, text,
                                     error_message(message.get("id"), INTERNAL_ERROR, text)
                                     if "id" in message else None)
        result = await self.core.authorize(message, self.tools.catalog(), claims=claims,
                                           request_id=request_id, off_loop=off_loop)
        return None if result.allow else _rejection(message, result, self.core.style)


def _rejection(message: Any, result: CoazResult, style: DenialStyle) -> Rejection:
    assert result.error is not None
    code, text = result.error["code"], result.error["message"]
    if not isinstance(message, Mapping):  # not even a JSON-RPC message: answer with a null id
        return Rejection(code, text, error_message(None, code, text))
    return Rejection(code, text, result.answer(message, style), result.scopes)


async def _no_upstream() -> list[dict[str, Any]]:
    raise UpstreamError("no upstream to list the tools of")
