"""The closures one ``decide`` call needs, shared across calls of one generation.

A generation is a (policy version, store version) pair: while neither changes, the closure of
a root (:class:`~pdp.engine.reach.Closure`) and the policy slice chosen for a (principal,
action, resource) stay the same, so they are memoised; a store without versions gets each
call its own.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import orjson

from pdp.caches import Memo, Recent
from pdp.engine.reach import Closure, Reach
from pdp.entities.model import EntityUid, StoredEntity
from pdp.entities.store import EntityStore
from pdp.policies.index import PolicySlice, SliceIndex

__all__ = ["ClosureMemo", "Closures", "Plan", "PlanKey"]

# (generation, root, depth) or, for a root with request properties, and the properties
_MemoKey = tuple[object, EntityUid, int] | tuple[object, EntityUid, int, bytes]
_OVERLAY_MEMO_BYTES = 1024  # request properties larger than this are not memoised
# (principal, action, resource, the principal's and the resource's request properties as
# canonical JSON), as translated; or, for a request without action properties, as sent (but
# for its context): (subject type, subject id, action name, resource type, resource id,
# properties)
PlanKey = tuple[EntityUid, EntityUid, EntityUid, bytes, bytes] | tuple[
    str, str, str, str, str, bytes, bytes]


_UNSEEN = object()
_SELECT_MEMO = 16_384  # (principal, action, resource) slice choices kept per generation
_PLAN_MEMO = 4096  # plans kept per generation (each holds a merged native store)


class Plan:
    """What preparing a request found that depends only on its roots and request properties:
    its policy slice (``None``: no policy's scope matches) and the closures of its entity
    slice. Within one generation, every request with the same roots and properties (and no
    entity references in its context) has the same plan. ``roots``: the translated
    principal, action and resource; ``native``: what the native evaluator reads for it
    besides the context (compiled policies, the slice's store, the roots as values), once
    built, with the action entities it was built with; ``first``: the prepared request at
    index 0 without context that follows the plan, once made (it is immutable but for
    what it derives lazily, and the same for every such request)."""

    __slots__ = ("chosen", "parts", "roots", "native", "first")

    def __init__(self, chosen: PolicySlice | None, parts: tuple[Closure, ...],
                 roots: tuple[EntityUid, EntityUid, EntityUid]) -> None:
        self.chosen = chosen
        self.parts = parts
        self.roots = roots
        self.native: tuple[Any, ...] | None = None
        self.first: Any = None  # the request with no context at index 0 that follows it


# The closures of stored entities shared across calls, keyed by generation (policy and store
# versions) and root (and request properties' content): entries of an older generation are
# never hit again and age out.
ClosureMemo = Recent[_MemoKey, Closure]


class Closures:
    """The closures one ``decide`` call needs: computed once per call, and shared across
    calls through the engine's memo when the store can say when it changes."""

    __slots__ = ("_store", "_provided", "_follow", "_tags", "_limit", "_memo", "_generation",
                 "_local", "_trusted", "_selected", "_plans")

    def __init__(self, store: EntityStore, provided: Mapping[EntityUid, StoredEntity],
                 follow: Collection[str], limit: int, memo: ClosureMemo | None,
                 generation: object, tags: bool = False,
                 trusted: frozenset[str] = frozenset()) -> None:
        self._trusted = trusted
        self._store = store
        self._provided = provided
        self._follow = follow
        self._tags = tags
        self._limit = limit
        self._memo = memo
        self._generation = generation
        self._local: dict[tuple[EntityUid, int], Closure] = {}  # (when not memoised)
        # the policy slices chosen for (principal, action, resource), when memoised
        self._selected: Memo[tuple[EntityUid, EntityUid, EntityUid], PolicySlice | None] | \
            None = Memo(_SELECT_MEMO) if memo is not None else None
        self._plans: Recent[PlanKey, Plan] | None = \
            Recent(_PLAN_MEMO) if memo is not None else None

    @property
    def memoised(self) -> bool:
        """Whether closures of stored entities are shared across calls (one generation)."""
        return self._memo is not None

    def plan(self, key: PlanKey) -> Plan | None:
        """The plan of a request with this key prepared before in this generation."""
        plans = self._plans
        return None if plans is None else plans[key]

    def keep_plan(self, key: PlanKey, plan: Plan) -> None:
        plans = self._plans
        if plans is not None:
            plans.keep(key, plan)

    def get(self, uid: EntityUid, depth: int,
            overlay: dict[str, Any] | None = None) -> Closure:
        if overlay is not None:
            return self._overlaid(uid, depth, overlay)
        memo = self._memo
        if memo is not None:
            found = memo[self._generation, uid, depth]
            if found is None:
                found = memo.keep((self._generation, uid, depth), self._compute(uid, depth, {}))
            return found
        key = (uid, depth)
        found = self._local.get(key)
        if found is None:
            found = self._local[key] = self._compute(uid, depth, {})
        return found

    def select(self, index: SliceIndex, principal: EntityUid, action: EntityUid,
               action_ancestors: Iterable[EntityUid] | None, resource: EntityUid,
               parts: Sequence[Closure]) -> PolicySlice | None:
        """``index.select`` with the ancestors the closures ``parts`` found (the action's
        are ``action_ancestors`` when the schema declares it), memoised within the
        generation when closures are: the ancestors of a uid (request properties never
        change them) are then the generation's."""
        memo = self._selected
        key = (principal, action, resource)
        if memo is not None:
            found = memo.get(key, _UNSEEN)
            if found is not _UNSEEN:
                return found  # type: ignore[return-value]
        lineages = {part.root: part.ancestors for part in parts}
        chosen = index.select(
            principal, lineages[principal],
            action, lineages[action] if action_ancestors is None else action_ancestors,
            resource, lineages[resource])
        if memo is not None:
            memo.keep(key, chosen)
        return chosen

    def _overlaid(self, uid: EntityUid, depth: int, overlay: dict[str, Any]) -> Closure:
        """A root carrying request properties: memoised by the properties' content (small
        ones only) within the generation, since the same content gives the same closure."""
        memo = self._memo
        content: bytes | None = None
        if memo is not None:
            try:
                content = orjson.dumps(overlay, option=orjson.OPT_SORT_KEYS)
            except TypeError:
                content = None
            if content is not None and len(content) <= _OVERLAY_MEMO_BYTES:
                found = memo[self._generation, uid, depth, content]
                if found is not None:
                    return found
            else:
                content = None
        found = self._compute(uid, depth, {uid: dict(overlay)})
        if memo is not None and content is not None:
            memo.keep((self._generation, uid, depth, content), found)
        return found

    def _compute(self, uid: EntityUid, depth: int,
                 overlays: dict[EntityUid, dict[str, Any]]) -> Closure:
        overlaid = bool(overlays)  # (the search consumes ``overlays``)
        reach = Reach(self._store, self._provided, self._follow, self._limit, overlays,
                       self._tags, self._trusted)
        reach.add(uid, depth)
        reach.run()
        return reach.closure(uid, overlaid)
