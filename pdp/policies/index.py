"""Slice index: from a request's principal, action and resource to the policies that can apply.

Cedar evaluates every policy of the set it is given, so a request against a large set pays
for every policy whose head could never match it. The index reads each policy head once, at
compile time, and answers per request with the sub-``PolicySet`` of the policies whose head
*does* match; Cedar then evaluates only those.

Exactness. A policy head (its scope) is a conjunction of one constraint per variable, and
Cedar evaluates the scope before the conditions (short-circuiting ``&&``), so a policy whose
scope does not match is never satisfied and never reports an error. Scope constraints depend
only on the request's entity uids, their entity types and their ancestors. The engine knows
those ancestors exactly (it hands Cedar the entity slice the request can reach, every ancestor
included), so the index matches scopes exactly rather than conservatively:

=============================  =====================================================
constraint                     matches the request entity ``e`` when
=============================  =====================================================
none (``principal``)           always
``== E``                       ``e`` is ``E``
``in E``                       ``e`` is ``E`` or ``E`` is an ancestor of ``e``
``is T``                       ``e`` has type ``T``
``is T in E``                  both of the above
``action in [A1, A2]``         the action is, or descends from, one of them
=============================  =====================================================

Templates match nothing until linked; a template-linked policy is indexed with its slots
filled in. A constraint the index does not understand matches every request (the safe
side). The answer therefore contains exactly the policies that the full set would evaluate
past their scope, which makes the decision, the determining policies and the errors those of
the full set (``tests/policies/test_index_differential.py`` checks this against cedarpy on
generated policy sets, requests and entity graphs).

Layout. Each policy contributes one key per variable (a policy with ``action in [A, B]``
contributes two); the keys form a three-level tree ``action → principal → resource → bucket``
of policy numbers. A request enumerates the keys it presents (its uid, its type, its
ancestors, ``*``) and collects the buckets it reaches: a few dozen dictionary lookups,
independent of the size of the set.

Sub-sets are built lazily, on the first request that needs a given combination of buckets,
with ``cedarpy.PolicySet.from_json_str`` from the policies' JSON form (keeping each policy's
id, so determining policies read the same), and memoised in a bounded LRU attached to this
immutable index; a reload builds a new index and the old one is dropped with its memo.
Building eagerly is not an option: the number of bucket combinations grows with the number of
entities, not policies. A lazily built slice costs about as much as one uncached decision
(microseconds per policy in it), and the memo makes it a one-off.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import cedarpy
import orjson

__all__ = ["PolicySlice", "SliceIndex", "TemplateLink", "DEFAULT_SLICE_CACHE_SIZE"]

EntityUid = tuple[str, str]
_Key = tuple[Any, ...]

DEFAULT_SLICE_CACHE_SIZE = 4096

_ANY: _Key = ("*",)


class IndexedPolicy(Protocol):
    """What the index reads of a loaded policy (``pdp.policies.compiled.PolicyInfo``)."""

    @property
    def id(self) -> str: ...

    @property
    def est(self) -> Mapping[str, Any]: ...

    @property
    def template(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class TemplateLink:
    """A template-linked policy: ``new_id`` is ``template_id`` with its slots filled in."""

    template_id: str
    new_id: str
    values: Mapping[str, EntityUid]  # "?principal" / "?resource" → entity uid


@dataclass(frozen=True, slots=True, eq=False)
class PolicySlice:
    """The policies a group of requests can match, as one cedarpy ``PolicySet``.

    Two requests with the same ``key`` share the same ``policy_set`` object.
    """

    key: tuple[int, ...]
    policy_set: Any  # cedarpy.PolicySet
    policy_ids: tuple[str, ...]
    literals: tuple[EntityUid, ...]  # entities these policies' conditions name


@dataclass(frozen=True, slots=True)
class _Entry:
    id: str
    est: Mapping[str, Any]
    link: TemplateLink | None = None
    literals: tuple[EntityUid, ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class SliceIndex:
    """Immutable but for the memo of built sub-sets, which is private and thread-safe."""

    full: Any  # cedarpy.PolicySet: the whole set
    _entries: tuple[_Entry, ...]
    _templates: Mapping[str, Mapping[str, Any]]
    _tree: Mapping[_Key, Mapping[_Key, Mapping[_Key, int]]]
    _buckets: tuple[tuple[int, ...], ...]
    _cache_size: int
    attributes: frozenset[str]  # every attribute name some policy reads (`.a`, `has a`)
    _memo: OrderedDict[tuple[int, ...], PolicySlice] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def build(cls, policy_set: Any, policies: Sequence[IndexedPolicy],
              links: Sequence[TemplateLink] = (), *,
              cache_size: int = DEFAULT_SLICE_CACHE_SIZE) -> SliceIndex:
        """Index ``policies`` (static policies and templates) and the template ``links``."""
        entries: list[_Entry] = []
        templates: dict[str, Mapping[str, Any]] = {}
        for p in policies:
            if p.template:
                templates[p.id] = p.est
            else:
                entries.append(_Entry(p.id, p.est, None, _literals(p.est)))
        for link in links:
            if link.template_id in templates:
                est = templates[link.template_id]
                entries.append(_Entry(link.new_id, est, link, _literals(est)))
        tree: dict[_Key, dict[_Key, dict[_Key, list[int]]]] = {}
        for n, entry in enumerate(entries):
            slots = entry.link.values if entry.link is not None else {}
            pkey = _scope_key(entry.est.get("principal"), slots)
            rkey = _scope_key(entry.est.get("resource"), slots)
            for akey in _action_keys(entry.est.get("action")):
                tree.setdefault(akey, {}).setdefault(pkey, {}).setdefault(rkey, []).append(n)
        buckets: list[tuple[int, ...]] = []
        frozen: dict[_Key, dict[_Key, dict[_Key, int]]] = {}
        for akey, by_p in tree.items():
            for pkey, by_r in by_p.items():
                for rkey, members in by_r.items():
                    frozen.setdefault(akey, {}).setdefault(pkey, {})[rkey] = len(buckets)
                    buckets.append(tuple(members))
        attributes: set[str] = set()
        for p in policies:
            _attribute_names(p.est, attributes)
        return cls(policy_set, tuple(entries), templates, frozen, tuple(buckets),
                   max(cache_size, 0), frozenset(attributes))

    def __len__(self) -> int:
        """Number of policies that can match a request (static and template-linked)."""
        return len(self._entries)

    def select(self, principal: EntityUid, principal_ancestors: Iterable[EntityUid],
               action: EntityUid, action_ancestors: Iterable[EntityUid],
               resource: EntityUid, resource_ancestors: Iterable[EntityUid],
               ) -> PolicySlice | None:
        """The policies whose scope matches the request; None when none does.

        The ancestor collections must be every ancestor (transitively) of each entity in the
        entities Cedar will be given: an entity Cedar does not know has none.
        """
        tree = self._tree
        found: list[int] = []
        pkeys: list[_Key] | None = None
        rkeys: list[_Key] | None = None
        for akey in _action_request_keys(action, action_ancestors):
            by_p = tree.get(akey)
            if by_p is None:
                continue
            if pkeys is None:
                pkeys = _request_keys(principal, principal_ancestors)
                rkeys = _request_keys(resource, resource_ancestors)
            assert rkeys is not None
            for pkey in pkeys:
                by_r = by_p.get(pkey)
                if by_r is None:
                    continue
                for rkey in rkeys:
                    bucket = by_r.get(rkey)
                    if bucket is not None:
                        found.append(bucket)
        if not found:
            return None
        if len(found) > 1:
            found.sort()
        return self._slice(tuple(found))

    def memo_size(self) -> int:
        return len(self._memo)

    # -- building sub-sets ------------------------------------------------------------------

    def _slice(self, key: tuple[int, ...]) -> PolicySlice:
        memo = self._memo
        with self._lock:
            hit = memo.get(key)
            if hit is not None:
                memo.move_to_end(key)
                return hit
        built = self._build(key)
        if self._cache_size:
            with self._lock:
                memo[key] = built
                if len(memo) > self._cache_size:
                    memo.popitem(last=False)
        return built

    def _build(self, key: tuple[int, ...]) -> PolicySlice:
        members: set[int] = set()
        for bucket in key:
            members.update(self._buckets[bucket])
        static: dict[str, Mapping[str, Any]] = {}
        templates: dict[str, Mapping[str, Any]] = {}
        links: list[dict[str, Any]] = []
        ids: list[str] = []
        literals: dict[EntityUid, None] = {}
        for n in sorted(members):
            entry = self._entries[n]
            ids.append(entry.id)
            literals.update(dict.fromkeys(entry.literals))
            if entry.link is None:
                static[entry.id] = entry.est
                continue
            templates[entry.link.template_id] = self._templates[entry.link.template_id]
            links.append({
                "templateId": entry.link.template_id, "newId": entry.id,
                "values": {slot: {"type": t, "id": i}
                           for slot, (t, i) in entry.link.values.items()}})
        doc = {"staticPolicies": static, "templates": templates, "templateLinks": links}
        text = orjson.dumps(doc, default=_plain).decode()
        return PolicySlice(key, cedarpy.PolicySet.from_json_str(text), tuple(ids),
                           tuple(literals))


def _literals(est: Mapping[str, Any]) -> tuple[EntityUid, ...]:
    """Entity literals in a policy's conditions (``User::"bob".level``, ``G::"a" in G::"b"``):
    the engine adds them to the entity slice, since their data can decide the policy."""
    found: dict[EntityUid, None] = {}
    stack: list[Any] = [est.get("conditions")]
    while stack:
        current = stack.pop()
        if isinstance(current, Mapping):
            if "__entity" in current:
                uid = _uid(current)
                if uid is not None:
                    found[uid] = None
                    continue
            stack.extend(v for v in current.values() if isinstance(v, Mapping | list))
        elif isinstance(current, list):
            stack.extend(v for v in current if isinstance(v, Mapping | list))
    return tuple(found)


def _attribute_names(node: Any, out: set[str]) -> None:
    """Collect the attribute names an EST expression reads (``.`` and ``has``)."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, Mapping):
            for op in (".", "has"):
                access = current.get(op)
                if isinstance(access, Mapping) and isinstance(access.get("attr"), str):
                    out.add(access["attr"])
            stack.extend(v for v in current.values() if isinstance(v, Mapping | list))
        elif isinstance(current, list):
            stack.extend(v for v in current if isinstance(v, Mapping | list))


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# -- keys -----------------------------------------------------------------------------------


