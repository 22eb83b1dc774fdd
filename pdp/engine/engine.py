"""The decision engine: AuthZEN requests in, decisions out, always as a batch.

Per request: look the request up in the decision cache (:mod:`pdp.engine.cache`); on a miss,
translate SARC to Cedar, gather the entity slice the request can reach, pick the policies
whose scope matches it from the compiled slice index (:mod:`pdp.policies.index`) and evaluate
with Cedar. Any error on the way is a deny carrying the reason, and is logged: the engine
fails closed.

The entity slice: what the chosen policies can observe, and nothing else. Its roots are the
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

The slice is the union of per-root closures, memoised per (policy version, store version)
and, from their second use, kept parsed by Cedar: a request then costs Cedar only the parse
of the entities not already parsed (Cedar's entity parsing, several microseconds an entity,
is most of the cost of a decision).

Batching. The native evaluator decides each request of a call over its own slice (the
closures' decoded stores: no entity set is built per call), so nothing needs grouping. For
cedarpy (the configured evaluator, or the fallback for what is not native), requests of one
call whose policy slices are the same share one Cedar call when
their entity slices agree: no entity with two different contents, and no entity that one
request's slice deliberately leaves out (missing from the store, or past the depth limit)
present in another's. Each request therefore sees exactly the entities it would see alone, so
a batch decides every item as a single evaluation would. The entity set of such a group, when
all its closures are memoised, is parsed by Cedar once and kept (a small LRU keyed by those
closures): the same batch sent again costs Cedar no entity parsing at all.
"""

from __future__ import annotations

import bisect
import dataclasses
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cedarpy
import orjson

from pdp.authzen.model import Decision, EvaluationRequest
from pdp.authzen.type_names import NO_TYPE_NAMES, TypeNames
from pdp.cedar import Answer
from pdp.cedar.runtime import Store
from pdp.engine._cedar import authorize_batch
from pdp.engine.cache import DecisionCache
from pdp.engine.native import NativeEvaluator
from pdp.engine.translate import Translator
from pdp.entities.model import EntityUid, StoredEntity, entity_refs
from pdp.entities.store import EntityStore
from pdp.errors import PDPError, SchemaViolation, StoreUnavailable, TranslationError
from pdp.policies.compiled import CompiledPolicySet
from pdp.policies.index import PolicySlice, SliceIndex
from pdp.policies.links import LinkInfo, LinkSet, stranded
from pdp.settings import Settings

__all__ = ["CedarInput", "Engine", "EngineOptions", "EngineStats", "LATENCY_BOUNDS"]

log = logging.getLogger("pdp.engine")

# Upper bounds (seconds) of the decide-latency histogram buckets; +Inf is implied.
LATENCY_BOUNDS: tuple[float, ...] = (
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 1.0)
_BOUNDS_NS = tuple(int(b * 1e9) for b in LATENCY_BOUNDS)
_NO_PERMIT = Decision(False, "no_permit")
_NOTHING: frozenset[EntityUid] = frozenset()
_OUTCOMES = ("permit", "forbid", "no_permit", "error", "invalid")
_POLICY_ERROR = "error while evaluating policy `"
_DECISION_MEMO = 4096  # native decisions without errors kept per policy version


