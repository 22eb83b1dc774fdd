"""``pdp mcp schema``: a Cedar schema typing MCP tools' arguments, so that policies reading
them are type-checked."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pdp.cli.text import plain

__all__ = ["register"]


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "mcp", help="MCP helpers for policy authors", description=plain(__doc__))
    group = p.add_subparsers(dest="mcp_command", required=True, metavar="COMMAND")
    schema = group.add_parser("schema", help="print a .cedarschema typing MCP tools' arguments")
    source = schema.add_mutually_exclusive_group(required=True)
    source.add_argument("--tools", type=Path,
                        help="a tools/list result (or an array of tools) as JSON")
    source.add_argument("--from-upstream", action="store_true",
                        help="list the tools of the gateway's upstream (PDP_GATEWAY_UPSTREAM, "
                        "PDP_GATEWAY_UPSTREAM_TOKEN) with MCP 2026-07-28 stateless requests")
    schema.add_argument("-o", "--output", type=Path, help="write the schema here")
    schema.add_argument("--principal-type", default="identity",
                        help="principal entity type (default identity)")
    schema.add_argument("--resource-type", default="mcp_server",
                        help="resource entity type (default mcp_server)")
    schema.add_argument("--namespace", default="",
                        help="Cedar namespace (default none, as PDP_NAMESPACE)")
    schema.add_argument("--stub", type=Path, help="your own schema stub with @mcp_principal "
                        "and @mcp_resource entity types (instead of the type options)")
    schema.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pdp.errors import MappingError, PDPError, UpstreamError
    from pdp.gateway.catalog import load_tools_file
    from pdp.policies.mcp_schema import schema_for_tools

    try:
        tools = _upstream_tools() if args.from_upstream else load_tools_file(args.tools)
        stub = args.stub.read_text(encoding="utf-8") if args.stub else None
        text = schema_for_tools(tools, principal=args.principal_type,
                                resource=args.resource_type, namespace=args.namespace,
                                stub=stub)
    except (MappingError, UpstreamError, OSError, ValueError) as exc:
        message = exc.message if isinstance(exc, PDPError) else str(exc)
        print(f"pdp mcp schema: {message}", file=sys.stderr)
        return 2
    if args.output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        args.output.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    return 0


def _upstream_tools() -> list[dict[str, Any]]:
    import asyncio

    import httpx

    from pdp.gateway.upstream import HttpxTransport, Upstream
    from pdp.settings import Settings

    settings = Settings()
    url = settings.gateway_upstream
    if not url:
        raise ValueError("the upstream MCP server is not set (PDP_GATEWAY_UPSTREAM)")
    token = settings.gateway_upstream_token

    async def listed() -> list[dict[str, Any]]:
        timeout = settings.gateway_upstream_timeout
        transport = HttpxTransport(httpx.AsyncClient(timeout=timeout), url)
        upstream = Upstream(url, transport, timeout=timeout,
                            token=token.get_secret_value() if token else None)
        try:
            return await upstream.list_tools(session_id=None, protocol_version="2026-07-28")
        finally:
            await upstream.aclose()

    return asyncio.run(listed())
