"""The decision engine: AuthZEN requests in, decisions out, always as a batch.

Per request: look the request up in the decision cache (:mod:`pdp.engine.cache`); on a miss,
translate SARC to Cedar, gather the entity slice the request can reach, pick the policies
whose scope matches it from the compiled slice index (:mod:`pdp.policies.index`) and evaluate
with Cedar. Any error on the way is a deny carrying the reason, and is logged: the engine
fails closed.

The entity slice. Cedar is given only what a request can reach: the principal and the
resource, entities the context references, every ancestor of every entity in the slice
(ancestors are always complete, whatever the depth, so ``in`` is exact), and entities that
attributes reference, up to ``entity_depth`` references away from the principal or resource
(an entity reached several ways counts at its shortest distance); references are followed
only through attributes some policy reads by name; entities that the chosen policies name in
their conditions are roots too. The action entities a schema declares as members or groups of
action groups are added to every request; without a schema, the request's action is read from
the store like any entity (an ``entities.json`` may define action groups). Beyond the depth
limit an attribute reference dangles, and reading through it is a Cedar error for that
policy, never a silent success.

Batching. Requests of one call whose policy slices are the same share one Cedar call when
their entity slices agree: no entity with two different contents, and no entity that one
request's slice deliberately leaves out (missing from the store, or past the depth limit)
present in another's. Each request therefore sees exactly the entities it would see alone, so
a batch decides every item as a single evaluation would.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from pdp.authzen.model import Decision, EvaluationRequest
from pdp.engine._cedar import authorize_batch
from pdp.engine.cache import DecisionCache
from pdp.engine.translate import Translator
from pdp.entities.model import EntityUid, StoredEntity, entity_refs
from pdp.entities.store import EntityStore
from pdp.errors import PDPError, StoreUnavailable, TranslationError
from pdp.policies.compiled import CompiledPolicySet
from pdp.policies.index import PolicySlice

__all__ = ["Engine", "EngineOptions", "EngineStats", "LATENCY_BOUNDS"]

log = logging.getLogger("pdp.engine")

# Upper bounds (seconds) of the decide-latency histogram buckets; +Inf is implied.
LATENCY_BOUNDS: tuple[float, ...] = (
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 1.0)
_BOUNDS_NS = tuple(int(b * 1e9) for b in LATENCY_BOUNDS)
_NO_PERMIT = Decision(False, "no_permit")
_OUTCOMES = ("permit", "forbid", "no_permit", "error")


@dataclass(frozen=True, slots=True)
class EngineOptions:
    namespace: str = ""
    action_properties_key: str = "action_properties"
    entity_depth: int = 3
    decision_cache_size: int = 0  # 0: no decision cache


class EngineStats:
    """Counters read by ``/metrics`` and ``/status``: plain integers, no locks on the hot
    path (the server decides on its event-loop thread; under free threading a concurrent
    increment may rarely be lost, which a metric tolerates)."""

    __slots__ = ("outcomes", "latency_buckets", "latency_sum_ns", "calls")

    def __init__(self) -> None:
        self.outcomes: dict[str, int] = dict.fromkeys(_OUTCOMES, 0)
        self.latency_buckets: list[int] = [0] * (len(_BOUNDS_NS) + 1)  # not cumulative
        self.latency_sum_ns = 0
        self.calls = 0

    def observe(self, elapsed_ns: int, decisions: Iterable[Decision]) -> None:
        self.calls += 1
        self.latency_sum_ns += elapsed_ns
        self.latency_buckets[bisect.bisect_left(_BOUNDS_NS, elapsed_ns)] += 1
        outcomes = self.outcomes
        for d in decisions:
            outcomes[d.outcome] = outcomes.get(d.outcome, 0) + 1


@dataclass(frozen=True, slots=True)
class _VersionState:
    """What the engine derives from one compiled policy set (rebuilt after a reload)."""

    version: str
    compiled: CompiledPolicySet
    translator: Translator
    actions: Mapping[EntityUid, StoredEntity]  # the schema's action entities
    actions_json: tuple[bytes, ...]
    action_ancestors: Mapping[EntityUid, frozenset[EntityUid]]


@dataclass(frozen=True, slots=True)
class _Prepared:
    index: int
    cedar: dict[str, Any]
    entities: dict[EntityUid, StoredEntity]
    absent: frozenset[EntityUid]  # uids this request's slice deliberately lacks
    slice: PolicySlice


class Engine:
    """Decides batches of AuthZEN requests against the current policy set and entity store.

    ``policies`` is a zero-argument callable returning the current compiled set, so a reload
    that swaps it is seen by the next batch, and a batch never mixes two versions.
    """

    def __init__(self, policies: Callable[[], CompiledPolicySet], store: EntityStore,
                 options: EngineOptions | None = None) -> None:
        self._policies = policies
        self._store = store
        self._options = options or EngineOptions()
        self._state: _VersionState | None = None
        size = self._options.decision_cache_size
        self._cache = DecisionCache(size) if size > 0 else None
        self.stats = EngineStats()

    @property
    def store(self) -> EntityStore:
        return self._store

    @property
    def cache(self) -> DecisionCache | None:
        return self._cache

    @property
    def options(self) -> EngineOptions:
        return self._options

    def current(self) -> CompiledPolicySet:
        return self._policies()

    def decide(self, requests: Sequence[EvaluationRequest]) -> list[Decision]:
        started = time.perf_counter_ns()
        state = self._version_state(self._policies())
        count = len(requests)
        decisions: list[Decision | None] = [None] * count
        cache = self._cache
        generation: tuple[str, int] | None = None
        keys: list[bytes | None] = []
        if cache is not None:
            store_version = self._store.version  # before any entity is read
            if store_version is not None:
                generation = (state.version, store_version)
                keys = [None] * count
                for i, req in enumerate(requests):
                    key = cache.key(req)
                    if key is None:
                        continue
                    hit = cache.get(generation, key)
                    if hit is None:
                        keys[i] = key
                    else:
                        decisions[i] = hit
            else:
                cache.bypasses += count
        evaluated: list[int] = []  # decided by a completed evaluation: cacheable
        prepared: list[_Prepared] = []
        for i, req in enumerate(requests):
            if decisions[i] is not None:
                continue
            try:
                p = self._prepare(i, req, state)
            except TranslationError as exc:
                decisions[i] = Decision(False, "error",
                                        error={"status": 400, "message": exc.message})
                continue
            except StoreUnavailable:
                raise
            except PDPError as exc:
                log.warning("request %d could not be prepared: %s", i, exc.message)
                decisions[i] = Decision(False, "error", errors=(exc.message,))
                continue
            if p is None:  # no policy's scope matches: Cedar would deny with no reasons
                decisions[i] = _NO_PERMIT
                evaluated.append(i)
            else:
                prepared.append(p)
        if prepared:
            for group in _groups(prepared):
                self._evaluate(group, state, decisions, evaluated)
        final = [d if d is not None else Decision(False, "error", errors=("not evaluated",))
                 for d in decisions]
        if generation is not None and cache is not None:
            for i in evaluated:
                key = keys[i]
                if key is not None:
                    cache.put(generation, key, final[i])
        self.stats.observe(time.perf_counter_ns() - started, final)
        return final

    # -- preparation ----------------------------------------------------------------------

    def _version_state(self, compiled: CompiledPolicySet) -> _VersionState:
        state = self._state
        if state is not None and state.compiled is compiled:
            return state
        translator = Translator(compiled.schema_types, namespace=self._options.namespace,
                                action_properties_key=self._options.action_properties_key)
        actions: dict[EntityUid, StoredEntity] = {}
        types = compiled.schema_types
        if types is not None:
            action_type = (self._options.namespace + "::" if self._options.namespace
                           else "") + "Action"
            hierarchy = types.action_parents()
            grouping = {p for parents in hierarchy.values() for p in parents}
            for name, parents in hierarchy.items():
                if not parents and name not in grouping:
                    # An action in no group and grouping none behaves in every expression
                    # exactly as an absent entity (the schema gives actions no attributes),
                    # and each entity costs Cedar a parse per call.
                    continue
                ent = StoredEntity.build(action_type, name, {},
                                         tuple((action_type, p) for p in parents))
                actions[ent.uid] = ent
        ancestors = {uid: frozenset(_ancestors(uid, {}, actions)) for uid in actions}
        state = _VersionState(compiled.version, compiled, translator, actions,
                              tuple(e.json for e in actions.values()), ancestors)
        self._state = state
        return state

    def _prepare(self, i: int, req: EvaluationRequest, state: _VersionState,
                 ) -> _Prepared | None:
        cr = state.translator.translate(req)
        actions = state.actions
        index = state.compiled.index
        overlays: dict[EntityUid, dict[str, Any]] = {}
        if cr.principal_attrs:
            overlays[cr.principal] = dict(cr.principal_attrs)
        if cr.resource_attrs:
            overlays.setdefault(cr.resource, {}).update(cr.resource_attrs)
        reach = _Reach(self._store, actions, index.attributes, self._options.entity_depth,
                       overlays)
        reach.add(cr.principal, 0)
        reach.add(cr.resource, 0)
        reach.add(cr.action, 0)  # from the store when no schema declares the actions
        if cr.context and self._options.entity_depth >= 1:
            refs: list[EntityUid] = []
            entity_refs(cr.context, refs)
            for uid in refs:
                reach.add(uid, 1)
        reach.run()
        entities = reach.out
        action_ancestors: Iterable[EntityUid] | None = state.action_ancestors.get(cr.action)
        if action_ancestors is None:
            action_ancestors = _ancestors(cr.action, entities, actions)
        chosen = index.select(
            cr.principal, _ancestors(cr.principal, entities, actions),
            cr.action, action_ancestors,
            cr.resource, _ancestors(cr.resource, entities, actions))
        if chosen is None:
            return None
        if chosen.literals:  # entities the chosen policies name in their conditions
            for uid in chosen.literals:
                reach.add(uid, 0)
            reach.run()
        cedar = {
            "principal": {"type": cr.principal[0], "id": cr.principal[1]},
            "action": {"type": cr.action[0], "id": cr.action[1]},
            "resource": {"type": cr.resource[0], "id": cr.resource[1]},
            "context": orjson.dumps(cr.context).decode() if cr.context else "{}",
        }
        return _Prepared(i, cedar, entities, reach.absent(), chosen)

    # -- evaluation -----------------------------------------------------------------------

    def _evaluate(self, group: Sequence[_Prepared], state: _VersionState,
                  decisions: list[Decision | None], evaluated: list[int]) -> None:
        merged: dict[EntityUid, StoredEntity] = {}
        for p in group:
            merged.update(p.entities)
        parts = [*state.actions_json, *(_json(e) for e in merged.values())]
        entities_json = (b"[" + b",".join(parts) + b"]").decode()
        try:
            answers = authorize_batch([p.cedar for p in group], group[0].slice.policy_set,
                                      entities_json)
        except Exception as exc:  # noqa: BLE001 - any engine failure is a deny
            log.error("cedar evaluation failed: %s", exc)
            for p in group:
                decisions[p.index] = Decision(False, "error", errors=("evaluation failed",))
            return
        for p, answer in zip(group, answers, strict=True):
            decision = _decision(answer)
            decisions[p.index] = decision
            if decision.error is None:
                evaluated.append(p.index)



class _Reach:
    """One request's entity slice, grown breadth-first from the roots it is given.

    ``provided`` entities (the schema's actions) are given to Cedar separately and never read
    from the store. Parents are always followed (at the same distance); attribute references
    only through attributes some policy reads (``read``) and up to ``limit`` away. An entity
    reached again at a shorter distance is expanded again, so the result does not depend on
    the order of discovery.
    """

    __slots__ = ("_store", "_provided", "_read", "_limit", "_overlays", "_depth_of", "out",
                 "_referenced", "_to_fetch", "_to_expand")

    def __init__(self, store: EntityStore, provided: Mapping[EntityUid, StoredEntity],
                 read: Collection[str], limit: int,
                 overlays: dict[EntityUid, dict[str, Any]]) -> None:
        self._store = store
        self._provided = provided
        self._read = read
        self._limit = limit
        self._overlays = overlays
        self._depth_of: dict[EntityUid, int] = {}
        self.out: dict[EntityUid, StoredEntity] = {}
        self._referenced: set[EntityUid] = set()
        self._to_fetch: list[EntityUid] = []
        self._to_expand: list[EntityUid] = []

    def add(self, uid: EntityUid, depth: int) -> None:
        self._referenced.add(uid)
        if uid in self._provided:
            return
        known = self._depth_of.get(uid)
        if known is not None and known <= depth:
            return
        self._depth_of[uid] = depth
        if uid in self.out:
            self._to_expand.append(uid)  # reached again, closer: its references go further
        elif known is None:
            self._to_fetch.append(uid)

    def run(self) -> None:
        out, depth_of, overlays = self.out, self._depth_of, self._overlays
        read, limit, add = self._read, self._limit, self.add
        while self._to_fetch or self._to_expand:
            if self._to_fetch:
                wanted, self._to_fetch = self._to_fetch, []
                fetched = self._store.get_many(wanted)
                for uid in wanted:
                    ent = fetched.get(uid)
                    extra = overlays.pop(uid, None) if overlays else None
                    if extra is not None:  # request-carried properties of a root
                        attrs = extra
                        parents: tuple[EntityUid, ...] = ()
                        if ent is not None:
                            attrs.update(ent.attrs)  # stored attributes win
                            parents = ent.parents
                        ent = StoredEntity.build(uid[0], uid[1], attrs, parents)
                    if ent is not None:
                        out[uid] = ent
                        self._to_expand.append(uid)
            expanding, self._to_expand = self._to_expand, []
            for uid in expanding:
                ent = out[uid]
                depth = depth_of[uid]
                for parent in ent.parents:  # ancestors: always complete
                    add(parent, depth)
                if not ent.attrs:
                    continue
                refs: list[EntityUid] = []
                for name, value in ent.attrs.items():
                    if name in read and isinstance(value, dict | list):
                        entity_refs(value, refs)
                if depth < limit:
                    for ref in refs:
                        add(ref, depth + 1)
                else:
                    self._referenced.update(refs)

    def absent(self) -> frozenset[EntityUid]:
        """Uids the slice references (or was asked for) but does not include."""
        referenced = self._referenced
        if not referenced:
            return frozenset()
        return frozenset(u for u in referenced if u not in self.out and u not in self._provided)


def _json(ent: StoredEntity) -> bytes:
    return ent.json or orjson.dumps(ent.to_cedar_json())


def _ancestors(uid: EntityUid, entities: Mapping[EntityUid, StoredEntity],
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


def _decision(answer: Mapping[str, Any]) -> Decision:
    diagnostics = answer.get("diagnostics") or {}
    reasons = tuple(sorted(diagnostics.get("reason") or ()))
    errors = tuple(sorted(diagnostics.get("errors") or ()))
    verdict = answer.get("decision")
    if verdict == "Allow":
        return Decision(True, "permit", reasons, errors)
    if verdict == "Deny":
        outcome = "forbid" if reasons else ("error" if errors else "no_permit")
        return Decision(False, outcome, reasons, errors)
    log.error("cedar returned no decision: %s", "; ".join(errors) or verdict)
    return Decision(False, "error", (), errors or ("no decision",))


def _groups(prepared: Sequence[_Prepared]) -> list[list[_Prepared]]:
    """Requests that can share one Cedar call: same policy slice, agreeing entity slices."""
    if len(prepared) == 1:
        return [list(prepared)]
    by_slice: dict[int, list[_Prepared]] = {}
    for p in prepared:
        by_slice.setdefault(id(p.slice), []).append(p)
    groups: list[list[_Prepared]] = []
    for members in by_slice.values():
        current: list[_Prepared] = []
        merged: dict[EntityUid, StoredEntity] = {}
        absent: set[EntityUid] = set()
        for p in members:
            if current and not _agrees(p, merged, absent):
                groups.append(current)
                current, merged, absent = [], {}, set()
            current.append(p)
            merged.update(p.entities)
            absent.update(p.absent)
        groups.append(current)
    return groups


def _agrees(p: _Prepared, merged: Mapping[EntityUid, StoredEntity],
            absent: set[EntityUid]) -> bool:
    for uid, ent in p.entities.items():
        other = merged.get(uid)
        if other is not None and other is not ent and _json(other) != _json(ent):
            return False
        if uid in absent:
            return False
    return not any(uid in merged for uid in p.absent)
