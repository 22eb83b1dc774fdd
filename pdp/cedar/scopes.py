"""Which policies of a large set can apply to a request, from the entities their scopes name.

A policy's principal, action or resource scope of the form ``== e`` holds exactly when the
request's entity is ``e``; ``in e`` (or ``in [e1, e2]`` for the action) when the entity is
``e`` or descends from it. Scopes are never erroneous, so a policy whose scope fails does not
apply and leaving it out changes nothing: the index returns exactly the policies whose
``==`` and ``in`` scopes all hold (other scopes, ``is`` and ``All``, are left to the policy's
own code). A policy whose scopes are all ``All``, ``==`` or ``in`` and which has no
condition then applies without running its code: the index says so (:attr:`ScopeIndex.sure`).

The index is split by action first (a policy set names few actions; a request has one action
and usually no action groups), then by principal, then by resource, each level a dict:

* per action key: an :class:`_ActionPart` for the policies whose action scope names that key
  as the request's own action (``==`` or ``in``), and one for those that name it as one of
  its ancestors (``in`` only); plus one part for the policies whose action scope is open;
* in a part, the policies whose principal and resource scopes are open (``always``), those
  keyed by their principal entity (``==`` or ``in``; each holding its resource level), and
  those keyed by their resource entity alone.

A lookup costs one dict read per entity of the request and per ancestor, and a few more for
each principal key some policy names: it does not grow with the number of policies, only with
how many of them apply. Its answer, a function of the three entities and their ancestors
alone, is remembered for the requests that repeat them (at most ``_ANSWERS_KEPT``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pdp.caches import Memo
from pdp.cedar import decode
from pdp.cedar.values import UID

__all__ = ["ScopeIndex"]

_MAX_SPREAD = 200_000  # policies with an open action scope × action keys, copied per key
_ANSWERS_KEPT = 4096  # lookups remembered (emptied when full)

# Where resource scopes are looked up: the policies whose resource scope is open, and the
# policies by the resource entity their scope names (as the request's own resource: `==` or
# `in`; as one of its ancestors: `in` only).
_RLevel = tuple[list[int], dict[UID, list[int]], dict[UID, list[int]]]


class _ActionPart:
    """The policies of one action key (or of an open action scope), by principal and
    resource."""

    __slots__ = ("always", "p_self", "p_anc", "r_only")

    def __init__(self) -> None:
        self.always: list[int] = []  # sorted once built, and never changed after
        self.p_self: dict[UID, _RLevel] = {}
        self.p_anc: dict[UID, _RLevel] = {}
        self.r_only: _RLevel = ([], {}, {})  # open principal scope (its own list is unused)

    def add(self, i: int, p: tuple[str, list[UID]] | None, r: tuple[str, list[UID]] | None
            ) -> None:
        if p is None:
            if r is None:
                self.always.append(i)
            else:
                _add_r(self.r_only, r, i)
            return
        mode, keys = p
        levels = (self.p_self, self.p_anc) if mode == "in" else (self.p_self,)
        for level in levels:
            for k in keys:
                entry = level.get(k)
                if entry is None:
                    entry = level[k] = ([], {}, {})
                if r is None:
                    entry[0].append(i)
                else:
                    _add_r(entry, r, i)

    def hits(self, principal: UID, resource: UID, pa: frozenset[UID], ra: frozenset[UID]
             ) -> list[list[int]]:
        """The lists of the policies (besides :attr:`always`) whose scopes hold."""
        found: list[list[int]] = []
        levels = [self.r_only]
        entry = self.p_self.get(principal)
        if entry is not None:
            levels.append(entry)
        if pa:
            p_anc = self.p_anc
            if p_anc:
                for k in pa:
                    entry = p_anc.get(k)
                    if entry is not None:
                        levels.append(entry)
        for open_r, r_self, r_anc in levels:  # written out: this is the hot path
            if open_r:
                found.append(open_r)
            if r_self:
                hit = r_self.get(resource)
                if hit:
                    found.append(hit)
            if r_anc and ra:
                for k in ra:
                    hit = r_anc.get(k)
                    if hit:
                        found.append(hit)
        return found


def _add_r(level: _RLevel, r: tuple[str, list[UID]], i: int) -> None:
    mode, keys = r
    for k in keys:
        level[1].setdefault(k, []).append(i)
        if mode == "in":
            level[2].setdefault(k, []).append(i)


class ScopeIndex:
    """An index of a policy set's scopes (see the module's description)."""

    __slots__ = ("_open", "_a_self", "_a_anc", "_spread", "sure", "_answers")

    def __init__(self, scopes: Sequence[Mapping[str, Any]],
                 slots: Sequence[Mapping[str, UID] | None], max_spread: int = _MAX_SPREAD
                 ) -> None:
        held = []
        for est, env in zip(scopes, slots, strict=True):
            env = env or {}
            held.append(tuple(_scope(est.get(v), env) for v in ("principal", "action",
                                                                  "resource")))
        # An open action scope's policies are in every action key's part too (one lookup for
        # a request's action) unless that copies too many, and in `_open` for the actions no
        # policy names.
        self._open = _ActionPart()
        self._a_self: dict[UID, _ActionPart] = {}
        self._a_anc: dict[UID, _ActionPart] = {}
        for _, a, _ in held:
            if a is None:
                continue
            for k in a[1]:
                self._a_self.setdefault(k, _ActionPart())
                if a[0] == "in":
                    self._a_anc.setdefault(k, _ActionPart())
        opened = sum(a is None for _, a, _ in held)
        self._spread = opened * len(self._a_self) <= max_spread
        for i, (p, a, r) in enumerate(held):
            if a is None:
                for part in (self._open, *(self._a_self.values() if self._spread else ())):
                    part.add(i, p, r)
                continue
            mode, keys = a
            for k in dict.fromkeys(keys):  # once per key, however often listed
                self._a_self[k].add(i, p, r)
                if mode == "in":
                    self._a_anc[k].add(i, p, r)
        for part in (self._open, *self._a_self.values(), *self._a_anc.values()):
            part.always = sorted(set(part.always))
        self.sure: tuple[bool, ...] = tuple(
            not est.get("conditions") and all(_exact(est.get(v)) for v in (
                "principal", "action", "resource")) for est in scopes)
        """Per policy: whether it applies whenever the index lists it (no condition, no
        ``is`` scope)."""
        # (principal, action, resource and their ancestors) -> the lookup's answer; read
        # without a lock from any thread (single dict operations are atomic)
        self._answers: Memo[tuple[UID, UID, UID, frozenset[UID], frozenset[UID],
                                  frozenset[UID]], tuple[int, ...]] = Memo(_ANSWERS_KEPT)

    def candidates(self, principal: UID, action: UID, resource: UID, pa: frozenset[UID],
                   aa: frozenset[UID], ra: frozenset[UID]) -> Sequence[int]:
        """The positions (ascending) of the policies whose ``==``/``in`` scopes all hold
        (``pa``, ``aa``, ``ra``: the transitive ancestors of the three entities)."""
        key = (principal, action, resource, pa, aa, ra)
        found = self._answers.get(key)
        if found is None:
            found = self._answers.keep(
                key, tuple(self._lookup(principal, action, resource, pa, aa, ra)))
        return found

    def _lookup(self, principal: UID, action: UID, resource: UID, pa: frozenset[UID],
                aa: frozenset[UID], ra: frozenset[UID]) -> Sequence[int]:
        part = self._a_self.get(action)
        if part is not None and self._spread and not aa:  # the common case
            found = part.hits(principal, resource, pa, ra)
            if not found:
                return part.always
            return sorted(set(part.always).union(*found))
        parts = [part] if part is not None else []
        if part is None or not self._spread:
            parts.append(self._open)
        for k in aa:
            anc = self._a_anc.get(k)
            if anc is not None:
                parts.append(anc)
        every: set[int] = set()
        for p in parts:
            every.update(p.always)
            every.update(*p.hits(principal, resource, pa, ra))
        return sorted(every)


def _scope(c: Any, slots: Mapping[str, UID]) -> tuple[str, list[UID]] | None:
    """``("==" | "in", keys)`` for a scope the index holds; ``None`` for one it leaves open
    (``All``, ``is``; ``is T in e`` is held as ``in e``)."""
    if not isinstance(c, Mapping):
        return None
    op = c.get("op")
    if op == "is":
        inner = c.get("in")
        return _scope({"op": "in", **inner}, slots) if isinstance(inner, Mapping) else None
    if op not in ("==", "in"):
        return None
    if "entities" in c:
        return "in", [decode.uid(e) for e in c["entities"]]
    if "slot" in c:
        return op, [slots[c["slot"]]]
    return op, [decode.uid(c["entity"])]


def _exact(c: Any) -> bool:
    """Whether the index decides the scope ``c`` by itself."""
    return isinstance(c, Mapping) and c.get("op") in ("All", "==", "in")
