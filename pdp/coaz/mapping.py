"""The normalised compiled mapping and the message dispatcher (docs/spec/coaz.md, "Dialect 1",
"Dialect 2": pass-through, default mappings, errors, subject anchoring).

Both dialects compile to one :class:`CompiledMapping`: a body template (an ``evaluation`` or
``evaluations`` request with references in it) and a resolver that computes every reference
of that template for one call in one go (JSONPath for the SEP, one CEL program for the
binding). :func:`map_message` turns one MCP JSON-RPC message into an :class:`Outcome`:

* JSON-RPC responses (no ``method``), ``ping`` and ``notifications/*`` pass;
* ``tools/call`` of a catalogued tool: the arguments are validated against the tool's
  ``inputSchema``, then the tool's mapping (or the default ``tools/call`` mapping for a tool
  without one) builds the request; a tool that is not in the catalogue, or whose definition
  failed to load, is a mapping error (MCP answers an unknown tool with ``-32602`` too);
* a method in the deployment's method table (:mod:`pdp.coaz.methods`) is passed, denied or
  mapped as the table says; other methods of the binding's table use their default mapping
  (:mod:`pdp.coaz.defaults`); any other method is denied with the binding's deny code;
* a malformed JSON-RPC message is answered with ``-32600`` (invalid request).

Subject anchoring (binding and default mappings): a missing ``subject`` or ``subject.id`` is
filled from the token's identity claim (:mod:`pdp.coaz.claims`), a missing ``subject.type`` is
``identity``; a ``subject.id`` that differs from the identity claim is allowed, logged as a
warning and reported in :attr:`Evaluate.warnings`. The SEP dialect sets the subject itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pdp.coaz.claims import resolve_identity
from pdp.coaz.defaults import default_request, tools_call_request
from pdp.coaz.options import MappingOptions
from pdp.coaz.outcome import Deny, Dialect, Evaluate, Outcome, Pass
from pdp.coaz.request import check_depth, check_evaluation, check_evaluations, expose_act
from pdp.coaz.template import Obj, template_depth
from pdp.errors import MappingError

if TYPE_CHECKING:
    from pdp.coaz.tools import ToolCatalog

__all__ = ["CompiledMapping", "Resolver", "map_message", "deny_code_for", "INVALID_REQUEST"]

log = logging.getLogger(__name__)

#: JSON-RPC "Invalid Request": the message is not a JSON-RPC request, notification or response.
INVALID_REQUEST = -32600

_CONTAINERS = (dict, list)

#: Computes the values of a mapping's references from the call's ``params`` and the claims.
Resolver = Callable[[Mapping[str, Any], dict[str, Any]], list[Any]]


def deny_code_for(dialect: Dialect, options: MappingOptions) -> int:
    """The JSON-RPC code of a denial of a request built by ``dialect``."""
    return options.deny_code_sep if dialect == "sep" else options.deny_code_binding


@dataclass(frozen=True, slots=True)
class CompiledMapping:
    """One tool's mapping, compiled once when the tool list is loaded. ``location`` is the
    place of the body template in the tool list (for messages)."""

    tool: str
    dialect: Literal["sep", "binding"]
    envelope: Literal["evaluation", "evaluations"]
    body: Obj
    resolve: Resolver
    location: str
    depth: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "depth", template_depth(self.body))

    def build(self, params: Mapping[str, Any], claims: dict[str, Any],
              options: MappingOptions) -> Evaluate:
        """The request for one call; raises :class:`MappingError`."""
        values = self.resolve(params, claims)
        body = self.body.render(values)
        warnings: list[str] = []
        if self.dialect == "binding":
            _anchor_subject(body, claims, options, warnings, self.tool)
        if self.envelope == "evaluation":
            check_evaluation(body, self.location)
        else:
            check_evaluations(body, self.location)
        # Only values from the call or the token can make a body deeper than its template.
        deep = self.depth > options.max_depth or any(type(v) in _CONTAINERS for v in values)
        if options.expose_act:
            expose_act(body, claims)
            deep = deep or type(claims.get("act")) in _CONTAINERS
        if deep:
            check_depth(body, options.max_depth, self.location)
        code = deny_code_for(self.dialect, options)
        if self.envelope == "evaluation":
            return Evaluate(body, None, self.dialect, tuple(warnings), code)
        return Evaluate(None, body, self.dialect, tuple(warnings), code)


def _anchor_subject(body: dict[str, Any], claims: Mapping[str, Any], options: MappingOptions,
                    warnings: list[str], tool: str) -> None:
    subject = body.get("subject")
    if subject is None:
        identity = resolve_identity(claims, options)
        body["subject"] = identity.subject()
        if identity.note:
            warnings.append(identity.note)
        _reorder(body)
        return
    if not isinstance(subject, dict):
        return  # reported by the shape check
    if "id" in subject:
        if subject["id"] != claims.get(options.identity_claim):
            message = (f"tool {tool!r}: subject.id does not come from the token's "
                       f"{options.identity_claim!r} claim")
            log.warning(message)
            warnings.append(message)
        if "type" in subject:
            return
        filled = {"type": "identity", "id": subject["id"]}
    else:
        identity = resolve_identity(claims, options)
        kind = identity.subject_type if identity.note else subject.get("type", "identity")
        filled = {"type": kind, "id": identity.subject_id}
        if identity.note:
            warnings.append(identity.note)
    filled.update((k, v) for k, v in subject.items() if k not in ("type", "id"))
    body["subject"] = filled


def _reorder(body: dict[str, Any]) -> None:
    """Put ``subject`` first again after filling it in, as in the spec's examples."""
    rest = {k: body.pop(k) for k in list(body) if k != "subject"}
    body.update(rest)


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
