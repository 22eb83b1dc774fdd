"""The gateway's view of the upstream server's tools (docs/spec/coaz.md, "Dialect 1" and
"Dialect 2": a tool declares its mapping in the ``tools/list`` response; "Tool definitions").

Tool definitions reach the gateway in three ways:

* **learned** from every ``tools/list`` response it proxies (JSON or SSE bodies): each tool
  replaces the definition of the same name;
* **refreshed** when a ``tools/call`` names a tool the gateway has not seen (another replica
  proxied the list, the gateway restarted), after the upstream announced
  ``notifications/tools/list_changed`` on any session (the catalogue is shared), or when the
  definitions are older than ``ttl`` seconds (``PDP_GATEWAY_TOOLS_TTL``: a changed tool list
  whose notification did not pass through the gateway is picked up within it): the gateway
  lists the tools itself before deciding, so a call is never decided with the default mapping
  because a declared mapping was missed, nor with a mapping older than the TTL;
* **pinned** from a tools file (``PDP_GATEWAY_TOOLS_FILE``): the file is then the only source,
  re-read when it changes; proxied lists are not learned from.

The compiled :class:`~pdp.coaz.ToolCatalog` is rebuilt only when the definitions change.
Refreshes are single-flight, and after one that did not find a tool another is not made for
``min_refresh_interval`` seconds, so unknown tool names cannot make the gateway list the tools
on every call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

from pdp.coaz import ToolCatalog
from pdp.errors import MappingError, UpstreamError

__all__ = ["ToolStore", "load_tools_file", "tools_of"]

log = logging.getLogger("pdp.gateway")

Fetcher = Callable[[], Awaitable[list[dict[str, Any]]]]


def tools_of(document: Any) -> list[dict[str, Any]]:
    """The tools of a ``tools/list`` result (``{"tools": [...]}``) or of a bare array."""
    tools = document.get("tools") if isinstance(document, dict) else document
    if not isinstance(tools, list):
        raise MappingError("expected a tools/list result or an array of tools", field="tools")
    return [t for t in tools if isinstance(t, dict)]


def load_tools_file(path: Path) -> list[dict[str, Any]]:
    try:
        return tools_of(orjson.loads(path.read_bytes()))
    except (OSError, orjson.JSONDecodeError) as exc:
        raise MappingError(f"{path}: cannot read the tools file: {exc}") from None


class ToolStore:
    def __init__(self, server_id: str | None, *, tools_file: Path | None = None,
                 min_refresh_interval: float = 2.0, ttl: float = 300.0) -> None:
        self.server_id = server_id
        self.tools_file = tools_file
        self.min_refresh_interval = min_refresh_interval
        self.ttl = ttl
        self._learned_at = -float("inf")
        self._tools: dict[str, list[dict[str, Any]]] = {}
        self._catalog: ToolCatalog | None = None
        self._stale = False
        self._lock = asyncio.Lock()
        self._last_refresh = -float("inf")
        self._file_mtime: int | None = None
        self.refreshes = 0
        if tools_file is not None:
            self._load_file()

    # -- reading ----------------------------------------------------------------------------

    @property
    def pinned(self) -> bool:
        return self.tools_file is not None

    def knows(self, name: str) -> bool:
        return name in self._tools

    @property
    def stale(self) -> bool:
        return self._stale

    def catalog(self) -> ToolCatalog:
        if self._catalog is None:
            tools = [t for defs in self._tools.values() for t in defs]
            self._catalog = ToolCatalog.from_tools_list(tools, server_id=self.server_id)
        return self._catalog

    # -- learning -----------------------------------------------------------------------------

    def learn(self, tools: list[dict[str, Any]]) -> None:
        """Definitions from a proxied ``tools/list`` response (one page of it)."""
        if self.pinned:
            return
        changed = False
        for name, defs in _by_name(tools).items():
            if self._tools.get(name) != defs:
                self._tools[name] = defs
                changed = True
        self._learned_at = time.monotonic()  # the upstream's view as of now
        if changed:
            self._catalog = None
            log.info("learned %d tool definitions (%d known)", len(tools), len(self._tools))

    def replace(self, tools: list[dict[str, Any]]) -> None:
        """The complete list (a refresh)."""
        fresh = _by_name(tools)
        if fresh != self._tools:
            self._tools = fresh
            self._catalog = None
        self._stale = False
        self._learned_at = time.monotonic()

    def expired(self) -> bool:
        """The definitions are older than the TTL (only once some were learned)."""
        return (self.ttl > 0 and self._learned_at != -float("inf")
                and time.monotonic() - self._learned_at >= self.ttl)

    def mark_stale(self) -> None:
        """The upstream said its tools changed: refresh before the next call."""
        if not self.pinned:
            self._stale = True

    # -- refreshing --------------------------------------------------------------------------

    def needs_refresh(self, name: str) -> bool:
        if self.pinned:
            return not self.knows(name) and self._file_changed()
        if self._stale or self.expired():
            return True
        if self.knows(name):
            return False
        return time.monotonic() - self._last_refresh >= self.min_refresh_interval

    async def refresh(self, fetch: Fetcher, name: str) -> None:
        """Bring the definitions up to date before deciding a call of ``name``."""
        async with self._lock:
            if not self.needs_refresh(name):  # another call refreshed meanwhile
                return
            if self.pinned:
                self._load_file()
                return
            try:
                tools = await fetch()
            except UpstreamError:
                raise
            except Exception as exc:  # fail closed with a -32603, never a default mapping
                log.warning("listing the upstream tools failed: %s", exc)
                raise UpstreamError("the upstream tool list could not be loaded") from None
            self.replace(tools)
            self.refreshes += 1
            self._last_refresh = time.monotonic()
            log.info("refreshed the tool list from upstream: %d tools", len(self._tools))

    def _file_changed(self) -> bool:
        assert self.tools_file is not None
        try:
            return self.tools_file.stat().st_mtime_ns != self._file_mtime
        except OSError:
            return False

    def _load_file(self) -> None:
        assert self.tools_file is not None
        mtime = self.tools_file.stat().st_mtime_ns if self.tools_file.exists() else None
        tools = load_tools_file(self.tools_file)
        self._tools = _by_name(tools)
        self._catalog = None
        self._file_mtime = mtime


def _by_name(tools: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Definitions grouped by name; a name defined twice keeps both, and the catalog refuses
    it (an ambiguous definition must not be resolved by order)."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for tool in tools:
        name = tool.get("name")
        if isinstance(name, str):
            grouped.setdefault(name, []).append(tool)
    return grouped
