"""The one module that imports cedarpy: every other part of the PDP reaches Cedar through here.

It offers the handful of operations the PDP needs of Cedar: parsing, formatting and converting
policy text, schemas, validation, template linking, entity parsing, evaluation (whole and
partial). The objects it returns (policy sets, schemas, parsed entities) are opaque handles,
given back to these functions only. cedarpy's own errors (``ValueError`` and friends) become
:class:`~pdp.errors.CedarInputError` carrying Cedar's message unchanged, so callers catch the
PDP's exception tree and never cedarpy's; a change of cedarpy changes this module only.

Evaluation takes the extension's raw batch entry point where the build has it: cedarpy's public
``is_authorized_batch`` re-encodes contexts with ``json.dumps`` and wraps every answer in
Python objects; the extension function it wraps takes JSON strings and returns JSON strings,
which is what the engine has in hand anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import cedarpy
import orjson

from pdp.errors import CedarInputError

__all__ = [
    "authorize_batch",
    "entities_handle",
    "entities_to_json",
    "extend_entities",
    "format_policies",
    "is_authorized",
    "is_authorized_partial",
    "link_template",
    "link_templates",
    "parse_entities",
    "parse_policies",
    "parse_schema",
    "policies_from_json",
    "policies_to_json",
    "policy_set_from_json",
    "schema_from_json",
    "schema_text",
    "templates",
    "validate_policies",
]

# What cedarpy raises for input it rejects (its extension raises ValueError; its Python layer
# may raise the others on malformed arguments).
_CEDAR_ERRORS = (ValueError, TypeError, KeyError)

_raw_batch: Callable[..., list[str]] | None
try:  # the extension's batch entry point; the public wrapper is the fallback
    from cedarpy import _internal as _ext

    _raw_batch = _ext.is_authorized_batch
except (ImportError, AttributeError):  # pragma: no cover - depends on the cedarpy build
    _raw_batch = None


def _error(exc: BaseException) -> CedarInputError:
    return CedarInputError(str(exc))


# -- policies ---------------------------------------------------------------------------------


def parse_policies(text: str) -> Any:
    """Cedar policy text as a policy set handle."""
    try:
        return cedarpy.PolicySet.from_str(text)
    except _CEDAR_ERRORS as exc:
        raise _error(exc) from None


def policy_set_from_json(text: str, *, release_gil: bool = True) -> Any:
    """Cedar's JSON policy form as a policy set handle (``release_gil``: let other threads
    run while Cedar parses, as a reload beside live requests should)."""
    try:
        return cedarpy.PolicySet.from_json_str(text, release_gil=release_gil)
    except _CEDAR_ERRORS as exc:
        raise _error(exc) from None


def policies_to_json(text: str) -> str:
    """Cedar policy text in Cedar's JSON policy form (as text)."""
    try:
        return cedarpy.policies_to_json_str(text)
    except _CEDAR_ERRORS as exc:
        raise _error(exc) from None


def policies_from_json(text: str) -> str:
    """Cedar's JSON policy form back to Cedar policy text."""
    try:
        return cedarpy.policies_from_json_str(text)
    except _CEDAR_ERRORS as exc:
        raise _error(exc) from None


def format_policies(text: str, *, line_width: int, indent_width: int) -> str:
    """Cedar policy text as Cedar's formatter writes it."""
    try:
        formatted: str = cedarpy.format_policies(text, line_width=line_width,
                                                 indent_width=indent_width)
    except _CEDAR_ERRORS as exc:
        raise _error(exc) from None
    return formatted


def validate_policies(text: str, schema: Any) -> list[tuple[str, str]]:
    """Cedar's validation of policy text against a schema handle: ``(policy id, error)`` per
    problem found (none: the policies validate)."""
    try:
        result = cedarpy.validate_policies(text, schema, release_gil=True)
    except _CEDAR_ERRORS as exc:
        raise _error(exc) from None
    return [(e.policy_id, e.error) for e in result.errors]


def templates(policy_set: Any) -> list[dict[str, Any]]:
    """The templates of a policy set handle: ``{"id", "links": [{"id", ...}]}`` each."""
    found: list[dict[str, Any]] = policy_set.templates()
    return found


def link_template(policy_set: Any, template_id: str, new_id: str,
                  values: Mapping[str, Any]) -> Any:
    """A new policy set handle with template ``template_id`` linked as ``new_id`` (slot values:
    entity uids ``{"type", "id"}``); Cedar checks the link."""
    try:
        return policy_set.with_linked(template_id, new_id, dict(values))
    except _CEDAR_ERRORS as exc:
        raise _error(exc) from None


