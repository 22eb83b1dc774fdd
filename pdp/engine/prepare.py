"""A request made ready for evaluation: translated to Cedar, its policy slice chosen, its
entity slice gathered as the closures of its roots (see :mod:`pdp.engine.reach`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from pdp.authzen.model import EvaluationRequest
from pdp.engine.closures import Closures, Plan, PlanKey
from pdp.engine.reach import Closure, overlaid_last
from pdp.engine.translate import CedarRequest
from pdp.engine.version import VersionState
from pdp.entities.model import EntityUid, StoredEntity, entity_refs
from pdp.policies.index import PolicySlice

__all__ = ["Prepared", "prepare"]

_PLAN_PROPERTIES_BYTES = 1024  # requests with larger properties are prepared afresh
_NO_PROPERTIES = (b"", b"")  # the properties part of a plan key without any


class Prepared:
    """One request ready for evaluation: its context and its :class:`Plan` (its roots, its
    policy slice, its entity slice as the closures the slice is the union of, merged only
    when a batch or cedarpy needs it). The plan is the generation's, kept for every request
    that repeats its roots and properties, or this request's own."""

    __slots__ = ("index", "context", "plan", "_entities", "_absent")

    def __init__(self, index: int, context: dict[str, Any], plan: Plan) -> None:
        self.index = index
        self.context = context
        self.plan = plan
        self._entities: Mapping[EntityUid, StoredEntity] | None = None
        self._absent: frozenset[EntityUid] | None = None

    @property
    def principal(self) -> EntityUid:
        return self.plan.roots[0]

    @property
    def action(self) -> EntityUid:
        return self.plan.roots[1]

    @property
    def resource(self) -> EntityUid:
        return self.plan.roots[2]

    @property
    def slice(self) -> PolicySlice:
        chosen = self.plan.chosen
        assert chosen is not None  # (a request no policy's scope matches is never prepared)
        return chosen

    @property
    def parts(self) -> tuple[Closure, ...]:
        """The closures, request properties last: they win over a stored self."""
        return self.plan.parts

    @property
    def cedar(self) -> dict[str, Any]:
        """The request in the form cedarpy takes (context as JSON text)."""
        return {"principal": {"type": self.principal[0], "id": self.principal[1]},
                "action": {"type": self.action[0], "id": self.action[1]},
                "resource": {"type": self.resource[0], "id": self.resource[1]},
                "context": orjson.dumps(self.context).decode() if self.context else "{}"}

    @property
    def entities(self) -> Mapping[EntityUid, StoredEntity]:
        """The entity slice: the union of the closures."""
        found = self._entities
        if found is None:
            parts = self.parts
            if len(parts) == 1:
                found = parts[0].entities
            else:
                merged: dict[EntityUid, StoredEntity] = {}
                for part in parts:
                    merged.update(part.entities)
                found = merged
            self._entities = found
        return found

    @property
    def absent(self) -> frozenset[EntityUid]:
        """Uids the slice references but deliberately lacks."""
        found = self._absent
        if found is None:
            parts = self.parts
            found = parts[0].absent if len(parts) == 1 else Closure.absent_of(parts)
            self._absent = found
        return found


def prepare(i: int, req: EvaluationRequest, state: VersionState, closures: Closures,
            depth: int) -> Prepared | None:
    """Request ``i`` ready for evaluation: translated, its policy slice chosen and its
    entity slice gathered (``depth``: the entity depth); ``None`` when no policy's scope
    matches it (Cedar would deny it with no reasons). Raises what translation raises
    (TranslationError) or the store raises.

    What depends only on the request's roots and request properties (their translation, the
    policy slice and the closures) is its :class:`~pdp.engine.closures.Plan`, kept for the
    generation: a request that repeats them (and names no entity in its context) reuses it.
    A request without action properties is looked up as sent, before translation: but for
    its context, which is translated and checked on its own, its translation is then a
    function of what the key holds, and was made (and passed every check) when the plan was
    kept."""
    action = req.action
    bare = None if action.properties else _bare_key(req)
    if bare is not None:
        plan = closures.plan(bare)
        if plan is not None:
            translator = state.translator
            context: dict[str, Any] = {}
            if req.context or translator.checks_context:  # (a schema may require some)
                context = translator.context(action.name, req.context)
                if context and _refs(context, state, depth):
                    plan = None  # the context names entities the plan lacks
            if plan is not None:
                if plan.chosen is None:
                    return None
                if i == 0 and not context:  # (alone, or first of a batch: kept with the plan)
                    first: Prepared | None = plan.first
                    if first is None:
                        first = plan.first = Prepared(0, {}, plan)
                    return first
                return Prepared(i, context, plan)
    cr = state.translator.translate(req)
    refs = _refs(cr.context, state, depth)
    plan_key = None if refs else _plan_key(cr)
    if plan_key is not None:
        plan = closures.plan(plan_key)
        if plan is not None:
            if bare is not None:
                closures.keep_plan(bare, plan)
            return None if plan.chosen is None else Prepared(i, cr.context, plan)
    prepared = _prepare(i, cr, state, closures, refs)
    if plan_key is not None:
        plan = Plan(None, (), (cr.principal, cr.action, cr.resource)) if prepared is None \
            else prepared.plan
        closures.keep_plan(plan_key, plan)
        if bare is not None:
            closures.keep_plan(bare, plan)
    return prepared