@dataclass(frozen=True, slots=True)
class EngineOptions:
    namespace: str = ""
    action_properties_key: str = "action_properties"
    entity_depth: int = 3
    decision_cache_bytes: int = 0  # memory budget of the decision cache; 0: no cache
    closure_cache_size: int = 16_384  # entity closures kept across calls (0: none)
    type_names: TypeNames = NO_TYPE_NAMES  # AuthZEN types that are not Cedar names
    # "deny": a forbid policy that errors denies; "skip": Cedar's semantics (it is skipped)
    forbid_errors: str = "deny"
    # Attributes request properties may set on a stored entity: "attr" (any type) or
    # "type.attr" (AuthZEN type). Any other property of a stored entity is ignored.
    trusted_properties: frozenset[str] = frozenset()
    evaluator: str = "native"  # "native" (pdp.cedar, cedarpy where it cannot) or "cedarpy"

    @classmethod
    def from_settings(cls, settings: Settings, *, decision_cache: bool = True,
                      ) -> EngineOptions:
        """The options every decision path (server, ``pdp test``, ``pdp eval``, search, the
        gateway) takes from the settings."""
        return cls(
            namespace=settings.namespace,
            action_properties_key=settings.action_properties_key,
            entity_depth=settings.entity_depth,
            decision_cache_bytes=(settings.decision_cache_bytes
                                  if decision_cache and settings.decision_cache == "on" else 0),
            forbid_errors=settings.forbid_errors,
            trusted_properties=frozenset(settings.trusted_properties),
            type_names=TypeNames(settings.type_names),
            evaluator=settings.evaluator)


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
class CedarInput:
    """See :meth:`Engine.cedar_input`."""

    request: dict[str, Any]
    entities: list[dict[str, Any]]
    policy_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _VersionState:
    """What the engine derives from one compiled policy set and the template links stored
    with the entities (rebuilt after a reload or a change of stored links)."""

    version: str
    compiled: CompiledPolicySet
    translator: Translator
    permits: frozenset[str]  # ids of the permit policies (an error in one is harmless)
    actions: Mapping[EntityUid, StoredEntity]  # the schema's action entities
    actions_json: tuple[bytes, ...]  # those of them Cedar needs (in or grouping a group)
    action_ancestors: Mapping[EntityUid, frozenset[EntityUid]]
    trusted: frozenset[str]  # attributes request properties may set on stored entities
    stored: LinkSet | None = None  # the store's links this state was made of
    index: SliceIndex | None = None  # the compiled index with the stored links (None: same)
    links: Mapping[str, LinkInfo] = field(default_factory=dict)  # every link in force
    _full: list[Any] = field(default_factory=list)  # the whole set with stored links, lazily

    @property
    def slices(self) -> SliceIndex:
        return self.index if self.index is not None else self.compiled.index
    # decisions of native answers without errors (see _native_decision)
    decisions: dict[tuple[bool, tuple[str, ...]], Decision] = field(default_factory=dict)


