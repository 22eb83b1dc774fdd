"""Optional ``tools/list`` filtering (``PDP_GATEWAY_FILTER_TOOLS``): the rule is
:mod:`pdp.coaz.visibility`'s. An error while deciding hides the tool (fail closed)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from pdp.coaz.visibility import PER_CALL, VISIBILITY_META, depends_on_arguments, probe_request
from pdp.errors import MappingError, UpstreamError

if TYPE_CHECKING:
    from pdp.gateway.authorize import Authorizer
    from pdp.gateway.sse import Event

__all__ = ["ToolFilter", "filtered_body", "filtered_event"]

log = logging.getLogger("pdp.gateway")


class ToolFilter:
    def __init__(self, authorizer: Authorizer, claims: Mapping[str, Any],
                 list_ids: list[Any], request_id: str | None = None) -> None:
        self.authorizer = authorizer
        self.claims = claims
        self.list_ids = list_ids
        self.request_id = request_id

    def applies(self, message: Any) -> bool:
        return (isinstance(message, dict) and "result" in message
                and message.get("id") in self.list_ids
                and isinstance(message["result"], dict)
                and isinstance(message["result"].get("tools"), list))

    async def message(self, message: dict[str, Any]) -> dict[str, Any]:
        """``message`` with its ``result.tools`` filtered (if it is a listed answer)."""
        if not self.applies(message):
            return message
        tools = [t for t in message["result"]["tools"] if isinstance(t, dict)]
        kept = [t for t in [await self._tool(t) for t in tools] if t is not None]
        return {**message, "result": {**message["result"], "tools": kept}}

    async def _tool(self, tool: dict[str, Any]) -> dict[str, Any] | None:
        authorizer = self.authorizer
        entry = authorizer.tools.catalog().get(str(tool.get("name")))
        if entry is None or entry.error is not None:
            return None
        if depends_on_arguments(entry):
            meta = tool.get("_meta")
            meta = dict(meta) if isinstance(meta, dict) else {}
            meta[VISIBILITY_META] = PER_CALL
            return {**tool, "_meta": meta}
        try:
            outcome = probe_request(entry, self.claims, authorizer.options)
            verdict = await authorizer.decider.decide(outcome.endpoint, outcome.body,
                                                      request_id=self.request_id)
        except (MappingError, UpstreamError) as exc:
            log.info("tools/list: %r hidden: %s", entry.name, exc.message)
            return None
        return tool if verdict.allowed else None


async def filtered_body(body: bytes, tool_filter: ToolFilter) -> bytes:
    """A JSON answer (one message or a batch) with the listed tools filtered."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if isinstance(parsed, list):
        return orjson.dumps([await tool_filter.message(m) if isinstance(m, dict) else m
                             for m in parsed])
    if isinstance(parsed, dict) and tool_filter.applies(parsed):
        return orjson.dumps(await tool_filter.message(parsed))
    return body


async def filtered_event(event: Event, tool_filter: ToolFilter) -> bytes:
    """One server-sent event framed again; a listed answer in it filtered."""
    data = event.data
    if event.event == "message" and data:
        try:
            message = orjson.loads(data)
        except orjson.JSONDecodeError:
            message = None
        if isinstance(message, dict) and tool_filter.applies(message):
            data = orjson.dumps(await tool_filter.message(message)).decode()
    frame = f"event: {event.event}\n"
    if event.id is not None:
        frame += f"id: {event.id}\n"
    frame += "".join(f"data: {line}\n" for line in data.split("\n")) + "\n"
    return frame.encode()
