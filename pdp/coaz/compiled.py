"""The normalised compiled mapping both dialects compile to (docs/spec/coaz.md, "Dialect 1",
"Dialect 2": subject anchoring).

A :class:`CompiledMapping` is a body template (an ``evaluation`` or ``evaluations`` request with
references in it) and a resolver that computes every reference of that template for one call in
one go (JSONPath for the SEP, one CEL program for the binding). This module is the shared type of
the dialects (:mod:`pdp.coaz.sep`, :mod:`pdp.coaz.binding`, :mod:`pdp.coaz.reference`), the tool
catalogue (:mod:`pdp.coaz.tools`), the method table (:mod:`pdp.coaz.methods`) and the dispatcher
(:mod:`pdp.coaz.mapping`); it imports none of them.

Subject anchoring (binding mappings): a missing ``subject`` or ``subject.id`` is filled from the
token's identity claim (:mod:`pdp.coaz.claims`), a missing ``subject.type`` is ``identity``; a
``subject.id`` that differs from the identity claim is allowed, logged as a warning and reported
in :attr:`Evaluate.warnings`. The SEP dialect sets the subject itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pdp.coaz.claims import resolve_identity
from pdp.coaz.options import MappingOptions
from pdp.coaz.outcome import Dialect, Evaluate
from pdp.coaz.request import check_depth, check_evaluation, check_evaluations, expose_act
from pdp.coaz.template import Obj, template_depth

__all__ = ["CompiledMapping", "Resolver", "deny_code_for"]

log = logging.getLogger("pdp.coaz.mapping")

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
