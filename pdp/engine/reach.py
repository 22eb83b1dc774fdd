"""One request's entity slice: the search from its roots, and the closures it yields.

The entity slice is what the chosen policies can observe, and nothing else. Its roots are the
principal, the resource and the action (read from the store when no schema declares the
actions; a schema's action groups are given to every call), the entities the context
references and the entities the chosen policies name in their conditions. From a root, the
search follows every parent (ancestors are always complete, so ``in`` is exact) and the
entity references held in attributes the policies *dereference* (read through: ``.a.b``,
``.a has b``, ``.a in ...``; see ``_DataFlow`` in :mod:`pdp.policies.index`), up to
``entity_depth`` references away (an entity reached several ways counts at its shortest
distance). An ancestor that is not itself reachable as a value and has no parents is left
out: Cedar counts a parent as an ancestor whether or not its entity is present, and nothing
else about it can be observed. Beyond the depth limit a reference dangles, and reading
through it is a Cedar error for that policy, never a silent success.

The slice is the union of per-root closures (:class:`Closure`), memoised per (policy
version, store version) by :mod:`pdp.engine.closures` and, from their second use, kept parsed
by Cedar: a request then costs Cedar only the parse of the entities not already parsed
(Cedar's entity parsing, several microseconds an entity, is most of the cost of a decision).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from pdp.cedar._cedarpy import parse_entities
from pdp.cedar.runtime import Store
from pdp.entities.model import EntityUid, StoredEntity, entity_refs
from pdp.entities.store import EntityStore
from pdp.errors import CedarInputError

__all__ = ["Closure", "Reach", "StoreBuilder", "ancestors_of", "entities_json", "entity_json",
           "overlaid_last"]

_NOTHING: frozenset[EntityUid] = frozenset()

# builds the native evaluator's store of some entities and the action entities (None: it
# does not read one of their values)
StoreBuilder = Callable[[Mapping[EntityUid, StoredEntity], tuple[bytes, ...]], Store | None]


class Reach:
    """One request's entity slice, grown breadth-first from the roots it is given.

    An entity is reached as a *value* (a root, or a reference in an attribute the policies
    dereference, up to ``limit`` references away) or only as an *ancestor*. Both are read
    from the store, and parents are always followed, so ancestry is complete. Only a value's
    attributes can be read by a policy, so references are followed from values only; and an
    ancestor that is not a value and has no parents of its own is left out of what Cedar gets
    (Cedar counts a parent as an ancestor whether or not the parent entity is present).
    ``provided`` entities (the schema's actions) are given to Cedar separately and never read
    from the store. A value reached again at a shorter distance is expanded again, so the
    result does not depend on the order of discovery.
    """

    __slots__ = ("_store", "_provided", "_follow", "_tags", "_limit", "_overlays", "_depth_of",
                 "out", "_requested", "_referenced", "_to_fetch", "_to_expand", "_trusted")

    def __init__(self, store: EntityStore, provided: Mapping[EntityUid, StoredEntity],
                 follow: Collection[str], limit: int,
                 overlays: dict[EntityUid, dict[str, Any]], tags: bool = False,
                 trusted: frozenset[str] = frozenset()) -> None:
        self._trusted = trusted
        self._store = store
        self._provided = provided
        self._follow = follow
        self._tags = tags  # follow references held in tags too
        self._limit = limit
        self._overlays = overlays
        self._depth_of: dict[EntityUid, int] = {}  # values, at their shortest distance
        self.out: dict[EntityUid, StoredEntity] = {}  # every entity found (values, ancestors)
        self._requested: set[EntityUid] = set()
        self._referenced: set[EntityUid] = set()
        self._to_fetch: list[EntityUid] = []
        self._to_expand: list[EntityUid] = []

    def add(self, uid: EntityUid, depth: int) -> None:
        """Reach ``uid`` as a value, ``depth`` references from a root."""
        self._referenced.add(uid)
        if uid in self._provided:
            return
        known = self._depth_of.get(uid)
        if known is not None and known <= depth:
            return
        self._depth_of[uid] = depth
        if uid in self.out:
            self._to_expand.append(uid)  # (again, closer): its references go further
        elif uid not in self._requested:
            self._requested.add(uid)
            self._to_fetch.append(uid)

    def _ancestor(self, uid: EntityUid) -> None:
        self._referenced.add(uid)
        if uid in self._requested or uid in self._provided:
            return
        self._requested.add(uid)
        self._to_fetch.append(uid)

    def run(self) -> None:
        out, depth_of, overlays = self.out, self._depth_of, self._overlays
        follow, limit = self._follow, self._limit
        while self._to_fetch or self._to_expand:
            if self._to_fetch:
                wanted, self._to_fetch = self._to_fetch, []
                fetched = self._store.get_many(wanted)
                for uid in wanted:
                    ent = fetched.get(uid)
                    extra = overlays.pop(uid, None) if overlays else None
                    if extra is not None:  # request-carried properties of a root
                        ent = self._overlaid(uid, ent, extra)
                    if ent is not None:
                        out[uid] = ent
                        for parent in ent.parents:  # ancestors: always complete
                            self._ancestor(parent)
                        if uid in depth_of:
                            self._to_expand.append(uid)
            expanding, self._to_expand = self._to_expand, []
            for uid in expanding:
                ent = out[uid]
                tags = ent.tags if self._tags else None
                if not ent.attrs and not tags:
                    continue
                refs: list[EntityUid] = []
                for name, value in ent.attrs.items():
                    if name in follow and isinstance(value, dict | list):
                        entity_refs(value, refs)
                if tags:
                    for value in tags.values():
                        if isinstance(value, dict | list):
                            entity_refs(value, refs)
                depth = depth_of[uid]
                if depth < limit:
                    for ref in refs:
                        self.add(ref, depth + 1)
                else:
                    self._referenced.update(refs)

    def _overlaid(self, uid: EntityUid, ent: StoredEntity | None,
                  extra: dict[str, Any]) -> StoredEntity:
        """A root with request properties. The store is authoritative: a stored entity
        takes only the properties the PEP is trusted with (PDP_TRUSTED_PROPERTIES); an
        entity the store does not hold is described by the request alone."""
        if ent is None:
            return StoredEntity.build(uid[0], uid[1], extra, ())
        trusted = self._trusted
        allowed = {k: v for k, v in extra.items()
                   if k in trusted or f"{uid[0]}.{k}" in trusted} if trusted else {}
        if not allowed:
            return ent
        return StoredEntity.build(uid[0], uid[1], {**ent.attrs, **allowed}, ent.parents,
                                  ent.tags)

    def cedar_entities(self) -> dict[EntityUid, StoredEntity]:
        """What Cedar needs: the values, and the ancestors that have ancestors themselves."""
        depth_of = self._depth_of
        return {uid: e for uid, e in self.out.items() if uid in depth_of or e.parents}

    def closure(self, root: EntityUid, overlaid: bool) -> Closure:
        return Closure(root, overlaid, self.cedar_entities(), frozenset(self.out),
                        self.absent(), tuple(ancestors_of(root, self.out, self._provided)))

    def absent(self) -> frozenset[EntityUid]:
        """Uids the slice references (or was asked for) but does not include."""
        referenced = self._referenced
        if not referenced:
            return frozenset()
        return frozenset(u for u in referenced if u not in self.out and u not in self._provided)


@dataclass(frozen=True, slots=True, eq=False)
class Closure:
    """The entities reachable from one root (a request's principal, resource, action,
    context reference or policy literal) at one starting distance.

    A request's slice is the union of its roots' closures: an entity is within the limit of
    some root exactly when its shortest distance from any root is within the limit, so the
    union equals one search from all roots at once. Closures of stored entities are
    memoised per (policy version, store version); a root carrying request properties is
    computed afresh.
    """

    root: EntityUid
    overlaid: bool
    entities: Mapping[EntityUid, StoredEntity]  # what Cedar needs from here
    found: frozenset[EntityUid]  # every entity found (values and ancestors)
    absent: frozenset[EntityUid]  # referenced here, not found here
    ancestors: tuple[EntityUid, ...]  # the root's
    _parsed: list[Any] = field(default_factory=list)  # [uses, Cedar's parsed form or None]
    _native: list[Any] = field(default_factory=list)  # [actions, native Store or None]

    def native_store(self, build: StoreBuilder, actions_json: tuple[bytes, ...]
                     ) -> Store | None:
        """These entities and the action entities as the native evaluator reads them, built
        once per closure (``None``: a value it does not read)."""
        cell = self._native
        if cell and cell[0] is actions_json:
            found: Store | None = cell[1]
            return found
        found = build(self.entities, actions_json)
        cell[:] = [actions_json, found]
        return found

    def parsed(self) -> Any | None:
        """These entities as a parsed Cedar entity set (:func:`pdp.cedar._cedarpy.parse_entities`),
        from the second use on.

        Cedar parses entity JSON at several microseconds an entity on every call; a parsed
        set is reused at no cost, and extended with the rest of a request's entities by
        parsing only those. Closures used once are not worth parsing separately."""
        cell = self._parsed
        if not cell:
            cell[:] = [1, None]
            return None
        if cell[1] is None:
            cell[0] += 1
            if cell[0] < 2 or not self.entities:
                return None
            try:
                cell[1] = parse_entities(entities_json((), self.entities))
            except CedarInputError:
                cell[0] = -(1 << 30)  # never again
                return None
        return cell[1]

    @staticmethod
    def absent_of(parts: Sequence[Closure]) -> frozenset[EntityUid]:
        if not any(p.absent for p in parts):
            return _NOTHING
        referenced = frozenset().union(*(p.absent for p in parts))
        return referenced.difference(*(p.found for p in parts))


def overlaid_last(part: Closure) -> bool:
    return part.overlaid  # a root with request properties wins over its stored self


def entities_json(first: Iterable[bytes], entities: Mapping[EntityUid, StoredEntity]) -> str:
    parts = [*first, *(entity_json(e) for e in entities.values())]
    return (b"[" + b",".join(parts) + b"]").decode()


def entity_json(ent: StoredEntity) -> bytes:
    return ent.json or orjson.dumps(ent.to_cedar_json())


def ancestors_of(uid: EntityUid, entities: Mapping[EntityUid, StoredEntity],
               provided: Mapping[EntityUid, StoredEntity]) -> Iterable[EntityUid]:
    """Every ancestor of ``uid`` among these entities (as Cedar computes it: parents that are
    not themselves present still count, and have no ancestors of their own)."""
    ent = provided.get(uid) or entities.get(uid)
    if ent is None or not ent.parents:
        return ()
    seen: set[EntityUid] = set()
    stack = list(ent.parents)
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        parent = provided.get(current) or entities.get(current)
        if parent is not None and parent.parents:
            stack.extend(parent.parents)
    return seen
