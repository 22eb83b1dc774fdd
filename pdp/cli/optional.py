"""Command groups beyond the core ones (entities, links, decisions, gateway), in one place."""

from __future__ import annotations

from types import ModuleType

__all__ = ["modules"]


def modules() -> list[ModuleType]:
    from pdp.cli import decisions, entities, gateway, links, mcp

    return [entities, links, decisions, gateway, mcp]
