"""AuthZEN 1.0 information model (section 5): Subject, Resource, Action, Context, Decision.

Immutable values parsed from the wire once; the rest of the PDP works with these, never with
raw JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["Entity", "Action", "EvaluationRequest", "Decision", "action", "entity",
           "evaluation_request"]


@dataclass(frozen=True, slots=True)
class Entity:
    """A Subject or a Resource: ``type`` + ``id`` + optional ``properties``."""

    type: str
    id: str
    properties: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Action:
    name: str
    properties: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class EvaluationRequest:
    """One access evaluation: the four SARC parts."""

    subject: Entity
    action: Action
    resource: Entity
    context: Mapping[str, Any] | None = None


def _setters(cls: type, names: tuple[str, ...]) -> tuple[Callable[[Any, Any], None], ...]:
    """The slot setters of ``cls``'s fields, which must be exactly ``names`` in order, and
    which the class must not check (a field added to the class without its builder below, or
    a ``__post_init__``, fails at import, not at run time)."""
    if tuple(f.name for f in fields(cls)) != names:
        raise TypeError(f"the builder of {cls.__name__} sets {names}")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"the builder of {cls.__name__} would skip its __post_init__")
    return tuple(cls.__dict__[name].__set__ for name in names)


# Builders for the request parsers' path, each equal in every respect to calling the class: a
# frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``, which is most
# of what parsing a request costs; these set the slots directly (_setters makes sure no class
# here has a ``__post_init__`` to skip).
_new = object.__new__
_entity_type, _entity_id, _entity_properties = _setters(Entity, ("type", "id", "properties"))
_action_name, _action_properties = _setters(Action, ("name", "properties"))
_subject, _action, _resource, _context = _setters(
    EvaluationRequest, ("subject", "action", "resource", "context"))


def entity(type_: str, id_: str, properties: Mapping[str, Any] | None) -> Entity:
    """``Entity(type_, id_, properties)``, built faster (see above)."""
    built = _new(Entity)
    _entity_type(built, type_)
    _entity_id(built, id_)
    _entity_properties(built, properties)
    return built


def action(name: str, properties: Mapping[str, Any] | None) -> Action:
    """``Action(name, properties)``, built faster (see above)."""
    built = _new(Action)
    _action_name(built, name)
    _action_properties(built, properties)
    return built


def evaluation_request(subject: Entity, action: Action, resource: Entity,
                       context: Mapping[str, Any] | None) -> EvaluationRequest:
    """``EvaluationRequest(subject, action, resource, context)``, built faster (see above)."""
    built = _new(EvaluationRequest)
    _subject(built, subject)
    _action(built, action)
    _resource(built, resource)
    _context(built, context)
    return built


@dataclass(frozen=True, slots=True)
class Decision:
    """The PDP's answer to one evaluation.

    ``reasons`` are the determining policies (their ``@id`` when they have one); ``errors``
    the evaluation errors Cedar reported; ``error`` a problem that prevented evaluation
    (always a deny); ``outcome`` says why: ``permit``, ``forbid`` (a forbid policy matched),
    ``no_permit`` (no permit policy matched) or ``error``.
    """

    allowed: bool
    outcome: str = "no_permit"
    reasons: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    error: Mapping[str, Any] | None = None

    def to_wire(self, explain: bool = False) -> dict[str, Any]:
        """The response body: exactly ``{"decision": b}`` unless reasons were asked for."""
        if self.error is not None:
            ctx: dict[str, Any] = {"error": dict(self.error)}
            if explain:
                ctx["outcome"] = self.outcome
            return {"decision": False, "context": ctx}
        if not explain:
            return {"decision": self.allowed}
        ctx = {"outcome": self.outcome, "reasons": list(self.reasons)}
        if self.errors:
            ctx["errors"] = list(self.errors)
        return {"decision": self.allowed, "context": ctx}
