"""The decision engine: AuthZEN requests in, decisions out, as a batch (``decide``) or one
alone (``decide_one``: the same steps without a batch's bookkeeping).

Per request: look the request up in the decision cache (:mod:`pdp.engine.cache`); on a miss,
prepare it (:mod:`pdp.engine.prepare`: translate SARC to Cedar, gather the entity slice the
request can reach, :mod:`pdp.engine.reach`, and pick the policies whose scope matches it from
the compiled slice index, :mod:`pdp.policies.index`) and hand it to the evaluators
(:mod:`pdp.engine.evaluator`: the native one, then cedarpy for what it does not take; or
cedarpy alone). Any error on the way is a deny carrying the reason, and is logged: the engine
fails closed (:mod:`pdp.engine.verdict`).

What the engine derives from a policy version is built once (:mod:`pdp.engine.version`); the
closures of entity slices are shared by the calls of one (policy version, store version)
generation (:mod:`pdp.engine.closures`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import orjson

from pdp.authzen.model import Decision, EvaluationRequest
from pdp.engine import version
from pdp.engine.cache import DecisionCache
from pdp.engine.cedarpy_batch import CedarpyEvaluator
from pdp.engine.closures import ClosureMemo, Closures
from pdp.engine.evaluator import Evaluator
from pdp.engine.native import FAILED, NativeEvaluator
from pdp.engine.options import EngineOptions
from pdp.engine.prepare import Prepared, prepare
from pdp.engine.reach import entity_json
from pdp.engine.stats import LATENCY_BOUNDS, EngineStats
from pdp.engine.version import VersionState
from pdp.entities.store import EntityStore
from pdp.errors import PDPError, SchemaViolation, StoreUnavailable, TranslationError
from pdp.policies.compiled import CompiledPolicySet
from pdp.policies.links import LinkInfo, LinkSet

__all__ = ["CedarInput", "Engine", "EngineOptions", "EngineStats", "LATENCY_BOUNDS"]

log = logging.getLogger("pdp.engine")
_NO_PERMIT = Decision(False, "no_permit")
_NOT_EVALUATED = Decision(False, "error", errors=("not evaluated",))


@dataclass(frozen=True, slots=True)
class CedarInput:
    """See :meth:`Engine.cedar_input`."""

    request: dict[str, Any]
    entities: list[dict[str, Any]]
    policy_ids: tuple[str, ...]


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
        self._state: VersionState | None = None
        self._ahead: VersionState | None = None  # built for a set about to be served
        budget = self._options.decision_cache_bytes
        self._cache = DecisionCache(budget) if budget > 0 else None
        closure_size = self._options.closure_cache_size
        self._closure_memo = ClosureMemo(closure_size) if closure_size > 0 else None
        self._shared_closures: tuple[tuple[str, int], VersionState, Closures] | None = None
        self._held: tuple[CompiledPolicySet, LinkSet | None, int, VersionState, Closures] | \
            None = None  # see _current
        prefix = f"{self._options.namespace}::" if self._options.namespace else ""
        self._trusted = frozenset(
            prefix + entry if "." in entry else entry
            for entry in self._options.trusted_properties)
        self.stats = EngineStats()
        # The evaluators PDP_EVALUATOR picks, in order: each decides what the one before
        # left undecided (the native evaluator, then cedarpy; or cedarpy alone).
        options = self._options
        self._native = NativeEvaluator(forbid_errors=options.forbid_errors) \
            if options.evaluator == "native" else None
        cedarpy = self._cedarpy = CedarpyEvaluator(options)
        self._evaluators: tuple[Evaluator, ...] = \
            (self._native, cedarpy) if self._native is not None else (cedarpy,)
        self._authorize = tuple(e.authorize_batch for e in self._evaluators)  # bound once

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

    def refresh(self, compiled: CompiledPolicySet | None = None) -> None:
        """Derive what the engine needs for ``compiled`` (default: the current policy set)
        now. The reloader calls this on its own thread with the set it is about to serve,
        before it swaps the set in: requests keep deciding with the state in force until
        then, and the first one after the swap finds the new state ready (building it, the
        native code of a large set, takes seconds that no request should wait)."""
        current = self._policies()
        if compiled is None or compiled is current:
            state = self._version_state(current)
        else:
            state = version.build(compiled, self._store.links(), self._options, self._trusted)
            self._ahead = state
        for evaluator in self._evaluators:
            evaluator.prepare(state.compiled, state.slices)

    def links(self) -> Mapping[str, LinkInfo]:
        """Every template link in force (the policy set's files' and the store's), by id."""
        return self._version_state(self._policies()).links

    def policy_set(self) -> Any:
        """The whole current policy set as Cedar evaluates it, stored links included
        (a :mod:`pdp.cedar._cedarpy` policy set handle; for partial evaluation)."""
        return self._version_state(self._policies()).policy_set()

    def cedar_input(self, request: EvaluationRequest) -> CedarInput:
        """What Cedar is given for ``request``: the Cedar request, the entities (Cedar JSON)
        and the ids of the policies in its slice (for debugging and benchmarks).

        Raises what translation raises (TranslationError) or the store raises."""
        state, closures, _ = self._current()
        p = prepare(0, request, state, closures, self._options.entity_depth)
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
        entities.extend(orjson.loads(entity_json(e)) for e in p.entities.values())
        return CedarInput(cedar, entities, p.slice.policy_ids)

    def decide(self, requests: Sequence[EvaluationRequest]) -> list[Decision]:
        if len(requests) == 1:
            return [self.decide_one(requests[0])]
        started = time.perf_counter_ns()
        state, closures, store_version = self._current()
        count = len(requests)
        decisions: list[Decision | None] = [None] * count
        cache = self._cache
        generation: tuple[str, int] | None = None
        keys: list[bytes | None] = []
        if cache is not None:
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
        prepared: list[Prepared] = []
        depth = self._options.entity_depth
        for i, req in enumerate(requests):
            if decisions[i] is not None:
                continue
            p = _prepared(i, req, state, closures, depth)
            if p is None:  # no policy's scope matches: Cedar would deny with no reasons
                decisions[i] = _NO_PERMIT
                evaluated.append(i)
            elif type(p) is Decision:  # refused
                decisions[i] = p
            else:
                prepared.append(cast(Prepared, p))
        if prepared:
            shared = closures.memoised
            for authorize in self._authorize:
                prepared = authorize(prepared, state, decisions, evaluated, shared)
                if not prepared:
                    break
        # (``is None``, not ``None in``: that would call each Decision's ``__eq__``)
        final = [d if d is not None else _NOT_EVALUATED for d in decisions] \
            if any(d is None for d in decisions) else cast(list[Decision], decisions)
        if generation is not None and cache is not None:
            for i in evaluated:
                key = keys[i]
                if key is not None:
                    cache.put(generation, key, final[i])
        self.stats.observe(time.perf_counter_ns() - started, final)
        return final

    def decide_one(self, request: EvaluationRequest) -> Decision:
        """``decide([request])[0]``: the same steps for one request, without a batch's
        bookkeeping (the evaluators' batch calls, the lists of indices)."""
        started = time.perf_counter_ns()
        state, closures, store_version = self._current()
        cache = self._cache
        generation: tuple[str, int] | None = None
        key: bytes | None = None
        if cache is not None:
            if store_version is None:
                cache.bypasses += 1
            else:
                generation = (state.version, store_version)
                key = cache.key(request)
                if key is not None:
                    hit = cache.get(generation, key)
                    if hit is not None:
                        self.stats.observe_one(time.perf_counter_ns() - started, hit)
                        return hit
        p = _prepared(0, request, state, closures, self._options.entity_depth)
        cacheable = True
        if p is None:  # no policy's scope matches: Cedar would deny with no reasons
            decision = _NO_PERMIT
        elif type(p) is Decision:  # refused
            decision, cacheable = p, False
        else:
            prepared = cast(Prepared, p)
            native = self._native
            found = None if native is None else native.decide(prepared, state)
            if found is None:  # not native: cedarpy's
                decided: list[Decision | None] = [None]
                evaluated: list[int] = []
                self._cedarpy.authorize_batch([prepared], state, decided, evaluated,
                                              closures.memoised)
                decision = decided[0] or _NOT_EVALUATED
                cacheable = bool(evaluated)
            else:
                decision = found
                cacheable = found is not FAILED
        if key is not None and cacheable and generation is not None and cache is not None:
            cache.put(generation, key, decision)
        self.stats.observe_one(time.perf_counter_ns() - started, decision)
        return decision

    # -- preparation ----------------------------------------------------------------------

    def _current(self) -> tuple[VersionState, Closures, int | None]:
        """The version state and the closures of a call (``_version_state`` and
        ``_closures_for``), remembered for as long as the policy set, the stored links and
        the store's version stay the same (when the store has versions and closures are
        shared); and the store's version, read before any entity is (None: it has none)."""
        compiled = self._policies()
        stored = self._store.links()
        store_version = self._store.version  # before any entity is read
        held = self._held
        if held is not None and held[0] is compiled and held[1] is stored \
                and held[2] == store_version:
            return held[3], held[4], store_version
        state = self._version_state(compiled)
        closures = self._closures_for(state)
        if store_version is not None and closures.memoised:
            self._held = (compiled, stored, store_version, state, closures)
        return state, closures, store_version

    def _version_state(self, compiled: CompiledPolicySet) -> VersionState:
        state = self._state
        stored: LinkSet | None = self._store.links()
        if state is not None and state.compiled is compiled:
            if state.stored is stored:
                return state
            state = version.with_links(state, stored)
            self._state = state
            return state
        ahead = self._ahead
        if ahead is not None and ahead.compiled is compiled:  # built before the swap
            state = ahead if ahead.stored is stored else version.with_links(ahead, stored)
            self._ahead = None
        else:
            state = version.build(compiled, stored, self._options, self._trusted)
        self._state = state
        return state

    def _closures_for(self, state: VersionState) -> Closures:
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

    def _new_closures(self, state: VersionState, memo: ClosureMemo | None,
                      generation: tuple[str, int] | None) -> Closures:
        return Closures(self._store, state.actions, state.slices.followed,
                        self._options.entity_depth, memo, generation,
                        tags=state.slices.tags_read, trusted=state.trusted)


def _prepared(i: int, req: EvaluationRequest, state: VersionState, closures: Closures,
              depth: int) -> Prepared | Decision | None:
    """Request ``i`` prepared (:func:`~pdp.engine.prepare.prepare`; ``None``: no policy's
    scope matches it), or the decision refusing it: a request the translation refuses is
    answered with its error, one the store fails on otherwise is a logged deny. The store
    being unreachable fails the whole call (StoreUnavailable)."""
    try:
        return prepare(i, req, state, closures, depth)
    except TranslationError as exc:
        return Decision(False, "invalid" if isinstance(exc, SchemaViolation) else "error",
                        error={"status": 400, "message": exc.message})
    except StoreUnavailable:
        raise
    except PDPError as exc:
        log.warning("request %d could not be prepared: %s", i, exc.message)
        return Decision(False, "error", errors=(exc.message,))
