"""Default mappings of the COAZ-MCP binding (docs/spec/coaz.md, "Dialect 2", the
default-mapping table).

Every method of the table gets
``subject {type: identity, id: $token.sub}`` (anchored: see :mod:`pdp.coaz.claims` for the
identity claim and tokens without ``sub``), ``action {name: <method>}``, the resource of its
row, and ``context {agent: $token.?client_id}`` plus the row's extra context member:

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

A ``$params`` member the row needs that is absent (plain selection) is a mapping error; ids must
be non-empty strings. ``ping`` and ``notifications/*`` never get here (they pass); a method not
in the table has no default: :func:`default_request` returns ``None`` and the caller denies it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pdp.coaz.claims import resolve_audience, resolve_identity
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
}

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
    if "client_id" in claims:
        context["agent"] = claims["client_id"]
    extra = _EXTRA_CONTEXT.get(method)
    if extra is not None:
        context[extra[0]] = _param(params, extra[1])
    body: dict[str, Any] = {
        "subject": identity.subject(),
        "action": {"name": method},
        "resource": resource_of(params, claims, options),
        "context": context,
    }
    deep = extra is not None and type(context[extra[0]]) in (dict, list)
    if options.expose_act:
        expose_act(body, claims)
        deep = deep or type(claims.get("act")) in (dict, list)
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
