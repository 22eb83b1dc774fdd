"""The engine's native evaluation: a group of prepared requests decided by :mod:`pdp.cedar`.

The engine hands over exactly what it would give cedarpy (the policy slice, the requests, the
entity slice and the action entities) and gets answers of the same shape as cedarpy's, so
everything around the evaluation (slices, batching, the decision cache, explanations, the
fail-closed rules) is the same with either evaluator. Compiled slices and decoded entities are
memoised: both are immutable for a given policy version and store state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from pdp.cedar import PolicySet, decode
from pdp.cedar.entities import closure
from pdp.cedar.runtime import Store
from pdp.cedar.values import UID
from pdp.entities.model import EntityUid, StoredEntity
from pdp.policies.compiled import CompiledPolicySet
from pdp.policies.index import PolicySlice, SliceIndex

__all__ = ["NativeEvaluator", "native_reason"]

_Decoded = tuple[UID, dict[str, Any], list[UID], dict[str, Any]]


class _Lru:
    """A bounded memo keyed by the identity of an object it keeps alive (so the identity
    cannot be reused while the entry lives). Emptied when full: its entries are cheap to
    rebuild, and a read takes no lock (a dict read is atomic)."""

    __slots__ = ("_max", "_items")

    def __init__(self, max_size: int) -> None:
        self._max = max_size
        self._items: dict[int, tuple[object, Any]] = {}

    def get(self, obj: object) -> Any | None:
        found = self._items.get(id(obj))
        if found is None or found[0] is not obj:
            return None
        return found[1]

    def put(self, obj: object, value: Any) -> None:
        if len(self._items) >= self._max:
            self._items = {}
        self._items[id(obj)] = (obj, value)


class NativeEvaluator:
    """Decides groups natively; ``None`` when it cannot (the caller then asks cedarpy)."""

    def __init__(self, slices: int = 1024, entities: int = 65_536) -> None:
        self.decided = 0  # requests decided natively
        self.fallbacks = 0  # requests left to cedarpy (a slice or a value not native)
        self._slices = _Lru(slices)
        self._entities = _Lru(entities)
        self._actions = _Lru(16)
        self._full = _Lru(2)

    def prepare(self, compiled: CompiledPolicySet, index: SliceIndex | None = None,
                ) -> PolicySet:
        """The whole policy set, compiled once per version (the reloader calls this after a
        swap, so that no request waits for it). ``index``: the set's slice index with the
        template links stored with the entities (default: the set's own index); its
        policies are the ones compiled."""
        index = index if index is not None else compiled.index
        found: PolicySet | None = self._full.get(index)
        if found is None:
            found = PolicySet.from_json(index.full_json(), compiled.policy_set)
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

    def authorize(self, compiled: CompiledPolicySet, index: SliceIndex,
                  policy_slice: PolicySlice,
                  requests: Sequence[Mapping[str, Any]],
                  entities: Mapping[EntityUid, StoredEntity],
                  actions_json: tuple[bytes, ...]) -> list[dict[str, Any]] | None:
        """Cedar-shaped answers (``decision``, ``diagnostics``) for ``requests`` (the engine's
        Cedar requests, context as JSON text), or ``None`` if any part is not native."""
        policies = self.compiled(policy_slice, compiled, index)
        if policies is None:
            self.fallbacks += len(requests)
            return None
        try:
            store = self._store(entities, actions_json)
            answers = []
            for r in requests:
                ctx = r["context"]
                context = decode.value(orjson.loads(ctx)) if ctx != "{}" else {}
                if type(context) is not dict:
                    raise decode.Unsupported("the context is not a record")
                answer = policies.evaluate(decode.uid(r["principal"]), decode.uid(r["action"]),
                                           decode.uid(r["resource"]), context, store)
                answers.append({
                    "decision": "Allow" if answer.allow else "Deny",
                    "diagnostics": {"reason": list(answer.reasons), "errors": [
                        f"error while evaluating policy `{p}`: {m}" for p, m in answer.errors]}})
        except decode.Unsupported:
            self.fallbacks += len(requests)
            return None
        self.decided += len(requests)
        return answers

    def _store(self, entities: Mapping[EntityUid, StoredEntity],
               actions_json: tuple[bytes, ...]) -> Store:
        attrs: dict[UID, dict[str, Any]] = {}
        parents: dict[UID, list[UID]] = {}
        tags: dict[UID, dict[str, Any]] = {}
        for uid, a, ps, t in self._actions_decoded(actions_json):
            attrs[uid], parents[uid] = a, ps
            if t:
                tags[uid] = t
        for ent in entities.values():
            decoded: _Decoded | None = self._entities.get(ent)
            if decoded is None:
                decoded = _decode(ent.to_cedar_json() if not ent.json else orjson.loads(ent.json))
                self._entities.put(ent, decoded)
            uid, a, ps, t = decoded
            attrs[uid], parents[uid] = a, ps
            if t:
                tags[uid] = t
        return Store(attrs, closure(parents), tags)

    def _actions_decoded(self, actions_json: tuple[bytes, ...]) -> Iterable[_Decoded]:
        found: list[_Decoded] | None = self._actions.get(actions_json)
        if found is None:
            found = [_decode(orjson.loads(j)) for j in actions_json]
            self._actions.put(actions_json, found)
        return found


def native_reason(compiled: CompiledPolicySet) -> str | None:
    """Why ``compiled`` is not evaluated natively as a whole (``None``: it is)."""
    return PolicySet.from_json(compiled.index.full_json(), compiled.policy_set).native_reason


def _decode(doc: Mapping[str, Any]) -> _Decoded:
    a = decode.value(doc.get("attrs") or {})
    t = decode.value(doc.get("tags") or {})
    if type(a) is not dict or type(t) is not dict:
        raise decode.Unsupported("attributes or tags are not records")
    return (decode.uid(doc["uid"]), a, [decode.uid(p) for p in doc.get("parents") or []], t)
