"""``pdp mcp schema``: a Cedar schema typing MCP tools' arguments (see
:mod:`pdp.coaz.cedar_schema`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "mcp", help="MCP helpers for policy authors", description=__doc__)
    group = p.add_subparsers(dest="mcp_command", required=True, metavar="COMMAND")
    schema = group.add_parser("schema", help="print a .cedarschema typing MCP tools' arguments")
    schema.add_argument("--tools", type=Path, required=True,
                        help="a tools/list result (or an array of tools) as JSON")
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
    from pdp.coaz.cedar_schema import schema_for_tools
    from pdp.errors import MappingError
    from pdp.gateway.catalog import load_tools_file

    try:
        tools = load_tools_file(args.tools)
        stub = args.stub.read_text(encoding="utf-8") if args.stub else None
        text = schema_for_tools(tools, principal=args.principal_type,
                                resource=args.resource_type, namespace=args.namespace,
                                stub=stub)
    except (MappingError, OSError) as exc:
        message = exc.message if isinstance(exc, MappingError) else str(exc)
        print(f"pdp mcp schema: {message}", file=sys.stderr)
        return 2
    if args.output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        args.output.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    return 0
