"""The entity store seam: the capabilities stores declare, and an in-memory store.

Each capability is a :class:`typing.Protocol`, so what a caller may do with a store is in its
type, never probed at run time:

* :class:`LinkReader`: the template links stored with the entities (a new immutable
  :class:`~pdp.policies.links.LinkSet` after each change), and a listener told of each change;
* :class:`EntityStore`: the read side the engine and search use (it reads links too: a store
  that holds none answers the empty set), and the store's ``/status``;
* :class:`MutableEntityStore`: what a policy reload writes (the entities of ``entities.json``)
  and the store's background work (``start``, ``close``);
* :class:`LinkWriter` and :class:`AdministeredEntityStore`: the writes and reads of the admin
  API and the CLI, which keep who manages each entity (the SQL store).

The in-memory store is a real implementation of :class:`MutableEntityStore` (tests and
``PDP_ENTITY_STORE=memory`` use it); :class:`~pdp.entities.sql.SQLEntityStore` implements
:class:`AdministeredEntityStore`. Every change bumps ``version`` so caches keyed on it are
invalidated as a whole.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from pdp.entities.model import EntityUid, StoredEntity
from pdp.policies.links import LinkInfo, LinkSet

__all__ = ["AdministeredEntityStore", "EntityRecord", "EntityStore", "InMemoryEntityStore",
           "LinkReader", "LinkWriter", "MutableEntityStore", "Source", "WriteResult", "pick"]

Source = Literal["file", "api"]  # who manages a stored entity: entities.json or the admin API
LinksListener = Callable[[], None]


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What a write changed: rows written and deleted, and the store version it made."""

    written: int = 0
    deleted: int = 0
    version: int | None = None

    @property
    def changed(self) -> bool:
        return bool(self.written or self.deleted)

    def to_dict(self) -> dict[str, Any]:
        return {"written": self.written, "deleted": self.deleted, "version": self.version}


@dataclass(frozen=True, slots=True)
class EntityRecord:
    """An entity as the admin API and the CLI show it: the Cedar document plus bookkeeping."""

    entity: StoredEntity
    source: str
    revision: int
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {**self.entity.to_cedar_json(), "managed_by": self.source,
                "revision": self.revision, "updated_at": self.updated_at.isoformat()}


@runtime_checkable
class LinkReader(Protocol):
    """The template links stored with the entities."""

    def links(self) -> LinkSet:
        """The current snapshot (the same object until the links change)."""
        ...

    def watch_links(self, listener: LinksListener) -> None:
        """Call ``listener`` (on the thread that saw it) after each change of :meth:`links`."""
        ...


@runtime_checkable
class EntityStore(LinkReader, Protocol):
    """What the decision path and search read from the PIP (read-only)."""

    @property
    def version(self) -> int: ...

    def get_many(self, uids: Iterable[EntityUid]) -> Mapping[EntityUid, StoredEntity]:
        """The stored entities among ``uids`` (missing ones are simply absent)."""
        ...

    def candidates(self, entity_type: str, *, after: str | None, limit: int) -> Sequence[str]:
        """Ids of stored entities of a type, in id order, strictly after ``after``."""
        ...

    def types(self) -> Sequence[str]: ...

    def status(self) -> Mapping[str, Any]:
        """For ``GET /status``: the backend, its counts and health; never raises."""
        ...


@runtime_checkable
class MutableEntityStore(EntityStore, Protocol):
    """A store the service runs: a policy reload writes ``entities.json`` into it."""

    def replace_file_managed(self, entities: Iterable[StoredEntity | Mapping[str, Any]],
                             ) -> object:
        """Make the file-managed entities exactly ``entities`` (Cedar JSON or StoredEntity),
        keeping those written through the admin API."""
        ...

    def start(self) -> None:
        """Start background work (from the application's lifespan)."""
        ...

    def close(self) -> None: ...

    def administered(self) -> AdministeredEntityStore | None:
        """This store as the admin API and the CLI write it, if it keeps who manages each
        entity (else None: the admin routes answer 404)."""
        ...


@runtime_checkable
class LinkWriter(LinkReader, Protocol):
    """Stored template links, written (checked against the policy set beforehand)."""

    def put_links(self, links: Sequence[LinkInfo]) -> WriteResult: ...

    def delete_links(self, link_ids: Sequence[str]) -> WriteResult: ...


@runtime_checkable
class AdministeredEntityStore(MutableEntityStore, LinkWriter, Protocol):
    """A store that keeps who manages each entity, for the admin API and the CLI."""

    def put_many(self, entities: Sequence[StoredEntity], *, replace: bool = False,
                 ) -> WriteResult: ...

    def delete_many(self, uids: Sequence[EntityUid]) -> WriteResult: ...

    def describe(self, uid: EntityUid) -> EntityRecord | None: ...

    def page(self, *, entity_type: str | None = None, after: EntityUid | None = None,
             limit: int = 100, source: Source | None = None) -> list[EntityRecord]: ...

    def export(self, *, entity_type: str | None = None, source: Source | None = None,
               page_size: int = 1000) -> Iterator[EntityRecord]: ...


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
        self._no_links = LinkSet({})

    # -- EntityStore ----------------------------------------------------------------------

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

    def links(self) -> LinkSet:
        """No template link is stored in memory (a policy set's ``*.links.json`` are its own)."""
        return self._no_links

    def watch_links(self, listener: LinksListener) -> None:
        """The links never change: nothing to tell."""

    def status(self) -> Mapping[str, Any]:
        return {"backend": "memory", "count": len(self._by_uid), "version": self._version}

    # -- MutableEntityStore ---------------------------------------------------------------

    def start(self) -> None:
        """Nothing runs in the background."""

    def close(self) -> None:
        """Nothing to release."""

    def administered(self) -> None:
        """Only ``entities.json`` is held: no entity administration."""
        return None

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


if TYPE_CHECKING:  # mypy checks the store against the capability it declares
    _MEMORY: type[MutableEntityStore] = InMemoryEntityStore