class _Prepared:
    """One request ready for evaluation: its Cedar request and its entity slice, as the
    closures the slice is the union of (merged only when a batch or cedarpy needs it)."""

    __slots__ = ("index", "principal", "action", "resource", "context", "slice", "parts",
                 "_entities", "_absent")

    def __init__(self, index: int, principal: EntityUid, action: EntityUid,
                 resource: EntityUid, context: dict[str, Any], policy_slice: PolicySlice,
                 parts: tuple[_Closure, ...]) -> None:
        self.index = index
        self.principal, self.action, self.resource = principal, action, resource
        self.context = context
        self.slice = policy_slice
        self.parts = parts  # request properties last: they win over a stored self
        self._entities: Mapping[EntityUid, StoredEntity] | None = None
        self._absent: frozenset[EntityUid] | None = None

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
            found = parts[0].absent if len(parts) == 1 else _Closure.absent_of(parts)
            self._absent = found
        return found


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
        budget = self._options.decision_cache_bytes
        self._cache = DecisionCache(budget) if budget > 0 else None
        closure_size = self._options.closure_cache_size
        self._closure_memo = _Memo(closure_size) if closure_size > 0 else None
        # Parsed entity sets of whole batch groups, keyed by the memoised closures they are
        # the union of (see _cedar_entities); only used with the closure memo.
        self._group_memo: _GroupMemo | None = _GroupMemo(64) if closure_size > 0 else None
        self._shared_closures: tuple[tuple[str, int], _VersionState, _Closures] | None = None
        prefix = f"{self._options.namespace}::" if self._options.namespace else ""
        self._trusted = frozenset(
            prefix + entry if "." in entry else entry
            for entry in self._options.trusted_properties)
        self.stats = EngineStats()
        self._native = NativeEvaluator() if self._options.evaluator == "native" else None

    @property
    def store(self) -> EntityStore:
        return self._store

    @property
    def native(self) -> NativeEvaluator | None:
        """The native evaluator (``None`` when every decision goes to cedarpy)."""
        return self._native

    @property
    def cache(self) -> DecisionCache | None:
        return self._cache

    @property
    def options(self) -> EngineOptions:
        return self._options

    def current(self) -> CompiledPolicySet:
        return self._policies()

    def refresh(self) -> None:
        """Derive what the engine needs from the current policy set now. The reloader calls
        this right after a swap, on its own thread, so that no request pays for building
        the new state or for freeing the old one."""
        state = self._version_state(self._policies())
        if self._native is not None:
            self._native.prepare(state.compiled, state.slices)

    def links(self) -> Mapping[str, LinkInfo]:
        """Every template link in force (the policy set's files' and the store's), by id."""
        return self._version_state(self._policies()).links

    def policy_set(self) -> Any:
        """The whole current policy set as Cedar evaluates it, stored links included
        (``cedarpy.PolicySet``; for partial evaluation)."""
        state = self._version_state(self._policies())
        if state.index is None:
            return state.compiled.policy_set
        if not state._full:
            stored = [x for x in state.links.values() if x.file is None]
            state._full.append(state.compiled.policy_set.with_linked_batch([
                {"template_id": x.template_id, "new_id": x.link_id,
                 "values": {k: {"type": t, "id": i} for k, (t, i) in x.values.items()}}
                for x in stored]))
        return state._full[0]

    def cedar_input(self, request: EvaluationRequest) -> CedarInput:
        """What Cedar is given for ``request``: the Cedar request, the entities (Cedar JSON)
        and the ids of the policies in its slice (for debugging and benchmarks).

        Raises what translation raises (TranslationError) or the store raises."""
        state = self._version_state(self._policies())
        p = self._prepare(0, request, state, self._closures_for(state))
        cedar: dict[str, Any] = {}
        entities: list[dict[str, Any]] = [orjson.loads(j) for j in state.actions_json]
        if p is None:
            cr = state.translator.translate(request)
            cedar = {"principal": {"type": cr.principal[0], "id": cr.principal[1]},
                     "action": {"type": cr.action[0], "id": cr.action[1]},
                     "resource": {"type": cr.resource[0], "id": cr.resource[1]},
                     "context": cr.context}
            return CedarInput(cedar, entities, ())
        cedar = dict(p.cedar, context=orjson.loads(p.cedar["context"]))
        entities.extend(orjson.loads(_json(e)) for e in p.entities.values())
        return CedarInput(cedar, entities, p.slice.policy_ids)

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
                only = decisions[0] if count == 1 else None
                if only is not None:  # the common case of a hit: done
                    self.stats.observe(time.perf_counter_ns() - started, (only,))
                    return [only]
            else:
                cache.bypasses += count
        evaluated: list[int] = []  # decided by a completed evaluation: cacheable
        prepared: list[_Prepared] = []
        closures = self._closures_for(state)
        for i, req in enumerate(requests):
            if decisions[i] is not None:
                continue
            try:
                p = self._prepare(i, req, state, closures)
            except TranslationError as exc:
                decisions[i] = Decision(
                    False, "invalid" if isinstance(exc, SchemaViolation) else "error",
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
        if prepared and self._native is not None:
            prepared = self._evaluate_natively(self._native, prepared, state, decisions,
                                               evaluated)
        if prepared:
            group_memo = self._group_memo if closures.memoised else None
            for policy_slice, group in _groups(prepared, state.slices):
                self._evaluate(policy_slice, group, state, decisions, evaluated, group_memo)
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
        stored: LinkSet | None = self._store.links()
        if state is not None and state.compiled is compiled:
            if state.stored is stored:
                return state
            state = self._with_links(state, stored)
            self._state = state
            return state
        translator = Translator(compiled.schema_types, namespace=self._options.namespace,
                                action_properties_key=self._options.action_properties_key,
                                type_names=self._options.type_names)
        actions: dict[EntityUid, StoredEntity] = {}
        types = compiled.schema_types
        if types is not None:
            action_type = (self._options.namespace + "::" if self._options.namespace
                           else "") + "Action"
            hierarchy = types.action_parents()
            grouping = {p for parents in hierarchy.values() for p in parents}
            for name, parents in hierarchy.items():
                ent = StoredEntity.build(action_type, name, {},
                                         tuple((action_type, p) for p in parents))
                actions[ent.uid] = ent
        else:
            grouping = set()
        ancestors = {uid: frozenset(_ancestors(uid, {}, actions)) for uid in actions}
        # An action in no group and grouping none behaves in every expression exactly as an
        # absent entity (the schema gives actions no attributes), and each entity costs Cedar
        # a parse per call: only the others are sent. None is read from the store.
        sent = tuple(e.json for e in actions.values() if e.parents or e.id in grouping)
        permits = frozenset(p.id for p in compiled.policies if p.effect == "permit")
        trusted = self._trusted | (types.trusted_attributes() if types is not None
                                   else frozenset())
        state = self._with_links(_VersionState(compiled.version, compiled, translator, permits,
                                               actions, sent, ancestors, trusted), stored)
        self._state = state
        return state

    @staticmethod
    def _with_links(state: _VersionState, stored: LinkSet | None) -> _VersionState:
        """``state`` with the store's template links: those that fit the policy set are
        indexed with the static policies and the files' links; the others are left out,
        with an error logged (a link names a template that changed or went away). Against
        the same policy set, only the links that changed since ``state`` are checked and
        re-indexed (:meth:`SliceIndex.linked`), so a change costs what it changes."""
        compiled = state.compiled
        before = state.stored.by_id if state.stored is not None else {}
        now = stored.by_id if stored is not None else {}
        ids = stored.changed_since(state.stored) \
            if stored is not None and state.stored is not None else None
        if ids is not None:  # caught up from the store's log of changes
            added = [now[k] for k in ids if k in now]
            removed = [k for k in ids if k in before]
        else:
            added = [x for k, x in now.items() if before.get(k) is not x]
            removed = [k for k, x in before.items() if now.get(k) is not x]
        if not added and not removed and state.stored is not None:
            return dataclasses.replace(state, stored=stored)
        links = dict(state.links) if state.links else {x.link_id: x for x in compiled.links}
        for link_id in removed:
            links.pop(link_id, None)
        taken = {p.id for p in compiled.policies} | {x.link_id for x in compiled.links}
        unfit = dict(stranded(added, compiled.templates(), compiled.schema_types, taken))
        for link_id, problem in unfit.items():
            log.error("stored template link %s is not in force: %s", link_id, problem)
        fitting = [x for x in added if x.link_id not in unfit]
        links.update((x.link_id, x) for x in fitting)
        index = state.slices.linked(fitting, removed)
        version = f"{compiled.version}+{len(links)}"
        templates = compiled.templates()
        permits = frozenset(p.id for p in compiled.policies if p.effect == "permit") | {
            x.link_id for x in links.values()
            if x.template_id in templates and templates[x.template_id].effect == "permit"}
        return dataclasses.replace(state, version=version, stored=stored,
                                   index=None if index is compiled.index else index,
                                   links=links, permits=permits, _full=[])

    def _closures_for(self, state: _VersionState) -> _Closures:
        """The closures of this call: shared by every call of one generation (policy and
        store versions) when the store has versions, else this call's own."""
        memo = self._closure_memo
        generation: tuple[str, int] | None = None
        if memo is not None:
            store_version = self._store.version  # before any entity is read
            if store_version is not None:
                generation = (state.version, store_version)
                shared = self._shared_closures
                if shared is not None and shared[0] == generation and shared[1] is state:
                    return shared[2]
                closures = self._new_closures(state, memo, generation)
                self._shared_closures = (generation, state, closures)
                return closures
        return self._new_closures(state, None, None)

    def _new_closures(self, state: _VersionState, memo: _Memo | None,
                      generation: tuple[str, int] | None) -> _Closures:
        return _Closures(self._store, state.actions, state.slices.followed,
                         self._options.entity_depth, memo, generation,
                         tags=state.slices.tags_read, trusted=state.trusted)

    def _prepare(self, i: int, req: EvaluationRequest, state: _VersionState,
                 closures: _Closures) -> _Prepared | None:
        cr = state.translator.translate(req)
        index = state.slices
        depth = self._options.entity_depth
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
        if cr.context and depth >= 1:
            followed = index.followed
            refs: list[EntityUid] = []
            for key, value in cr.context.items():
                if key in followed and isinstance(value, dict | list):
                    entity_refs(value, refs)
            parts.extend(closures.get(uid, 1) for uid in dict.fromkeys(refs))
        roots_end = len(parts)
        chosen = closures.select(index, principal, action, action_ancestors, resource, parts)
        if chosen is None:
            return None
        if chosen.literals:  # entities the chosen policies name in their conditions
            parts.extend(closures.get(uid, 0) for uid in chosen.literals)
        if overlaid and len(parts) > roots_end:
            parts.sort(key=_overlaid_last)
        return _Prepared(i, principal, action, resource, cr.context, chosen,
                         tuple(parts))

    # -- evaluation -----------------------------------------------------------------------

    def _evaluate(self, policy_slice: PolicySlice, group: Sequence[_Prepared],
                  state: _VersionState, decisions: list[Decision | None],
                  evaluated: list[int], group_memo: _GroupMemo | None = None) -> None:
        try:
            answers = authorize_batch([p.cedar for p in group], policy_slice.policy_set,
                                      _cedar_entities(group, state.actions_json, group_memo))
        except Exception as exc:  # noqa: BLE001 - any engine failure is a deny
            log.error("cedar evaluation failed: %s", exc)
            for p in group:
                decisions[p.index] = Decision(False, "error", errors=("evaluation failed",))
            return
        permits = state.permits if self._options.forbid_errors == "deny" else None
        for p, answer in zip(group, answers, strict=True):
            decision = _decision(answer, permits)
            decisions[p.index] = decision
            if decision.error is None:
                evaluated.append(p.index)

    def _evaluate_natively(self, native: NativeEvaluator, prepared: Sequence[_Prepared],
                           state: _VersionState, decisions: list[Decision | None],
                           evaluated: list[int]) -> list[_Prepared]:
        """Each request over its own entity slice (exactly as alone: no batch grouping is
        needed); returns those the native evaluator does not take, for cedarpy."""
        permits = state.permits if self._options.forbid_errors == "deny" else None
        left: list[_Prepared] = []
        for p in prepared:
            try:
                answer = native.authorize_one(
                    state.compiled, state.slices, p.slice, p.principal, p.action, p.resource,
                    p.context,
                    _native_store(native, p.parts, state.actions_json))
            except Exception as exc:  # noqa: BLE001 - any engine failure is a deny
                log.error("cedar evaluation failed: %s", exc)
                decisions[p.index] = Decision(False, "error", errors=("evaluation failed",))
                continue
            if answer is None:
                left.append(p)
                continue
            decision = _native_decision(answer, permits, state.decisions)
            decisions[p.index] = decision
            if decision.error is None:
                evaluated.append(p.index)
        return left



class _Reach:
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

    def closure(self, root: EntityUid, overlaid: bool) -> _Closure:
        return _Closure(root, overlaid, self.cedar_entities(), frozenset(self.out),
                        self.absent(), tuple(_ancestors(root, self.out, self._provided)))

    def absent(self) -> frozenset[EntityUid]:
        """Uids the slice references (or was asked for) but does not include."""
        referenced = self._referenced
        if not referenced:
            return frozenset()
        return frozenset(u for u in referenced if u not in self.out and u not in self._provided)


@dataclass(frozen=True, slots=True, eq=False)
class _Closure:
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

    def native_store(self, native: NativeEvaluator, actions_json: tuple[bytes, ...]
                     ) -> Store | None:
        """These entities and the action entities as the native evaluator reads them, built
        once per closure (``None``: a value it does not read)."""
        cell = self._native
        if cell and cell[0] is actions_json:
            found: Store | None = cell[1]
            return found
        found = native.store(self.entities, actions_json)
        cell[:] = [actions_json, found]
        return found

    def parsed(self) -> Any | None:
        """These entities as a parsed ``cedarpy.Entities``, from the second use on.

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
                cell[1] = cedarpy.Entities.from_json_str(_entities_json((), self.entities))
            except ValueError:
                cell[0] = -(1 << 30)  # never again
                return None
        return cell[1]

    @staticmethod
    def absent_of(parts: Sequence[_Closure]) -> frozenset[EntityUid]:
        if not any(p.absent for p in parts):
            return _NOTHING
        referenced = frozenset().union(*(p.absent for p in parts))
        return referenced.difference(*(p.found for p in parts))


def _overlaid_last(part: _Closure) -> bool:
    return part.overlaid  # a root with request properties wins over its stored self


# (generation, root, depth) or, for a root with request properties, and the properties
_MemoKey = tuple[object, EntityUid, int] | tuple[object, EntityUid, int, bytes]
_OVERLAY_MEMO_BYTES = 1024  # request properties larger than this are not memoised


_UNSEEN = object()
_SELECT_MEMO = 16_384  # (principal, action, resource) slice choices kept per generation


class _Memo:
    """A bounded, approximately least-recently-used memo of closures, keyed by generation
    (policy and store versions) and root: entries of an older generation are never hit
    again and age out.

    Two generations of entries, each at most half the size: a hit in the older one moves
    the entry to the newer; when the newer is full it becomes the older (the older is
    dropped). A read takes no lock (single dict operations are atomic); a lost race only
    drops or recomputes an entry, which is always equal."""

    __slots__ = ("_half", "_new", "_old")

    def __init__(self, max_size: int) -> None:
        self._half = max(max_size // 2, 1)
        self._new: dict[_MemoKey, _Closure] = {}
        self._old: dict[_MemoKey, _Closure] = {}

    def get(self, key: _MemoKey) -> _Closure | None:
        found = self._new.get(key)
        if found is None:
            found = self._old.get(key)
            if found is not None:
                self.put(key, found)
        return found

    def put(self, key: _MemoKey, value: _Closure) -> None:
        new = self._new
        if len(new) >= self._half:
            self._old, self._new = new, {}
            new = self._new
        new[key] = value


class _Closures:
    """The closures one ``decide`` call needs: computed once per call, and shared across
    calls through the engine's memo when the store can say when it changes."""

    __slots__ = ("_store", "_provided", "_follow", "_tags", "_limit", "_memo", "_generation",
                 "_local", "_trusted", "_selected")

    def __init__(self, store: EntityStore, provided: Mapping[EntityUid, StoredEntity],
                 follow: Collection[str], limit: int, memo: _Memo | None,
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
        self._local: dict[tuple[EntityUid, int], _Closure] = {}  # (when not memoised)
        # the policy slices chosen for (principal, action, resource), when memoised
        self._selected: dict[tuple[EntityUid, EntityUid, EntityUid], PolicySlice | None] | \
            None = {} if memo is not None else None

    @property
    def memoised(self) -> bool:
        """Whether closures of stored entities are shared across calls (one generation)."""
        return self._memo is not None

    def get(self, uid: EntityUid, depth: int,
            overlay: dict[str, Any] | None = None) -> _Closure:
        if overlay is not None:
            return self._overlaid(uid, depth, overlay)
        memo = self._memo
        if memo is not None:
            found = memo.get((self._generation, uid, depth))
            if found is None:
                found = self._compute(uid, depth, {})
                memo.put((self._generation, uid, depth), found)
            return found
        key = (uid, depth)
        found = self._local.get(key)
        if found is None:
            found = self._local[key] = self._compute(uid, depth, {})
        return found

    def select(self, index: SliceIndex, principal: EntityUid, action: EntityUid,
               action_ancestors: Iterable[EntityUid] | None, resource: EntityUid,
               parts: Sequence[_Closure]) -> PolicySlice | None:
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
            if len(memo) >= _SELECT_MEMO:
                memo.clear()
            memo[key] = chosen
        return chosen

    def _overlaid(self, uid: EntityUid, depth: int, overlay: dict[str, Any]) -> _Closure:
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
                found = memo.get((self._generation, uid, depth, content))
                if found is not None:
                    return found
            else:
                content = None
        found = self._compute(uid, depth, {uid: dict(overlay)})
        if memo is not None and content is not None:
            memo.put((self._generation, uid, depth, content), found)
        return found

    def _compute(self, uid: EntityUid, depth: int,
                 overlays: dict[EntityUid, dict[str, Any]]) -> _Closure:
        overlaid = bool(overlays)  # (the search consumes ``overlays``)
        reach = _Reach(self._store, self._provided, self._follow, self._limit, overlays,
                       self._tags, self._trusted)
        reach.add(uid, depth)
        reach.run()
        return reach.closure(uid, overlaid)


def _entities_json(first: Iterable[bytes], entities: Mapping[EntityUid, StoredEntity]) -> str:
    parts = [*first, *(_json(e) for e in entities.values())]
    return (b"[" + b",".join(parts) + b"]").decode()


class _GroupMemo:
    """A small LRU of parsed entity sets of batch groups (several requests sharing one Cedar
    call), keyed by the identities of the memoised closures they are the union of and of the
    action entities sent with them. An entry holds those closures, so no key's identities
    can be reused by other objects while it lives; closures are immutable and belong to one
    (policy version, store version) generation, so the same closures always mean the same
    entities, and a new generation means new closures (a miss)."""

    __slots__ = ("_max", "_entries", "_seen", "_lock")

    def __init__(self, max_size: int) -> None:
        self._max = max_size
        self._entries: OrderedDict[frozenset[int], tuple[tuple[object, ...], Any]] = \
            OrderedDict()
        self._seen: OrderedDict[frozenset[int], None] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: frozenset[int]) -> Any | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            self._entries.move_to_end(key)
            return found[1]

    def seen_before(self, key: frozenset[int]) -> bool:
        """Whether ``key`` was asked for before (then it is worth parsing and keeping); a
        key seen for the first time is remembered. A stale id here only means parsing a
        group one use early: what is kept is always keyed with its closures held."""
        with self._lock:
            if key in self._seen:
                del self._seen[key]
                return True
            self._seen[key] = None
            if len(self._seen) > self._max:
                self._seen.popitem(last=False)
            return False

    def put(self, key: frozenset[int], holds: tuple[object, ...], value: Any) -> None:
        with self._lock:
            self._entries[key] = (holds, value)
            if len(self._entries) > self._max:
                self._entries.popitem(last=False)


def _merged(group: Sequence[_Prepared]) -> Mapping[EntityUid, StoredEntity]:
    """The union of the group's entity slices (they agree: see ``_groups``)."""
    if len(group) == 1:
        return group[0].entities
    merged: dict[EntityUid, StoredEntity] = {}
    for p in group:
        merged.update(p.entities)
    return merged


def _cedar_entities(group: Sequence[_Prepared], actions_json: tuple[bytes, ...],
                    memo: _GroupMemo | None = None) -> Any:
    """The group's entities for Cedar: JSON text, or the parsed form of its largest reused
    closure extended with the rest (parsing only the rest). Same entities either way.

    A group of several requests whose closures are all memoised (none carries request
    properties) is parsed into one set the second time it is seen, kept in ``memo`` and
    reused when the same closures are grouped again (a PEP sending the same batch again); a
    one-off batch costs what it did."""
    if memo is not None and len(group) > 1:
        parts = {id(part): part for p in group for part in p.parts}
        key = frozenset((id(actions_json), *parts))
        if not any(part.overlaid for part in parts.values()) and (
                (found := memo.get(key)) is not None or memo.seen_before(key)):
            if found is not None:
                return found
            holds: tuple[object, ...] = (actions_json, *parts.values())
            merged = _merged(group)
            try:
                inner = cedarpy.Entities.from_json_str(
                    _entities_json(actions_json, merged))._inner
            except ValueError:
                return _entities_json(actions_json, merged)
            memo.put(key, holds, inner)
            return inner
    merged = _merged(group)
    base: _Closure | None = None
    handle: Any = None
    overlaid: set[EntityUid] = set()
    for p in group:
        for part in p.parts:
            if part.overlaid:
                overlaid.add(part.root)
            elif base is None or len(part.entities) > len(base.entities):
                parsed = part.parsed()
                if parsed is not None:
                    base, handle = part, parsed
    inside = base.entities if base is not None else {}
    if base is None or any(uid in inside for uid in overlaid):
        # (an entity with request properties differs from its stored self in the base)
        return _entities_json(actions_json, merged)
    rest = {uid: e for uid, e in merged.items() if uid not in inside}
    if not rest and not actions_json:
        return handle._inner
    try:
        return handle.with_added_json_str(_entities_json(actions_json, rest))._inner
    except ValueError:  # cannot happen with one store state; text is always right
        return _entities_json(actions_json, merged)


def _native_store(native: NativeEvaluator, parts: Sequence[_Closure],
                  actions_json: tuple[bytes, ...]) -> Store | None:
    """A request's entities for the native evaluator: the union of its closures' stores
    (request properties last). ``None`` when one of them is not native."""
    if len(parts) == 1:
        return parts[0].native_store(native, actions_json)
    stores = []
    for part in parts:
        store = part.native_store(native, actions_json)
        if store is None:
            return None
        stores.append(store)
    return native.merge(stores)


def _native_decision(answer: Answer, permits: frozenset[str] | None,
                     memo: dict[tuple[bool, tuple[str, ...]], Decision]) -> Decision:
    """The native evaluator's answer as a decision (as :func:`_decision` reads Cedar's).
    Answers without errors are few and their decisions immutable: ``memo`` keeps them."""
    if not answer.errors:
        key = (answer.allow, answer.reasons)
        found = memo.get(key)
        if found is None:
            reasons = tuple(sorted(answer.reasons))
            found = (Decision(True, "permit", reasons) if answer.allow else
                     Decision(False, "forbid" if reasons else "no_permit", reasons))
            if len(memo) >= _DECISION_MEMO:
                memo.clear()
            memo[key] = found
        return found
    errors = tuple(sorted(f"{_POLICY_ERROR}{p}`: {m}" for p, m in answer.errors))
    return _verdict(answer.allow, tuple(sorted(answer.reasons)), errors,
                    [p for p, _ in answer.errors], permits)


def _verdict(allow: bool, reasons: tuple[str, ...], errors: tuple[str, ...],
             erring: Sequence[str | None], permits: frozenset[str] | None) -> Decision:
    """Cedar's verdict as a decision, with the fail-closed rule for both evaluators: with
    ``permits`` (PDP_FORBID_ERRORS=deny), a permit stands only if every erring policy
    (``erring``; None: an error naming none) is a permit."""
    if allow:
        if errors and permits is not None and not all(p in permits for p in erring):
            return Decision(False, "error", (), errors)
        return Decision(True, "permit", reasons, errors)
    outcome = "forbid" if reasons else ("error" if errors else "no_permit")
    return Decision(False, outcome, reasons, errors)


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


def _decision(answer: Mapping[str, Any], permits: frozenset[str] | None = None) -> Decision:
    """Cedar's answer as a decision. With ``permits`` (PDP_FORBID_ERRORS=deny), a permit
    stands only if every error Cedar reports names a permit policy: an error in a forbid
    policy (or one that names no policy) denies, where Cedar would skip the forbid."""
    diagnostics = answer.get("diagnostics") or {}
    reasons = tuple(sorted(diagnostics.get("reason") or ()))
    errors = tuple(sorted(diagnostics.get("errors") or ()))
    verdict = answer.get("decision")
    if verdict in ("Allow", "Deny"):
        return _verdict(verdict == "Allow", reasons, errors,
                        [_erring_policy(e) for e in errors], permits)
    log.error("cedar returned no decision: %s", "; ".join(errors) or verdict)
    return Decision(False, "error", (), errors or ("no decision",))


def _erring_policy(error: str) -> str | None:
    """The policy a Cedar evaluation error names (None: it names none)."""
    if not error.startswith(_POLICY_ERROR):
        return None
    policy_id, sep, _ = error[len(_POLICY_ERROR):].partition("`: ")
    return policy_id if sep else None


def _groups(prepared: Sequence[_Prepared], index: SliceIndex,
            ) -> list[tuple[PolicySlice, list[_Prepared]]]:
    """Requests that can share one Cedar call, with the policy set to call it with.

    Requests with the same policy slice and agreeing entity slices share a call. When all of
    a batch's entity slices agree, the batch becomes one call with the union of its policy
    slices, if the index has (or, seeing the same union again, builds) it: the extra policies
    match none of the requests they were not chosen for, so no decision changes, and each
    Cedar call saved is its fixed cost and a parse of the entities the requests share.
    """
    if len(prepared) == 1:
        return [(prepared[0].slice, list(prepared))]
    by_slice: dict[int, list[_Prepared]] = {}
    for p in prepared:
        by_slice.setdefault(id(p.slice), []).append(p)
    groups: list[tuple[PolicySlice, list[_Prepared]]] = []
    merged: dict[EntityUid, StoredEntity] = {}
    absent: set[EntityUid] = set()
    for members in by_slice.values():
        current: list[_Prepared] = []
        merged, absent = {}, set()
        for p in members:
            if current and not _agrees(p, merged, absent):
                groups.append((current[0].slice, current))
                current, merged, absent = [], {}, set()
            current.append(p)
            merged.update(p.entities)
            absent.update(p.absent)
        groups.append((current[0].slice, current))
    if len(groups) == 1:
        return groups
    merged, absent = {}, set()
    for p in prepared:
        if not _agrees(p, merged, absent):
            return groups
        merged.update(p.entities)
        absent.update(p.absent)
    union = index.union([group[0] for group in groups])
    return groups if union is None else [(union, list(prepared))]


def _agrees(p: _Prepared, merged: Mapping[EntityUid, StoredEntity],
            absent: set[EntityUid]) -> bool:
    for uid, ent in p.entities.items():
        other = merged.get(uid)
        if other is not None and other is not ent and _json(other) != _json(ent):
            return False
        if uid in absent:
            return False
    return not any(uid in merged for uid in p.absent)
