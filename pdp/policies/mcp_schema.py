"""A Cedar schema typing MCP tools' arguments, from their ``tools/list`` definitions, with the
Cedar project's MCP schema generator (``cedar-policy-mcp-schema-generator``).

For every tool the generator declares an action named after the tool, applying to the given
principal and resource types, whose context has ``input``: a record type of the tool's
``inputSchema`` (required and optional arguments, nested objects, arrays as sets). Policies
written against it are type-checked (``pdp check``) for the arguments they read.

How it fits the COAZ mappings: the requests it types are the ones a mapping produces when it
sends the action ``{name: <tool>}`` (the SEP's default action and the reference form's), the
chosen principal and resource types, and the whole arguments as ``context.input``, e.g. a
binding mapping ``{"evaluation": {"action": {"name": "<tool>"}, "resource": {"type":
"mcp_server", "id": "$token.aud"}, "context": {"input": "$params.arguments"}}}``. Mappings that
pick single arguments into their own resource or context members need those members declared
by hand; the generated types are then a starting point to copy from.

Without a namespace the schema is generated in a scratch namespace and moved to the empty one
(through the JSON schema format and cedarpy, which renders Cedar schema syntax).
"""

from __future__ import annotations

import json
from typing import Any

from pdp.cedar import _cedarpy
from pdp.errors import CedarInputError, MappingError

__all__ = ["schema_for_tools"]

_SCRATCH = "McpToolsSchema"


def _stub(namespace: str, principal: str, resource: str) -> str:
    return (f"namespace {namespace} {{\n"
            f"  @mcp_principal(\"{principal}\")\n  entity {principal};\n"
            f"  @mcp_resource(\"{resource}\")\n  entity {resource};\n}}\n")


def schema_for_tools(tools: list[dict[str, Any]], *, principal: str = "identity",
                     resource: str = "mcp_server", namespace: str = "",
                     stub: str | None = None) -> str:
    """The ``.cedarschema`` text for ``tools``; :class:`MappingError` if the generator refuses
    them. ``stub``: a schema stub of your own (``@mcp_principal``/``@mcp_resource``
    annotated entity types in a namespace) instead of one built from the other arguments."""
    from cedar_mcp_schema_generator import generate_schema

    scratch = namespace or _SCRATCH
    result = generate_schema(stub or _stub(scratch, principal, resource), tools,
                             config={"eraseAnnotations": True})
    if not result.get("isOk"):
        raise MappingError(f"the Cedar MCP schema generator refused the tools: "
                           f"{result.get('error')}", field="tools")
    if stub is not None or namespace:
        return str(result["schema"])
    document = json.loads(result["schemaJson"])
    moved = {"": document.pop(scratch, {}), **document}
    try:
        return _cedarpy.schema_text(_cedarpy.schema_from_json(json.dumps(moved),
                                                              release_gil=False))
    except CedarInputError as error:
        raise MappingError(f"the generated schema cannot be moved out of its namespace: "
                           f"{error}", field="tools") from None