def _uid(ref: Any) -> EntityUid | None:
    if not isinstance(ref, Mapping):
        return None
    ref = ref.get("__entity", ref)
    if not isinstance(ref, Mapping):
        return None
    t, i = ref.get("type"), ref.get("id")
    if isinstance(t, str) and isinstance(i, str):
        return (t, i)
    return None


def _target(constraint: Mapping[str, Any], slots: Mapping[str, EntityUid]) -> EntityUid | None:
    """The entity a constraint names, directly or through a (filled) template slot."""
    if "slot" in constraint:
        slot = constraint.get("slot")
        return slots.get(slot) if isinstance(slot, str) else None
    return _uid(constraint.get("entity"))


def _scope_key(constraint: Any, slots: Mapping[str, EntityUid]) -> _Key:
    """The one key a principal or resource constraint requires of the request."""
    if not isinstance(constraint, Mapping):
        return _ANY
    op = constraint.get("op")
    if op in ("==", "in"):
        target = _target(constraint, slots)
        return _ANY if target is None else (op, target)
    if op == "is":
        etype = constraint.get("entity_type")
        if not isinstance(etype, str):
            return _ANY
        inner = constraint.get("in")
        if inner is None:
            return ("is", etype)
        target = _target(inner, slots) if isinstance(inner, Mapping) else None
        return ("is", etype) if target is None else ("is in", etype, target)
    return _ANY  # "All", or anything newer than this index: matches every request