def link_templates(policy_set: Any, links: Sequence[Mapping[str, Any]]) -> Any:
    """A new policy set handle with every link ``{"template_id", "new_id", "values"}``."""
    try:
        return policy_set.with_linked_batch(list(links))
    except _CEDAR_ERRORS as exc:
        raise _error(exc) from None


# -- schemas ----------------------------------------------------------------------------------


def parse_schema(text: str) -> Any:
    """A schema in Cedar's schema syntax as a schema handle (the GIL released while parsed)."""
    try:
        return cedarpy.Schema.from_str(text, release_gil=True)
    except _CEDAR_ERRORS as exc:
        raise _error(exc) from None


def schema_from_json(text: str, *, release_gil: bool = True) -> Any:
    """A schema in Cedar's JSON schema format as a schema handle."""
    try:
        return cedarpy.Schema.from_json_str(text, release_gil=release_gil)
    except _CEDAR_ERRORS as exc:
        raise _error(exc) from None


def schema_text(schema: Any) -> str:
    """A schema handle in Cedar's schema syntax."""
    return str(schema)


# -- entities ---------------------------------------------------------------------------------


def parse_entities(text: str, schema: Any | None = None, *, release_gil: bool = False) -> Any:
    """Cedar's entity JSON (text) as a parsed entity set handle, checked against ``schema``
    when one is given. ``release_gil`` lets other threads run while Cedar parses, at the cost
    of waiting to get the GIL back: for reloads, never for the decision path."""
    try:
        return cedarpy.Entities.from_json_str(text, schema, release_gil=release_gil)
    except _CEDAR_ERRORS as exc:
        raise _error(exc) from None


def entities_to_json(entities: Any) -> str:
    """A parsed entity set as Cedar's entity JSON (text), in Cedar's normal form."""
    return str(entities)


def extend_entities(entities: Any, text: str) -> Any:
    """A parsed entity set with the entities of ``text`` (entity JSON) added, parsing only
    those."""
    try:
        return entities.with_added_json_str(text)
    except _CEDAR_ERRORS as exc:
        raise _error(exc) from None


def entities_handle(entities: Any) -> Any:
    """What :func:`authorize_batch` takes of a parsed entity set (without re-encoding it)."""
    return entities._inner


# -- evaluation -------------------------------------------------------------------------------


def authorize_batch(requests: Sequence[dict[str, Any]], policy_set: Any,
                    entities_json: Any) -> list[dict[str, Any]]:
    """Evaluate requests (contexts already JSON text) against one policy set handle and
    entity set (entity JSON text, or :func:`entities_handle` of a parsed set).

    Returns Cedar's answers as dicts: ``decision`` (Allow/Deny/NoDecision) and
    ``diagnostics``. Raises :class:`~pdp.errors.CedarInputError` when Cedar refuses the
    input; the engine turns that into a deny.
    """
    try:
        if _raw_batch is not None:
            return [orjson.loads(s) for s in _raw_batch(list(requests), policy_set,
                                                         entities_json, None, False)]
        results = cedarpy.is_authorized_batch(
            [dict(r, context=orjson.loads(r["context"])) for r in requests], policy_set,
            entities_json)
    except _CEDAR_ERRORS as exc:
        raise _error(exc) from None
    return [r._authz_resp for r in results]


def is_authorized(request: Mapping[str, Any], policy_set: Any, entities: Any
                  ) -> dict[str, Any]:
    """Cedar's answer to one request (context as a JSON value) as a dict: ``decision`` and
    ``diagnostics`` (``reason``, ``errors``)."""
    try:
        result = cedarpy.is_authorized(dict(request), policy_set, entities)
    except _CEDAR_ERRORS as exc:
        raise _error(exc) from None
    answer: dict[str, Any] = result._authz_resp
    return answer


def is_authorized_partial(request: Mapping[str, Any], policy_set: Any,
                          entities_json: str) -> dict[str, Any]:
    """Cedar's partial evaluation of ``request`` (a ``None`` principal or resource is
    unknown) as a dict: ``decision``, ``diagnostics`` and ``residuals`` (by policy id, in
    Cedar's JSON policy form)."""
    try:
        answer = cedarpy.is_authorized_partial(dict(request), policy_set, entities_json)
    except _CEDAR_ERRORS as exc:
        raise _error(exc) from None
    raw: dict[str, Any] = answer._authz_resp
    return raw

