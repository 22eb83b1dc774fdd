"""COAZ: mapping MCP messages and validated access-token claims to AuthZEN requests
(docs/spec/coaz.md, both dialects, the default mappings and the open points).

Load a server's tools once with :meth:`ToolCatalog.from_tools_list`, then call
:func:`map_message` for every client-to-server message::

    catalog = ToolCatalog.from_tools_list(result["tools"], server_id="crm")
    outcome = map_message(message, claims, catalog, MappingOptions(server_resource=url))
    match outcome:
        case Pass(): ...                      # forward
        case Evaluate(): ...                  # ask the PDP with outcome.body at outcome.endpoint
        case Deny(code=code, message=msg): ...  # answer the JSON-RPC error
"""

from pdp.coaz.arguments import ArgumentValidator
from pdp.coaz.binding import BINDING_MAPPING_KEY
from pdp.coaz.claims import Identity, resolve_audience, resolve_identity
from pdp.coaz.compiled import CompiledMapping, deny_code_for
from pdp.coaz.defaults import DEFAULT_METHODS
from pdp.coaz.denial import DenialStyle
from pdp.coaz.mapping import INVALID_REQUEST, map_message
from pdp.coaz.options import MappingOptions
from pdp.coaz.outcome import Deny, Dialect, Evaluate, Outcome, Pass
from pdp.coaz.sep import SEP_MAPPING_KEY
from pdp.coaz.tools import ToolCatalog, ToolEntry
from pdp.coaz.verdict import Verdict

__all__ = [
    "ArgumentValidator",
    "BINDING_MAPPING_KEY",
    "CompiledMapping",
    "DEFAULT_METHODS",
    "DenialStyle",
    "Deny",
    "Dialect",
    "Evaluate",
    "INVALID_REQUEST",
    "Identity",
    "MappingOptions",
    "Outcome",
    "Pass",
    "SEP_MAPPING_KEY",
    "ToolCatalog",
    "ToolEntry",
    "Verdict",
    "deny_code_for",
    "map_message",
    "resolve_audience",
    "resolve_identity",
]
