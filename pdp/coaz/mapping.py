"""The message dispatcher (docs/spec/coaz.md, "Dialect 1", "Dialect 2": pass-through, default
mappings, errors, subject anchoring).

Both dialects compile to one :class:`~pdp.coaz.compiled.CompiledMapping`.
:func:`map_message` turns one MCP JSON-RPC message into an :class:`Outcome`:

* JSON-RPC responses (no ``method``), ``ping`` and ``notifications/*`` pass;
* ``tools/call`` of a catalogued tool: the arguments are validated against the tool's
  ``inputSchema``, then the tool's mapping (or the default ``tools/call`` mapping for a tool
  without one) builds the request; a tool that is not in the catalogue, or whose definition
  failed to load, is a mapping error (MCP answers an unknown tool with ``-32602`` too);
* a method in the deployment's method table (:mod:`pdp.coaz.methods`) is passed, denied or
  mapped as the table says; other methods of the binding's table use their default mapping
  (:mod:`pdp.coaz.defaults`); any other method is denied with the binding's deny code;
* a malformed JSON-RPC message is answered with ``-32600`` (invalid request).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pdp.coaz.defaults import default_request, tools_call_request
from pdp.coaz.options import MappingOptions
from pdp.coaz.outcome import Deny, Evaluate, Outcome, Pass
from pdp.errors import MappingError

if TYPE_CHECKING:
    from pdp.coaz.tools import ToolCatalog

__all__ = ["map_message", "INVALID_REQUEST"]

log = logging.getLogger(__name__)

#: JSON-RPC "Invalid Request": the message is not a JSON-RPC request, notification or response.
INVALID_REQUEST = -32600


def _invalid(message: str) -> Deny:
    return Deny(INVALID_REQUEST, message)


def map_message(message: Mapping[str, Any], claims: Mapping[str, Any], catalog: ToolCatalog,
                options: MappingOptions | None = None) -> Outcome:
    """What to do with one client-to-server MCP message; ``claims`` are the validated token's."""
    options = options if options is not None else MappingOptions()
    if not isinstance(message, Mapping):
        return _invalid("not a JSON-RPC message")
    method = message.get("method")
    if method is None:
        if "result" in message or "error" in message:
            return Pass()
        return _invalid("a JSON-RPC message needs a method, a result or an error")
    if not isinstance(method, str):
        return _invalid("method must be a string")
    if method == "ping" or method.startswith("notifications/"):
        return Pass()
    params = message.get("params")
    if params is None:
        params = {}
    elif not isinstance(params, Mapping):
        return Deny(options.mapping_error_code, "params must be an object", field="params")
    token = claims if type(claims) is dict else dict(claims)
    rule = options.methods.get(method) if options.methods is not None else None
    try:
        if method == "tools/call":
            return _map_tool_call(params, token, catalog, options)
        if rule is not None:
            if rule.kind == "allow":
                return Pass()
            if rule.kind == "deny":
                return Deny(options.deny_code_binding, f"method {method!r} is not allowed")
            assert rule.mapping is not None
            return rule.mapping.build(params if type(params) is dict else dict(params), token,
                                      options)
        outcome = default_request(method, params, token, options)
    except MappingError as error:
        log.debug("mapping error for %s: %s", method, error.message)
        return Deny(options.mapping_error_code, error.message, field=error.field)
    except RecursionError:
        return Deny(options.mapping_error_code, "the message is nested too deeply to map")
    if outcome is None:
        return Deny(options.deny_code_binding, f"method {method!r} is not allowed")
    return outcome


def _map_tool_call(params: Mapping[str, Any], claims: dict[str, Any], catalog: ToolCatalog,
                   options: MappingOptions) -> Evaluate:
    if type(params) is not dict:
        params = dict(params)
    name = params.get("name")
    if not isinstance(name, str):
        raise MappingError("params.name must be a string naming the tool", field="params.name")
    arguments = params.get("arguments")
    if arguments is None:
        arguments = {}
        params = {**params, "arguments": arguments}
    elif not isinstance(arguments, dict):
        raise MappingError("params.arguments must be an object", field="params.arguments")
    entry = catalog.get(name)
    if entry is None:
        raise MappingError(f"unknown tool {name!r}", field="params.name")
    if entry.error is not None:
        raise MappingError(f"tool {name!r} cannot be called: its definition is invalid "
                           f"({entry.error.message})", field=entry.error.field)
    if entry.arguments is not None:
        entry.arguments.check(arguments)
    if entry.mapping is None:
        return tools_call_request(name, claims, options)
    return entry.mapping.build(params, claims, options)
