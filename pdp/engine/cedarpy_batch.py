"""The cedarpy evaluator: prepared requests decided by Cedar itself, through
:mod:`pdp.cedar._cedarpy`.

Batching. Requests of one call whose policy slices are the same share one Cedar call when
their entity slices agree: no entity with two different contents, and no entity that one
request's slice deliberately leaves out (missing from the store, or past the depth limit)
present in another's. Each request therefore sees exactly the entities it would see alone, so
a batch decides every item as a single evaluation would. The entity set of such a group, when
all its closures are memoised, is parsed by Cedar once and kept (a small LRU keyed by those
closures): the same batch sent again costs Cedar no entity parsing at all. (The native
evaluator decides each request over its own slice: it needs no grouping.)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from pdp.authzen.model import Decision
from pdp.caches import LRU
from pdp.cedar._cedarpy import authorize_batch, entities_handle, extend_entities, parse_entities
from pdp.engine.options import EngineOptions
from pdp.engine.prepare import Prepared
from pdp.engine.reach import Closure, entities_json, entity_json
from pdp.engine.verdict import cedar_decision
from pdp.engine.version import VersionState
from pdp.entities.model import EntityUid, StoredEntity
from pdp.errors import CedarInputError
from pdp.policies.compiled import CompiledPolicySet
from pdp.policies.index import PolicySlice, SliceIndex

__all__ = ["CedarpyEvaluator"]

log = logging.getLogger("pdp.engine")


class CedarpyEvaluator:
    """Decides prepared requests with cedarpy, requests of one call sharing a Cedar call
    where they can (see the module's docstring)."""

    def __init__(self, options: EngineOptions) -> None:
        self._deny_erring_forbids = options.forbid_errors == "deny"
        # Parsed entity sets of whole batch groups, keyed by the memoised closures they are
        # the union of (see _cedar_entities); only used with the closure memo.
        self._group_memo: _GroupMemo | None = \
            _GroupMemo(64) if options.closure_cache_size > 0 else None

    def prepare(self, compiled: CompiledPolicySet, index: SliceIndex | None = None) -> None:
        """Nothing to do: the slice index holds each slice's Cedar policy set."""

    def authorize_batch(self, prepared: Sequence[Prepared], state: VersionState,
                        decisions: list[Decision | None], evaluated: list[int],
                        shared: bool) -> list[Prepared]:
        group_memo = self._group_memo if shared else None
        for policy_slice, group in _groups(prepared, state.slices):
            self._evaluate(policy_slice, group, state, decisions, evaluated, group_memo)
        return []

    def _evaluate(self, policy_slice: PolicySlice, group: Sequence[Prepared],
                  state: VersionState, decisions: list[Decision | None],
                  evaluated: list[int], group_memo: _GroupMemo | None = None) -> None:
        try:
            answers = authorize_batch([p.cedar for p in group], policy_slice.policy_set,
                                      _cedar_entities(group, state.actions_json, group_memo))
        except Exception as exc:  # noqa: BLE001 - any engine failure is a deny
            log.error("cedar evaluation failed: %s", exc)
            for p in group:
                decisions[p.index] = Decision(False, "error", errors=("evaluation failed",))
            return
        permits = state.permits if self._deny_erring_forbids else None
        for p, answer in zip(group, answers, strict=True):
            decision = cedar_decision(answer, permits)
            decisions[p.index] = decision
            if decision.error is None:
                evaluated.append(p.index)


class _GroupMemo:
    """A small LRU of parsed entity sets of batch groups (several requests sharing one Cedar
    call), keyed by the identities of the memoised closures they are the union of and of the
    action entities sent with them. An entry holds those closures, so no key's identities
    can be reused by other objects while it lives; closures are immutable and belong to one
    (policy version, store version) generation, so the same closures always mean the same
    entities, and a new generation means new closures (a miss)."""

    __slots__ = ("_entries", "_seen", "_lock")

    def __init__(self, max_size: int) -> None:
        self._entries: LRU[frozenset[int], tuple[tuple[object, ...], Any]] = LRU(max_size)
        self._seen: LRU[frozenset[int], None] = LRU(max_size)
        self._lock = threading.Lock()

    def get(self, key: frozenset[int]) -> Any | None:
        with self._lock:
            found = self._entries.get(key)
            return None if found is None else found[1]

    def seen_before(self, key: frozenset[int]) -> bool:
        """Whether ``key`` was asked for before (then it is worth parsing and keeping); a
        key seen for the first time is remembered. A stale id here only means parsing a
        group one use early: what is kept is always keyed with its closures held."""
        with self._lock:
            if key in self._seen:
                del self._seen[key]
                return True
            self._seen.put(key, None)
            return False

    def put(self, key: frozenset[int], holds: tuple[object, ...], value: Any) -> None:
        with self._lock:
            self._entries.put(key, (holds, value))


def _merged(group: Sequence[Prepared]) -> Mapping[EntityUid, StoredEntity]:
    """The union of the group's entity slices (they agree: see ``_groups``)."""
    if len(group) == 1:
        return group[0].entities
    merged: dict[EntityUid, StoredEntity] = {}
    for p in group:
        merged.update(p.entities)
    return merged


def _cedar_entities(group: Sequence[Prepared], actions_json: tuple[bytes, ...],
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
                inner = entities_handle(parse_entities(entities_json(actions_json, merged)))
            except CedarInputError:
                return entities_json(actions_json, merged)
            memo.put(key, holds, inner)
            return inner
    merged = _merged(group)
    base: Closure | None = None
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
        return entities_json(actions_json, merged)
    rest = {uid: e for uid, e in merged.items() if uid not in inside}
    if not rest and not actions_json:
        return entities_handle(handle)
    try:
        return entities_handle(extend_entities(handle, entities_json(actions_json, rest)))
    except CedarInputError:  # cannot happen with one store state; text is always right
        return entities_json(actions_json, merged)


def _groups(prepared: Sequence[Prepared], index: SliceIndex,
            ) -> list[tuple[PolicySlice, list[Prepared]]]:
    """Requests that can share one Cedar call, with the policy set to call it with.

    Requests with the same policy slice and agreeing entity slices share a call. When all of
    a batch's entity slices agree, the batch becomes one call with the union of its policy
    slices, if the index has (or, seeing the same union again, builds) it: the extra policies
    match none of the requests they were not chosen for, so no decision changes, and each
    Cedar call saved is its fixed cost and a parse of the entities the requests share.
    """
    if len(prepared) == 1:
        return [(prepared[0].slice, list(prepared))]
    by_slice: dict[int, list[Prepared]] = {}
    for p in prepared:
        by_slice.setdefault(id(p.slice), []).append(p)
    groups: list[tuple[PolicySlice, list[Prepared]]] = []
    merged: dict[EntityUid, StoredEntity] = {}
    absent: set[EntityUid] = set()
    for members in by_slice.values():
        current: list[Prepared] = []
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


def _agrees(p: Prepared, merged: Mapping[EntityUid, StoredEntity],
            absent: set[EntityUid]) -> bool:
    for uid, ent in p.entities.items():
        other = merged.get(uid)
        if other is not None and other is not ent and entity_json(other) != entity_json(ent):
            return False
        if uid in absent:
            return False
    return not any(uid in merged for uid in p.absent)