def _action_keys(constraint: Any) -> list[_Key]:
    """The keys an action constraint accepts (a request must present one of them)."""
    if not isinstance(constraint, Mapping):
        return [_ANY]
    op = constraint.get("op")
    if op == "==":
        target = _uid(constraint.get("entity"))
        return [_ANY] if target is None else [("==", target)]
    if op == "in":
        if "entities" in constraint:
            raw = constraint.get("entities")
            if not isinstance(raw, list):
                return [_ANY]
            targets = [_uid(e) for e in raw]
            if any(t is None for t in targets):
                return [_ANY]
            return [("in", t) for t in dict.fromkeys(targets)]  # `in []` matches nothing
        target = _uid(constraint.get("entity"))
        return [_ANY] if target is None else [("in", target)]
    return [_ANY]


def _request_keys(uid: EntityUid, ancestors: Iterable[EntityUid]) -> list[_Key]:
    """Every principal/resource key a request entity satisfies."""
    etype = uid[0]
    keys: list[_Key] = [_ANY, ("==", uid), ("in", uid), ("is", etype), ("is in", etype, uid)]
    for a in ancestors:
        keys.append(("in", a))
        keys.append(("is in", etype, a))
    return keys


def _action_request_keys(uid: EntityUid, ancestors: Iterable[EntityUid]) -> list[_Key]:
    keys: list[_Key] = [_ANY, ("==", uid), ("in", uid)]
    keys.extend(("in", a) for a in ancestors)
    return keys
