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
of policy numbers, each level split by kind of constraint (any, ``==``, ``in``, ``is``,
``is in``). A request probes each level with its uid, its type and its ancestors and collects
the buckets it reaches: a handful of dictionary lookups, independent of the size of the set.

The index also reads the policies' conditions once (``_DataFlow``) to tell the engine which
attributes are ever read *through* (so which entity references its entity slice must follow)
and which entity literals a policy needs the data of.

Sub-sets are built lazily, on the first request that needs a given combination of buckets,
with ``cedarpy.PolicySet.from_json_str`` from the policies' JSON form (keeping each policy's
id, so determining policies read the same), and memoised in a bounded LRU attached to this
immutable index; a reload builds a new index, and the old one is retired with its memo.
Building eagerly is not an option: the number of bucket combinations grows with the number of
entities, not policies. Building a slice costs Cedar 7 to 20 µs per policy in it (measured;
more for longer conditions), once: in the benchmark's 10,000-policy set, 2,000 different
requests needed 443 distinct slices of a handful of policies each.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from pdp.caches import LRU
from pdp.cedar import _cedarpy

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


class Link(Protocol):
    """A template-linked policy: ``new_id`` is ``template_id`` with its slots filled in."""

    @property
    def template_id(self) -> str: ...

    @property
    def new_id(self) -> str: ...

    @property
    def values(self) -> Mapping[str, EntityUid]: ...


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
    link: Link | None = None
    literals: tuple[EntityUid, ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class SliceIndex:
    """Immutable but for the memo of built sub-sets, which is private and thread-safe."""

    full: Any  # cedarpy.PolicySet: the whole set
    _entries: tuple[_Entry, ...]
    _templates: Mapping[str, Mapping[str, Any]]
    _tree: _Node  # action → principal → resource → bucket number
    _buckets: tuple[tuple[int, ...], ...]
    _cache_size: int
    attributes: frozenset[str]  # every attribute name some policy reads (`.a`, `has a`)
    # attributes through which an entity's *data* (attributes, ancestors) can be needed: see
    # ``_DataFlow``; the engine follows entity references through these only
    followed: frozenset[str]
    _literals: Mapping[str, tuple[EntityUid, ...]] = field(default_factory=dict)  # templates'
    _links: Mapping[str, int] = field(default_factory=dict)  # link id → its entry number
    _count: int = -1  # policies that can match (entries less removed links); -1: all entries
    tags_read: bool = False  # some policy reads entity tags (the engine follows them then)
    # built sub-sets, and the unions asked for once (see ``union``): LRUs under ``_lock``
    _memo: LRU[tuple[int, ...], PolicySlice] = field(
        default_factory=lambda: LRU(DEFAULT_SLICE_CACHE_SIZE))
    _unions: LRU[tuple[int, ...], None] = field(
        default_factory=lambda: LRU(DEFAULT_SLICE_CACHE_SIZE))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def build(cls, policy_set: Any, policies: Sequence[IndexedPolicy],
              links: Iterable[Link] = (), *,
              cache_size: int = DEFAULT_SLICE_CACHE_SIZE) -> SliceIndex:
        """Index ``policies`` (static policies and templates) and the template ``links``."""
        entries: list[_Entry] = []
        templates: dict[str, Mapping[str, Any]] = {}
        flow = _DataFlow()
        literals: dict[str, tuple[EntityUid, ...]] = {}
        for p in policies:
            literals[p.id] = flow.policy(p.est)
            if p.template:
                templates[p.id] = p.est
            else:
                entries.append(_Entry(p.id, p.est, None, literals[p.id]))
        if not flow.exact:  # some value's use could not be traced: every literal counts
            literals = {p.id: _every_literal(p.est) for p in policies}
            entries = [_Entry(e.id, e.est, e.link, literals[e.id]) for e in entries]
        for link in links:
            if link.template_id in templates:
                est = templates[link.template_id]
                entries.append(_Entry(link.new_id, est, link, literals[link.template_id]))
        tree: dict[_Key, dict[_Key, dict[_Key, list[int]]]] = {}
        action_keys: dict[int, list[_Key]] = {}
        for n, entry in enumerate(entries):
            slots = entry.link.values if entry.link is not None else {}
            pkey = _scope_key(entry.est.get("principal"), slots)
            rkey = _scope_key(entry.est.get("resource"), slots)
            akeys = action_keys.get(id(entry.est))  # the same for every link of a template
            if akeys is None:
                akeys = action_keys[id(entry.est)] = _action_keys(entry.est.get("action"))
            for akey in akeys:
                tree.setdefault(akey, {}).setdefault(pkey, {}).setdefault(rkey, []).append(n)
        buckets: list[tuple[int, ...]] = []

        def bucket(members: list[int]) -> int:
            buckets.append(tuple(members))
            return len(buckets) - 1

        frozen = _node({akey: _node({pkey: _node({rkey: bucket(members)
                                                   for rkey, members in by_r.items()})
                                     for pkey, by_r in by_p.items()})
                        for akey, by_p in tree.items()})
        return cls(policy_set, tuple(entries), templates, frozen, tuple(buckets),
                   max(cache_size, 0), frozenset(flow.read),
                   frozenset(flow.dereferenced if flow.exact else flow.read),
                   {tid: literals[tid] for tid in templates},
                   {e.id: n for n, e in enumerate(entries) if e.link is not None},
                   tags_read=flow.tags, _memo=LRU(max(cache_size, 0)),
                   _unions=LRU(max(cache_size, 1)))

    def linked(self, add: Iterable[Link] = (), remove: Iterable[str] = ()) -> SliceIndex:
        """This index with template links added and removed (by id), at a cost that grows
        with the change, not with the links already indexed: only the buckets the changed
        links fall in are replaced (under new numbers), and the tree nodes on their paths
        are copied. Everything else is shared, the memo of built sub-sets included: a bucket
        number always means the same members, so a memoised slice stays right. Links of a
        template this index does not have are ignored (the caller checks links first)."""
        entries = list(self._entries)
        buckets = list(self._buckets)
        numbers = dict(self._links)
        changes: dict[tuple[_Key, _Key, _Key], tuple[list[int], set[int]]] = {}

        def paths(entry: _Entry) -> list[tuple[_Key, _Key, _Key]]:
            slots = entry.link.values if entry.link is not None else {}
            pkey = _scope_key(entry.est.get("principal"), slots)
            rkey = _scope_key(entry.est.get("resource"), slots)
            return [(akey, pkey, rkey) for akey in _action_keys(entry.est.get("action"))]

        for link_id in remove:
            n = numbers.pop(link_id, None)
            if n is not None:
                for path in paths(entries[n]):
                    changes.setdefault(path, ([], set()))[1].add(n)
        for link in add:
            est = self._templates.get(link.template_id)
            if est is None:
                continue
            old = numbers.get(link.new_id)
            if old is not None:  # replaced: the old one goes
                for path in paths(entries[old]):
                    changes.setdefault(path, ([], set()))[1].add(old)
            entry = _Entry(link.new_id, est, link, self._literals.get(link.template_id, ()))
            numbers[link.new_id] = len(entries)
            entries.append(entry)
            for path in paths(entry):
                changes.setdefault(path, ([], set()))[0].append(numbers[link.new_id])
        if not changes:
            return self
        by_action: dict[_Key, dict[_Key, dict[_Key, int]]] = {}
        for (akey, pkey, rkey), (added, removed) in changes.items():
            by_p = _child(self._tree, akey)
            by_r = _child(by_p, pkey) if by_p is not None else None
            current = _child(by_r, rkey) if by_r is not None else None
            members = [m for m in (buckets[current] if current is not None else ())
                       if m not in removed]
            members.extend(m for m in added if m not in removed)
            buckets.append(tuple(sorted(members)))
            by_action.setdefault(akey, {}).setdefault(pkey, {})[rkey] = len(buckets) - 1
        tree = _with(self._tree, {
            akey: _with(_child(self._tree, akey) or _EMPTY, {
                pkey: _with(_child(_child(self._tree, akey) or _EMPTY, pkey) or _EMPTY, by_r)
                for pkey, by_r in by_p.items()})
            for akey, by_p in by_action.items()})
        statics = sum(1 for e in self._entries if e.link is None) if self._count < 0 \
            else self._count - len(self._links)
        return dataclasses.replace(self, _entries=tuple(entries), _tree=tree,
                                   _buckets=tuple(buckets), _links=numbers,
                                   _count=statics + len(numbers))

    def __len__(self) -> int:
        """Number of policies that can match a request (static and template-linked)."""
        return len(self._entries) if self._count < 0 else self._count

    def select(self, principal: EntityUid, principal_ancestors: Iterable[EntityUid],
               action: EntityUid, action_ancestors: Iterable[EntityUid],
               resource: EntityUid, resource_ancestors: Iterable[EntityUid],
               ) -> PolicySlice | None:
        """The policies whose scope matches the request; None when none does.

        The ancestor collections must be every ancestor (transitively) of each entity in the
        entities Cedar will be given: an entity Cedar does not know has none.
        """
        principals: list[_Node] = []
        _probe(self._tree, action, (action, *action_ancestors), principals)
        if not principals:
            return None
        resources: list[_Node] = []
        lineage = (principal, *principal_ancestors)
        for node in principals:
            _probe(node, principal, lineage, resources)
        found: list[int] = []
        lineage = (resource, *resource_ancestors)
        for node in resources:
            _probe(node, resource, lineage, found)
        if not found:
            return None
        if len(found) > 1:
            found.sort()
        return self._slice(tuple(found))

    def union(self, slices: Sequence[PolicySlice]) -> PolicySlice | None:
        """One slice holding the policies of ``slices`` (for one Cedar call over requests of
        different slices): from the memo, or built the second time it is asked for, so that
        one-off combinations cost nothing; None until then."""
        key = tuple(sorted(set().union(*(s.key for s in slices))))
        with self._lock:
            hit = self._memo.get(key)
            if hit is not None:
                return hit
            if key not in self._unions:
                self._unions.put(key, None)
                return None
            del self._unions[key]
        return self._slice(key)

    def memo_size(self) -> int:
        return len(self._memo)

    def drain(self) -> list[PolicySlice]:
        """Empty the memo and hand its slices over (to be freed piecemeal by whoever retires
        this index: freeing thousands of Cedar policy sets at once stalls the process)."""
        with self._lock:
            slices = list(self._memo.values())
            self._memo.clear()
        return slices

    # -- building sub-sets ------------------------------------------------------------------

    def _slice(self, key: tuple[int, ...]) -> PolicySlice:
        memo = self._memo
        with self._lock:
            hit = memo.get(key)
            if hit is not None:
                return hit
        built = self._build(key)
        with self._lock:  # a memo of size 0 keeps nothing
            memo.put(key, built)
        return built

    def full_document(self) -> dict[str, Any]:
        """Every policy of the set in Cedar's JSON form (with its id, links resolved), as
        plain JSON values, made a policy at a time: no single call over the whole set (one
        parse of a large set's JSON holds the interpreter lock for tens of milliseconds,
        while requests wait)."""
        doc, _, _ = self._document(set(range(len(self._entries))))
        return {section: ({name: _plain_copy(est) for name, est in part.items()}
                          if isinstance(part, dict) else part)
                for section, part in doc.items()}

    def _build(self, key: tuple[int, ...]) -> PolicySlice:
        members: set[int] = set()
        for bucket in key:
            members.update(self._buckets[bucket])
        text, ids, literals = self._json(members)
        return PolicySlice(key, _cedarpy.policy_set_from_json(text, release_gil=False),
                           tuple(ids), tuple(literals))

    def _json(self, members: set[int]) -> tuple[str, list[str], dict[EntityUid, None]]:
        doc, ids, literals = self._document(members)
        return orjson.dumps(doc, default=_plain).decode(), ids, literals

    def _document(self, members: set[int],
                  ) -> tuple[dict[str, Any], list[str], dict[EntityUid, None]]:
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
        return {"staticPolicies": static, "templates": templates, "templateLinks": links}, \
            ids, literals


class _DataFlow:
    """Which entity data the policies can consult, read off their conditions.

    Cedar consults an entity's *data* (attributes, tags, ancestors) only through the left
    operand of ``.``, ``has``, ``getTag``, ``hasTag``, ``in`` and ``is ... in``; everything
    else about an entity (``==``, ``is``, set membership) is its uid. When every such operand
    is ``principal``/``resource``/``context``/``action``, an entity literal, or an attribute
    access ``e.a``, the entities whose data can matter are the request's own, the literals so
    used (``literals``) and those that attributes named in ``dereferenced`` point to. Any
    other operand (``if ... then ... else``, a tag, a record literal) makes the analysis
    inexact, and then every attribute read and every literal counts.
    """

    _USES_DATA = (".", "has", "getTag", "hasTag", "in")

    def __init__(self) -> None:
        self.read: set[str] = set()
        self.dereferenced: set[str] = set()
        self.exact = True
        self.tags = False  # some condition calls getTag/hasTag

    def policy(self, est: Mapping[str, Any]) -> tuple[EntityUid, ...]:
        """Walk one policy's conditions; return the literals whose data it consults."""
        consumed: dict[EntityUid, None] = {}
        conditions = est.get("conditions")
        stack: list[Any] = [c.get("body") for c in conditions if isinstance(c, Mapping)] \
            if isinstance(conditions, list) else []
        while stack:
            node = stack.pop()
            if isinstance(node, list):
                stack.extend(node)
                continue
            if not isinstance(node, Mapping):
                continue
            for op, body in node.items():
                if not isinstance(body, Mapping):
                    if isinstance(body, list):
                        stack.append(body)
                    continue
                if op in (".", "has") and isinstance(body.get("attr"), str):
                    self.read.add(body["attr"])
                if op in ("getTag", "hasTag"):
                    self.tags = True
                if op in self._USES_DATA or (op == "is" and "in" in body):
                    self._operand(body.get("left"), consumed)
                stack.extend(v for v in body.values() if isinstance(v, Mapping | list))
        return tuple(consumed)

    def _operand(self, left: Any, consumed: dict[EntityUid, None]) -> None:
        if not isinstance(left, Mapping) or len(left) != 1:
            self.exact = False
            return
        (kind, body), = left.items()
        if kind == "Var":
            return
        if kind == "." and isinstance(body, Mapping) and isinstance(body.get("attr"), str):
            self.dereferenced.add(body["attr"])
            return
        if kind == "Value":
            uid = _uid(body)
            if uid is not None:
                consumed[uid] = None
            elif _every_literal({"conditions": [body]}):
                self.exact = False  # entities inside a literal record or set
            return
        self.exact = False


def _every_literal(est: Mapping[str, Any]) -> tuple[EntityUid, ...]:
    """Every entity literal in a policy's conditions."""
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


def _plain_copy(value: Any) -> Any:
    """``value`` as plain JSON values (what reading its JSON gives)."""
    return orjson.loads(orjson.dumps(value, default=_plain))


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


@dataclass(frozen=True, slots=True)
class _Node:
    """One level of the tree: the children reached by each kind of scope constraint."""

    any: Any  # the child for an unconstrained variable, or None
    eq: Mapping[EntityUid, Any]  # == E
    in_: Mapping[EntityUid, Any]  # in E
    is_: Mapping[str, Any]  # is T
    is_in: Mapping[tuple[str, EntityUid], Any]  # is T in E


def _node(children: Mapping[_Key, Any]) -> _Node:
    any_child = None
    eq: dict[EntityUid, Any] = {}
    in_: dict[EntityUid, Any] = {}
    is_: dict[str, Any] = {}
    is_in: dict[tuple[str, EntityUid], Any] = {}
    for key, child in children.items():
        kind = key[0]
        if kind == "*":
            any_child = child
        elif kind == "==":
            eq[key[1]] = child
        elif kind == "in":
            in_[key[1]] = child
        elif kind == "is":
            is_[key[1]] = child
        else:
            is_in[(key[1], key[2])] = child
    return _Node(any_child, eq, in_, is_, is_in)


_EMPTY = _Node(None, {}, {}, {}, {})


def _child(node: _Node | None, key: _Key) -> Any:
    """The child of ``node`` under exactly ``key`` (not a probe), or None."""
    if node is None:
        return None
    kind = key[0]
    if kind == "*":
        return node.any
    if kind == "==":
        return node.eq.get(key[1])
    if kind == "in":
        return node.in_.get(key[1])
    if kind == "is":
        return node.is_.get(key[1])
    return node.is_in.get((key[1], key[2]))


def _with(node: _Node, children: Mapping[_Key, Any]) -> _Node:
    """``node`` with these children set: the maps of the kinds touched are copied."""
    any_child, eq, in_, is_, is_in = node.any, node.eq, node.in_, node.is_, node.is_in
    copied: set[str] = set()
    for key, child in children.items():
        kind = key[0]
        if kind == "*":
            any_child = child
            continue
        if kind not in copied:
            copied.add(kind)
            if kind == "==":
                eq = dict(eq)
            elif kind == "in":
                in_ = dict(in_)
            elif kind == "is":
                is_ = dict(is_)
            else:
                is_in = dict(is_in)
        if kind == "==":
            eq[key[1]] = child  # type: ignore[index]
        elif kind == "in":
            in_[key[1]] = child  # type: ignore[index]
        elif kind == "is":
            is_[key[1]] = child  # type: ignore[index]
        else:
            is_in[(key[1], key[2])] = child  # type: ignore[index]
    return _Node(any_child, eq, in_, is_, is_in)


def _probe(node: _Node, uid: EntityUid, lineage: tuple[EntityUid, ...], out: list[Any]) -> None:
    """Append the children of ``node`` whose constraint ``uid`` satisfies; ``lineage`` is
    ``uid`` and its ancestors."""
    if node.any is not None:
        out.append(node.any)
    if node.eq:
        child = node.eq.get(uid)
        if child is not None:
            out.append(child)
    if node.in_:
        in_ = node.in_
        for x in lineage:
            child = in_.get(x)
            if child is not None:
                out.append(child)
    if node.is_:
        child = node.is_.get(uid[0])
        if child is not None:
            out.append(child)
    if node.is_in:
        is_in, etype = node.is_in, uid[0]
        for x in lineage:
            child = is_in.get((etype, x))
            if child is not None:
                out.append(child)