def _refs(context: Mapping[str, Any], state: VersionState, depth: int) -> list[EntityUid]:
    """The entities a translated context names where the policies follow references."""
    refs: list[EntityUid] = []
    followed = state.slices.followed
    if context and depth >= 1 and followed:  # (most policy sets follow nothing in contexts)
        for key, value in context.items():
            if key in followed and isinstance(value, dict | list):
                entity_refs(value, refs)
    return refs


def _bare_key(req: EvaluationRequest) -> PlanKey | None:
    """A request without action properties as sent, but for its context (``None``:
    properties too large to be worth keeping, or not JSON)."""
    subject, resource = req.subject, req.resource
    held = _properties_json(subject.properties, resource.properties)
    if held is None:
        return None
    return (subject.type, subject.id, req.action.name, resource.type, resource.id, *held)


def _plan_key(cr: CedarRequest) -> PlanKey | None:
    """The request's roots and request properties (``None``: too large to be worth keeping,
    or not JSON)."""
    held = _properties_json(cr.principal_attrs, cr.resource_attrs)
    if held is None:
        return None
    return (cr.principal, cr.action, cr.resource, *held)


def _properties_json(principal: Mapping[str, Any] | None, resource: Mapping[str, Any] | None,
                     ) -> tuple[bytes, bytes] | None:
    """The two entities' properties as canonical JSON (``b""``: none), for a plan's key;
    ``None`` when they are larger than a plan is kept for, or not JSON."""
    if not principal and not resource:  # (the usual request: nothing to write)
        return _NO_PROPERTIES
    try:
        pj = orjson.dumps(principal, option=orjson.OPT_SORT_KEYS) if principal else b""
        rj = orjson.dumps(resource, option=orjson.OPT_SORT_KEYS) if resource else b""
    except TypeError:
        return None
    if len(pj) + len(rj) > _PLAN_PROPERTIES_BYTES:
        return None
    return pj, rj


def _prepare(i: int, cr: CedarRequest, state: VersionState, closures: Closures,
             refs: list[EntityUid]) -> Prepared | None:
    index = state.slices
    principal, action, resource = cr.principal, cr.action, cr.resource
    action_ancestors = state.action_ancestors.get(action)
    overlaid = bool(cr.principal_attrs or cr.resource_attrs)
    if overlaid:
        overlays: dict[EntityUid, dict[str, Any]] = {}
        if cr.principal_attrs:
            overlays[principal] = dict(cr.principal_attrs)
        if cr.resource_attrs:
            overlays.setdefault(resource, {}).update(cr.resource_attrs)
        roots = (principal, resource) if action_ancestors is not None else (
            principal, resource, action)  # a declared action is never read from the store
        uids = dict.fromkeys(roots)
        # request properties last: they win over a stored self
        parts = [closures.get(uid, 0) for uid in uids if uid not in overlays]
        parts.extend(closures.get(uid, 0, overlays[uid]) for uid in uids if uid in overlays)
    elif action_ancestors is not None and principal != resource:
        parts = [closures.get(principal, 0), closures.get(resource, 0)]
    else:
        roots = (principal, resource) if action_ancestors is not None else (
            principal, resource, action)
        parts = [closures.get(uid, 0) for uid in dict.fromkeys(roots)]
    if refs:
        parts.extend(closures.get(uid, 1) for uid in dict.fromkeys(refs))
    roots_end = len(parts)
    chosen = closures.select(index, principal, action, action_ancestors, resource, parts)
    if chosen is None:
        return None
    if chosen.literals:  # entities the chosen policies name in their conditions
        parts.extend(closures.get(uid, 0) for uid in chosen.literals)
    if overlaid and len(parts) > roots_end:
        parts.sort(key=overlaid_last)
    return Prepared(i, cr.context, Plan(chosen, tuple(parts), (principal, action, resource)))
