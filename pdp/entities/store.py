"""The entity store seam: the interface the engine and search use, and an in-memory store.

The in-memory store is a real implementation (tests and the embedded default use it); the SQL
store implements the same interface. Every change bumps ``version`` so caches keyed on it
are invalidated as a whole.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from pdp.entities.model import EntityUid, StoredEntity

__all__ = ["EntityStore", "InMemoryEntityStore", "pick"]


@runtime_checkable
class EntityStore(Protocol):
    """What the decision path needs from the PIP."""

    @property
    def version(self) -> int: ...

    def get_many(self, uids: Iterable[EntityUid]) -> Mapping[EntityUid, StoredEntity]:
        """The stored entities among ``uids`` (missing ones are simply absent)."""
        ...

    def candidates(self, entity_type: str, *, after: str | None, limit: int) -> Sequence[str]:
        """Ids of stored entities of a type, in id order, strictly after ``after``."""
        ...

    def types(self) -> Sequence[str]: ...


def pick(by_uid: Mapping[EntityUid, StoredEntity],
         uids: Iterable[EntityUid]) -> dict[EntityUid, StoredEntity]:
    """The entities of ``by_uid`` among ``uids`` (the lookup of every in-memory copy)."""
    found: dict[EntityUid, StoredEntity] = {}
    for uid in uids:
        ent = by_uid.get(uid)
        if ent is not None:
            found[uid] = ent
    return found


class InMemoryEntityStore:
    """A dictionary of entities; writes replace the maps as a whole (readers never lock)."""

    def __init__(self, entities: Iterable[StoredEntity] = ()) -> None:
        self._lock = threading.Lock()
        self._by_uid: dict[EntityUid, StoredEntity] = {}
        self._ids: dict[str, list[str]] = {}
        self._version = 0
        self.replace_all(entities)
        self._file_uids: set[EntityUid] = set(self._by_uid)  # from entities.json

    @property
    def version(self) -> int:
        return self._version

    def get_many(self, uids: Iterable[EntityUid]) -> Mapping[EntityUid, StoredEntity]:
        return pick(self._by_uid, uids)

    def get(self, uid: EntityUid) -> StoredEntity | None:
        return self._by_uid.get(uid)

    def candidates(self, entity_type: str, *, after: str | None, limit: int) -> Sequence[str]:
        ids = self._ids.get(entity_type, [])
        start = 0 if after is None else bisect.bisect_right(ids, after)
        return ids[start:start + limit]

    def types(self) -> Sequence[str]:
        return sorted(self._ids)

    def __len__(self) -> int:
        return len(self._by_uid)

    def replace_all(self, entities: Iterable[StoredEntity]) -> None:
        by_uid = {e.uid: e for e in entities}
        self._swap(by_uid)

    def replace_file_managed(self, entities: Iterable[StoredEntity | Mapping[str, Any]],
                             ) -> None:
        """Replace the entities of ``entities.json`` (Cedar JSON or StoredEntity), keeping
        the ones written since through :meth:`put_many`."""
        new = {}
        for item in entities:
            ent = item if isinstance(item, StoredEntity) else StoredEntity.from_cedar_json(item)
            new[ent.uid] = ent
        with self._lock:
            by_uid = {u: e for u, e in self._by_uid.items() if u not in self._file_uids}
            by_uid.update(new)
            self._file_uids = set(new)
            self._swap_locked(by_uid)

    def put_many(self, entities: Iterable[StoredEntity]) -> None:
        with self._lock:
            by_uid = dict(self._by_uid)
            by_uid.update((e.uid, e) for e in entities)
            self._swap_locked(by_uid)

    def delete_many(self, uids: Iterable[EntityUid]) -> int:
        with self._lock:
            by_uid = dict(self._by_uid)
            removed = sum(1 for uid in uids if by_uid.pop(uid, None) is not None)
            self._swap_locked(by_uid)
        return removed

    def _swap(self, by_uid: dict[EntityUid, StoredEntity]) -> None:
        with self._lock:
            self._swap_locked(by_uid)

    def _swap_locked(self, by_uid: dict[EntityUid, StoredEntity]) -> None:
        ids: dict[str, list[str]] = {}
        for t, i in by_uid:
            ids.setdefault(t, []).append(i)
        for lst in ids.values():
            lst.sort()
        self._by_uid, self._ids = by_uid, ids
        self._version += 1
