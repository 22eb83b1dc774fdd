"""A native evaluator for Cedar policies: Cedar's semantics, compiled to Python.

Cedar (through cedarpy) parses and checks policies and entities; this package compiles Cedar's
own JSON form of the policies into Python functions and evaluates them over plain Python data.
What it does not compile is evaluated by cedarpy, whole policy set at a time, and the answer
says which evaluator decided. See ``docs/cedar-evaluator.md``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pdp.cedar import _cedarpy, decode
from pdp.cedar.entities import EntitySet
from pdp.cedar.policyset import Answer, PolicySet
from pdp.errors import CedarInputError

__all__ = ["is_authorized", "PolicySet", "EntitySet", "CedarInputError", "Answer"]

_ERROR = re.compile(r"error while evaluating policy `(.*?)`: (.*)", re.DOTALL)


def is_authorized(request: Mapping[str, Any], policies: str | PolicySet,
                  entities: str | bytes | list[Any] | EntitySet) -> dict[str, Any]:
    """Cedar's decision for ``request`` (``principal``, ``action``, ``resource`` as
    ``{"type", "id"}``, ``context`` in Cedar's JSON value format).

    Returns ``{"decision": "allow"|"deny", "reasons": [policy ids], "errors": [{"policy",
    "message"}], "evaluator": "native"|"cedarpy"}``. Raises :class:`CedarInputError` with
    Cedar's message when Cedar rejects the policies, the entities or the request.
    """
    ps = policies if type(policies) is PolicySet else _policy_set(policies)
    es = entities if type(entities) is EntitySet else _entity_set(entities)
    if ps.native_reason is None and es.native_reason is None:
        try:
            parts = native_request(request)
        except decode.Unsupported:
            pass
        else:
            answer = ps.evaluate(*parts, es.store)
            return {"decision": "allow" if answer.allow else "deny",
                    "reasons": list(answer.reasons),
                    "errors": [{"policy": p, "message": m} for p, m in answer.errors],
                    "evaluator": "native"}
    return cedarpy_authorized(request, ps, es)


def _policy_set(policies: str | PolicySet) -> PolicySet:
    return policies if isinstance(policies, PolicySet) else PolicySet(policies)


def _entity_set(entities: str | bytes | list[Any] | EntitySet) -> EntitySet:
    return entities if isinstance(entities, EntitySet) else EntitySet(entities)


def native_request(request: Mapping[str, Any]) -> tuple[Any, Any, Any, dict[str, Any]]:
    """The request as native values; :class:`decode.Unsupported` for anything unusual (cedarpy
    then decides, and reports what Cedar thinks of it)."""
    if type(request) is not dict and not isinstance(request, Mapping):
        raise decode.Unsupported("the request is not an object")
    raw = request.get("context")
    context = decode.value(raw) if raw else {}
    if type(context) is not dict:
        raise decode.Unsupported("the context is not a record")
    return (decode.uid(request.get("principal")), decode.uid(request.get("action")),
            decode.uid(request.get("resource")), context)


def cedarpy_authorized(request: Mapping[str, Any], ps: PolicySet, es: EntitySet
                       ) -> dict[str, Any]:
    """The same answer, from cedarpy."""
    try:
        resp = _cedarpy.is_authorized(request, ps.cedar, es.cedar)
    except CedarInputError as e:
        raise CedarInputError(f"invalid request: {e.message}") from None
    diag = resp.get("diagnostics") or {}
    decision = resp.get("decision")
    if decision not in ("Allow", "Deny"):
        raise CedarInputError(f"invalid request: {'; '.join(diag.get('errors') or [])}")
    errors = []
    for text in diag.get("errors") or []:
        m = _ERROR.match(text)
        errors.append({"policy": m.group(1), "message": m.group(2)} if m
                      else {"policy": "", "message": text})
    return {"decision": decision.lower(), "reasons": list(diag.get("reason") or []),
            "errors": errors, "evaluator": "cedarpy"}
