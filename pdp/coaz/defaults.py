"""Default mappings of the COAZ-MCP binding (docs/spec/coaz.md, "Dialect 2", the
default-mapping table).

Every method of the table gets
``subject {type: identity, id: $token.sub}`` (anchored: see :mod:`pdp.coaz.claims` for the
identity claim and client tokens), ``action {name: <method>}``, the resource of its row, and
a context of the row's extra member plus who else is involved:

* ``agent``: the OAuth client the token was issued to (``$token.?client_id``, else
  ``$token.?azp``; :attr:`MappingOptions.client_claims`), absent when the token names none;
* ``act``: the token's RFC 8693 ``act`` claim as issued (the party acting for the subject, its
  own ``act`` the party before it), absent when the token has none.

The rows:

* ``initialize`` (context ``protocol_version: $params.protocolVersion``), ``tools/list``,
  ``resources/list``, ``prompts/list``, ``tasks/list``, ``logging/setLevel`` (context
  ``level: $params.level``): ``{type: mcp_server, id: $token.aud}``;
* ``tools/call`` of a tool without mapping: ``{type: tool, id: $params.name}``;
* ``resources/read``, ``resources/subscribe``, ``resources/unsubscribe``:
  ``{type: resource, id: $params.uri}``;
* ``prompts/get``: ``{type: prompt, id: $params.name}``;
* ``completion/complete``: ``{type: prompt, id: $params.ref.name}`` when
  ``params.ref.type == 'ref/prompt'``, else ``{type: resource, id: $params.ref.uri}``;
* ``tasks/get``, ``tasks/result``, ``tasks/cancel``: ``{type: task, id: $params.taskId}``.

Beyond the binding's table, these methods have a default too (``{type: mcp_server, id:
$token.aud}``), so that a policy decides them instead of a blanket refusal:
``resources/templates/list`` (MCP since 2024-11-05), ``server/discover`` and
``subscriptions/listen`` (2026-07-28; clients probe ``server/discover`` first and fall back to
an older protocol when it is refused), ``roots/list``, ``sampling/createMessage`` (context
``max_tokens: $params.?maxTokens``) and ``elicitation/create`` (context ``mode``:
``$params.?mode``, ``form`` when absent). ``completion/complete`` adds
``argument_name: $params.?argument.?name`` to its context. A deployment's method table
(:mod:`pdp.coaz.methods`) may replace any of these rows.

A ``$params`` member the row needs that is absent (plain selection) is a mapping error; ids must
be non-empty strings. ``ping`` and ``notifications/*`` never get here (they pass); a method not
in the table has no default: :func:`default_request` returns ``None`` and the caller denies it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pdp.coaz.claims import client_of, resolve_audience, resolve_identity
from pdp.coaz.options import MappingOptions
from pdp.coaz.outcome import Evaluate
from pdp.coaz.request import check_depth, expose_act
from pdp.errors import MappingError

__all__ = ["DEFAULT_METHODS", "default_request", "tools_call_request"]

_ResourceOf = Callable[[Mapping[str, Any], Mapping[str, Any], MappingOptions], dict[str, Any]]


def _param(params: Mapping[str, Any], *path: str) -> Any:
    value: Any = params
    for i, key in enumerate(path):
        if not isinstance(value, Mapping) or key not in value:
            where = "params." + ".".join(path[: i + 1])
            raise MappingError(f"{where} is required by the default mapping", field=where)
        value = value[key]
    return value


def _id(params: Mapping[str, Any], *path: str) -> str:
    value = _param(params, *path)
    if not isinstance(value, str) or not value:
        where = "params." + ".".join(path)
        raise MappingError(f"{where} must be a non-empty string", field=where)
    return value


def _server(_: Mapping[str, Any], claims: Mapping[str, Any],
            options: MappingOptions) -> dict[str, Any]:
    return {"type": "mcp_server", "id": resolve_audience(claims, options)}


def _by(kind: str, *path: str) -> _ResourceOf:
    def resource(params: Mapping[str, Any], _: Mapping[str, Any],
                 __: MappingOptions) -> dict[str, Any]:
        return {"type": kind, "id": _id(params, *path)}
    return resource


def _completion(params: Mapping[str, Any], _: Mapping[str, Any],
                __: MappingOptions) -> dict[str, Any]:
    if _param(params, "ref", "type") == "ref/prompt":
        return {"type": "prompt", "id": _id(params, "ref", "name")}
    return {"type": "resource", "id": _id(params, "ref", "uri")}


_RESOURCES: dict[str, _ResourceOf] = {
    "initialize": _server,
    "tools/list": _server,
    "resources/list": _server,
    "prompts/list": _server,
    "tasks/list": _server,
    "tools/call": _by("tool", "name"),
    "resources/read": _by("resource", "uri"),
    "resources/subscribe": _by("resource", "uri"),
    "resources/unsubscribe": _by("resource", "uri"),
    "prompts/get": _by("prompt", "name"),
    "completion/complete": _completion,
    "logging/setLevel": _server,
    "tasks/get": _by("task", "taskId"),
    "tasks/result": _by("task", "taskId"),
    "tasks/cancel": _by("task", "taskId"),
    "resources/templates/list": _server,
    "server/discover": _server,
    "subscriptions/listen": _server,
    "roots/list": _server,
    "sampling/createMessage": _server,
    "elicitation/create": _server,
}

# method → (context key, params path, value when absent; MISSING_PARAM: leave it out)
_MISSING_PARAM = object()
_OPTIONAL_CONTEXT: dict[str, tuple[str, tuple[str, ...], Any]] = {
    "sampling/createMessage": ("max_tokens", ("maxTokens",), _MISSING_PARAM),
    "elicitation/create": ("mode", ("mode",), "form"),
    "completion/complete": ("argument_name", ("argument", "name"), _MISSING_PARAM),
}


def _optional_param(params: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = params
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return _MISSING_PARAM
        value = value[key]
    return value

_EXTRA_CONTEXT: dict[str, tuple[str, str]] = {
    "initialize": ("protocol_version", "protocolVersion"),
    "logging/setLevel": ("level", "level"),
}

#: The methods that have a default mapping.
DEFAULT_METHODS: frozenset[str] = frozenset(_RESOURCES)


def default_request(method: str, params: Mapping[str, Any], claims: Mapping[str, Any],
                    options: MappingOptions) -> Evaluate | None:
    """The default request for ``method``, or ``None`` if the method has no default mapping.
    Raises :class:`MappingError` when the message or the token lacks what the row needs."""
    resource_of = _RESOURCES.get(method)
    if resource_of is None:
        return None
    identity = resolve_identity(claims, options)
    context: dict[str, Any] = {}
    client = client_of(claims, options.client_claims)
    if client is not None:
        context["agent"] = client
    extra = _EXTRA_CONTEXT.get(method)
    if extra is not None:
        context[extra[0]] = _param(params, extra[1])
    optional = _OPTIONAL_CONTEXT.get(method)
    if optional is not None:
        value = _optional_param(params, optional[1])
        if value is _MISSING_PARAM:
            value = optional[2]
        if value is not _MISSING_PARAM and type(value) in (str, int, float, bool):
            context[optional[0]] = value
    body: dict[str, Any] = {
        "subject": identity.subject(),
        "action": {"name": method},
        "resource": resource_of(params, claims, options),
        "context": context,
    }
    deep = extra is not None and type(context[extra[0]]) in (dict, list)
    if claims.get("act") is not None:
        expose_act(body, claims)
        deep = deep or type(claims["act"]) in (dict, list)
    if deep:
        check_depth(body, options.max_depth, "params" if extra is None else "params." + extra[1])
    warnings = (identity.note,) if identity.note else ()
    return Evaluate(body, None, "default", warnings, options.deny_code_binding)


def tools_call_request(tool: str, claims: Mapping[str, Any],
                       options: MappingOptions) -> Evaluate:
    """The default request for calling ``tool``, which has no mapping of its own."""
    result = default_request("tools/call", {"name": tool}, claims, options)
    assert result is not None
    return result
