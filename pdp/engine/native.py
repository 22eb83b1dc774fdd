"""The native evaluator: prepared requests decided by :mod:`pdp.cedar` (one of the two
evaluators behind :class:`~pdp.engine.evaluator.Evaluator`; cedarpy decides what it does not
take).

The engine hands over the policy slice, the requests as (principal, action, resource,
context) and an evaluation :class:`~pdp.cedar.runtime.Store` read straight from the entities
the store holds: each stored entity's attributes are decoded once (memoised by the entity
object, which is immutable), and each memoised entity closure keeps its own store, with the
transitive ancestors of its entities computed once per (policy version, store version). A
request's store is the union of its closures' stores: no entity JSON is built or parsed per
request. Everything around the evaluation (slices, batching, the decision cache,
explanations, the fail-closed rules) is the same with either evaluator.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import orjson

from pdp.authzen.model import Decision
from pdp.cedar import PolicySet, decode
from pdp.cedar.entities import closure
from pdp.cedar.policyset import Bound
from pdp.cedar.runtime import Store
from pdp.cedar.values import UID
from pdp.engine.prepare import Prepared
from pdp.engine.reach import Closure, StoreBuilder
from pdp.engine.verdict import native_decision
from pdp.engine.version import VersionState
from pdp.entities.model import EntityUid, StoredEntity
from pdp.policies.compiled import CompiledPolicySet
from pdp.policies.index import PolicySlice, SliceIndex

__all__ = ["FAILED", "NativeEvaluator", "native_reason"]

log = logging.getLogger("pdp.engine")

# The decision for a request whose native evaluation failed (an engine fault): a deny.
FAILED = Decision(False, "error", errors=("evaluation failed",))
# A plan's evaluation inputs: the action entities' JSON they were built with, and the slice's
# compiled policies bound to the three roots and the entity slice's store (None: not native).
_Ready = tuple[tuple[bytes, ...], Bound | None]
_Decoded = tuple[UID, dict[str, Any], list[UID], dict[str, Any]]
_new_uid = tuple.__new__


class _IdentityMemo:
    """A bounded memo keyed by the identity of an object it keeps alive (so the identity
    cannot be reused while the entry lives). Not a cache of :mod:`pdp.caches` on purpose: it
    is read on every native decision from several threads, so a read must take no lock (a
    dict read is atomic), and it is emptied when full rather than ordered (its entries are
    cheap to rebuild, and one generation's objects replace the last's)."""

    __slots__ = ("_max", "items")

    def __init__(self, max_size: int) -> None:
        self._max = max_size
        self.items: dict[int, tuple[object, Any]] = {}

    def get(self, obj: object) -> Any | None:
        found = self.items.get(id(obj))
        if found is None or found[0] is not obj:
            return None
        return found[1]

    def put(self, obj: object, value: Any) -> None:
        if len(self.items) >= self._max:
            self.items = {}
        self.items[id(obj)] = (obj, value)


class NativeEvaluator:
    """Decides requests natively, leaving to cedarpy those it cannot take.

    ``forbid_errors``: "deny" (an erring forbid denies) or "skip" (Cedar's semantics)."""

    def __init__(self, slices: int = 1024, entities: int = 65_536, *,
                 forbid_errors: str = "deny") -> None:
        self._deny_erring_forbids = forbid_errors == "deny"
        self.decided = 0  # requests decided natively
        self.fallbacks = 0  # requests left to cedarpy (a slice or a value not native)
        self._slices = _IdentityMemo(slices)
        self._entities = _IdentityMemo(entities)
        self._actions = _IdentityMemo(16)
        # decoded contexts, by the translated context (the translator keeps one per text)
        self._contexts = _IdentityMemo(4096)
        self._full = _IdentityMemo(2)
        self._merged: dict[tuple[int, ...], tuple[tuple[Store, ...], Store]] = {}
        self._merged_max = 4096
        self._build: StoreBuilder = self.store  # bound once: called per new closure

    def authorize_batch(self, prepared: Sequence[Prepared], state: VersionState,
                        decisions: list[Decision | None], evaluated: list[int],
                        shared: bool) -> list[Prepared]:
        """Each request over its own entity slice (exactly as alone: no batch grouping is
        needed); returns those the native evaluator does not take, for cedarpy."""
        decide = self.decide
        left: list[Prepared] = []
        for p in prepared:
            decision = decide(p, state)
            if decision is None:
                left.append(p)
                continue
            decisions[p.index] = decision
            if decision is not FAILED:
                evaluated.append(p.index)
        return left

    def decide(self, p: Prepared, state: VersionState) -> Decision | None:
        """The decision for ``p``, or ``None`` when it is not native (cedarpy decides it).
        :data:`FAILED` when the evaluation itself failed (logged; a deny, not to be kept).

        What the evaluation reads besides the context (the slice's compiled policies, the
        store of the entity slice, the roots as values, bound together) is kept with the
        request's plan."""
        try:
            plan = p.plan
            ready = plan.native
            if ready is None or ready[0] is not state.actions_json:
                ready = plan.native = self._ready(p, state)
            bound = ready[1]
            if bound is None:
                self.fallbacks += 1
                return None
            context = p.context
            if context:
                ctx = self._contexts.get(context)
                if ctx is None:
                    try:
                        ctx = decode.value(context if type(context) is dict else dict(context))
                        if type(ctx) is not dict:
                            raise decode.Unsupported("the context is not a record")
                    except decode.Unsupported:
                        self.fallbacks += 1
                        return None
                    self._contexts.put(context, ctx)
            else:
                ctx = {}
            self.decided += 1
            answer = bound.evaluate(ctx)
        except Exception as exc:  # noqa: BLE001 - any engine failure is a deny
            log.error("cedar evaluation failed: %s", exc)
            return FAILED
        return native_decision(answer, state.permits if self._deny_erring_forbids else None,
                               state.decisions)

    def _ready(self, p: Prepared, state: VersionState) -> _Ready:
        """What evaluating ``p`` reads besides its context; no policies or no store when
        they are not native."""
        actions_json = state.actions_json
        store = _union(self._build, self.merge, p.parts, actions_json)
        policies = None if store is None else \
            self.compiled(p.slice, state.compiled, state.slices)
        if policies is None or store is None:
            return actions_json, None
        return actions_json, policies.bind(_new_uid(UID, p.principal), _new_uid(UID, p.action),
                                           _new_uid(UID, p.resource), store, fold=True)

    def merge(self, stores: Sequence[Store]) -> Store:
        """One store of several (later ones win for an entity in two: they agree, or the
        later one carries request properties); memoised by the stores' identities (an entry
        holds them, so the identities are not reused while it lives)."""
        if len(stores) == 1:
            return stores[0]
        held = tuple(stores)
        key = tuple(map(id, held))
        found = self._merged.get(key)
        if found is not None and found[0] == held:  # (identical items compare equal at once)
            return found[1]
        merged = _merge(held)
        if len(self._merged) >= self._merged_max:
            self._merged = {}
        self._merged[key] = (held, merged)
        return merged

    def prepare(self, compiled: CompiledPolicySet, index: SliceIndex | None = None,
                ) -> PolicySet:
        """The whole policy set, compiled once per version (the reloader calls this after a
        swap, so that no request waits for it). ``index``: the set's slice index with the
        template links stored with the entities (default: the set's own index); its
        policies are the ones compiled."""
        index = index if index is not None else compiled.index
        found: PolicySet | None = self._full.get(index)
        if found is None:
            found = PolicySet.from_document(index.full_document(), compiled.policy_set)
            self._full.put(index, found)
        return found

    def reason(self, compiled: CompiledPolicySet) -> str | None:
        """Why ``compiled`` is not evaluated natively (``None``: it is)."""
        return self.prepare(compiled).native_reason

    def compiled(self, policy_slice: PolicySlice, compiled: CompiledPolicySet,
                 index: SliceIndex | None = None) -> PolicySet | None:
        """A slice's policies, from the whole set's compiled code; ``None`` if not native
        (or if the compiled set lacks one of the slice's policies: never a smaller set)."""
        found: PolicySet | None = self._slices.get(policy_slice)
        if found is None:
            found = self.prepare(compiled, index).subset(policy_slice.policy_ids,
                                                         policy_slice.policy_set)
            self._slices.put(policy_slice, found)
        return found if found.native_reason is None else None

    def store(self, entities: Mapping[EntityUid, StoredEntity],
              actions_json: tuple[bytes, ...]) -> Store | None:
        """What evaluation reads of ``entities`` and the action entities: decoded attributes
        and tags, and transitive ancestors (a parent counts whether or not it is present).
        ``None`` when a value is not read natively. Immutable: callers keep it as long as the
        entities it was built from."""
        attrs: dict[UID, dict[str, Any]] = {}
        parents: dict[UID, list[UID]] = {}
        tags: dict[UID, dict[str, Any]] = {}
        try:
            for uid, a, ps, t in self._actions_decoded(actions_json):
                attrs[uid], parents[uid] = a, ps
                if t:
                    tags[uid] = t
            for ent in entities.values():
                decoded: _Decoded | None = self._entities.get(ent)
                if decoded is None:
                    decoded = _decode_entity(ent)
                    self._entities.put(ent, decoded)
                uid, a, ps, t = decoded
                attrs[uid], parents[uid] = a, ps
                if t:
                    tags[uid] = t
        except decode.Unsupported:
            return None
        return Store(attrs, closure(parents), tags)

    def _actions_decoded(self, actions_json: tuple[bytes, ...]) -> Iterable[_Decoded]:
        found: list[_Decoded] | None = self._actions.get(actions_json)
        if found is None:
            found = [_decode(orjson.loads(j)) for j in actions_json]
            self._actions.put(actions_json, found)
        return found


def _union(build: StoreBuilder, merge: Callable[[Sequence[Store]], Store],
           parts: Sequence[Closure], actions_json: tuple[bytes, ...]) -> Store | None:
    if len(parts) == 1:
        return parts[0].native_store(build, actions_json)
    stores = []
    for part in parts:
        store = part.native_store(build, actions_json)
        if store is None:
            return None
        stores.append(store)
    return merge(stores)


def _merge(stores: Sequence[Store]) -> Store:
    attrs: dict[UID, dict[str, Any]] = {}
    ancestors: dict[UID, frozenset[UID]] = {}
    tags: dict[UID, dict[str, Any]] = {}
    for s in stores:
        attrs.update(s.attrs)
        ancestors.update(s.ancestors)
        if s.tags:
            tags.update(s.tags)
    return Store(attrs, ancestors, tags)


def native_reason(compiled: CompiledPolicySet) -> str | None:
    """Why ``compiled`` is not evaluated natively as a whole (``None``: it is)."""
    return PolicySet.from_document(compiled.index.full_document(),
                                   compiled.policy_set).native_reason


def _decode_entity(ent: StoredEntity) -> _Decoded:
    """A stored entity's attributes and tags as held (Cedar's JSON value form), decoded."""
    held = ent.attrs
    a = decode.value(held if type(held) is dict else dict(held)) if held else {}
    t = decode.value(dict(ent.tags)) if ent.tags else {}
    if type(a) is not dict or type(t) is not dict:
        raise decode.Unsupported("attributes or tags are not records")
    parents = [_new_uid(UID, (p[0], p[1])) for p in ent.parents]
    if type(ent.type) is not str or type(ent.id) is not str or not all(
            type(p[0]) is str and type(p[1]) is str for p in parents):
        raise decode.Unsupported("an entity uid is not two strings")
    return (_new_uid(UID, (ent.type, ent.id)), a, parents, t)


def _decode(doc: Mapping[str, Any]) -> _Decoded:
    a = decode.value(doc.get("attrs") or {})
    t = decode.value(doc.get("tags") or {})
    if type(a) is not dict or type(t) is not dict:
        raise decode.Unsupported("attributes or tags are not records")
    return (decode.uid(doc["uid"]), a, [decode.uid(p) for p in doc.get("parents") or []], t)
