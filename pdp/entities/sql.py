"""The SQL entity store (the PIP of the architecture): SQLite by default, PostgreSQL by URL.

Storage
    One row per entity in ``pdp_entities`` (type, id, attributes and parents as JSON, who
    manages it, the store revision that last changed it, a tombstone flag) and one row in
    ``pdp_store_state`` holding the store's version. Every write transaction first increments
    that version (taking its row lock, so writers are serialised) and stamps the rows it
    changes with the new value; a deletion leaves a tombstone so other replicas see it.
    Tombstones older than a day are purged; a replica that missed a purge reloads in full.

Managed by the file or by the API
    Entities of the policy set's ``entities.json`` are *file-managed*: the file is
    authoritative (:meth:`SQLEntityStore.replace_file_managed` upserts what changed and
    removes what left the file, in one transaction; replicas starting together each compute
    the difference under the version lock, so the work is done once). Entities written
    through the admin API or the CLI are *API-managed* and survive reloads. The API may not
    change or delete a file-managed entity.

The decision path never waits for SQL
    Each process keeps a complete mirror of the entities in memory; lookups are dictionary
    reads and candidates for search come from per-type sorted id lists. A background poller
    reads the version row every ``poll_interval`` seconds and, when it moved, fetches the rows
    changed since (by revision). A write made by this process is applied to its own mirror
    at once, so the decision cache (keyed on :attr:`SQLEntityStore.version`) is invalidated
    immediately here and within one poll interval on every other replica.

Staleness bound and failing closed
    The mirror is trusted for at most ``max_staleness`` seconds after the last successful
    poll. Past that (the database cannot be reached), every read raises
    :class:`~pdp.errors.StoreUnavailable`: the PDP answers 503 with ``Retry-After`` and the
    PEP denies. A replica therefore decides on data at most ``poll_interval`` (plus one
    query) old while the database is up, and at most ``max_staleness`` old while it is not.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlmodel import Field, SQLModel

from pdp.entities.database import (
    Database,
    describe_url,
    migrate,
    open_database,
    sqlite_url,
    unavailable,
    utcnow,
)
from pdp.entities.links_sql import (
    create_links_table,
    existing_links,
    read_links,
    tombstone_links,
    upsert_links,
)
from pdp.entities.model import EntityUid, StoredEntity
from pdp.entities.store import AdministeredEntityStore, EntityRecord, Source, WriteResult, pick
from pdp.errors import EntityError, LinkError, StoreUnavailable
from pdp.policies.links import LinkInfo, LinkSet

__all__ = ["EntityRow", "SQLEntityStore", "StoreStateRow"]

log = logging.getLogger("pdp.entities")

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")
_CHUNK = 500
_TOMBSTONE_TTL = timedelta(days=1)
_PURGE_EVERY = 3600.0


class EntityRow(SQLModel, table=True):
    """One stored entity (or the tombstone of a deleted one)."""

    __tablename__ = "pdp_entities"

    type: str = Field(primary_key=True)
    id: str = Field(primary_key=True)
    attrs: dict[str, Any] = Field(sa_type=_JSON)
    parents: list[dict[str, str]] = Field(sa_type=_JSON)
    tags: dict[str, Any] | None = Field(default=None, sa_type=_JSON, nullable=True)
    source: str = Field(max_length=8, index=True)
    revision: int = Field(sa_type=sa.BigInteger, index=True)
    deleted: bool = False
    digest: str = Field(max_length=64)
    updated_at: datetime = Field(sa_type=sa.DateTime(timezone=True))


class StoreStateRow(SQLModel, table=True):
    """The store's version (one row, id 1) and the highest purged tombstone revision."""

    __tablename__ = "pdp_store_state"

    id: int = Field(primary_key=True)
    version: int = Field(sa_type=sa.BigInteger)
    purged_through: int = Field(sa_type=sa.BigInteger)


_ENTITIES: sa.Table = EntityRow.__table__  # type: ignore[attr-defined]
_STATE: sa.Table = StoreStateRow.__table__  # type: ignore[attr-defined]


def _create_v1(conn: Connection) -> None:
    SQLModel.metadata.create_all(conn, tables=[_ENTITIES, _STATE])
    conn.execute(sa.insert(_STATE).values(id=1, version=0, purged_through=0))


def _add_tags(conn: Connection) -> None:
    """Entity tags (a database created by ``_create_v1`` from this code has them already)."""
    if "tags" not in {c["name"] for c in sa.inspect(conn).get_columns("pdp_entities")}:
        kind = "JSON" if conn.dialect.name == "sqlite" else "JSONB"
        conn.execute(sa.text(f"ALTER TABLE pdp_entities ADD COLUMN tags {kind}"))


# Schema history of the entity store: step n takes the tables from version n to n + 1.
MIGRATIONS = (_create_v1, _add_tags, create_links_table)


class _Unchanged(Exception):
    """Raised inside a write transaction that turned out to change nothing (rolls it back)."""


def _digest(ent: StoredEntity) -> str:
    content: list[Any] = [ent.attrs, [list(p) for p in ent.parents]]
    if ent.tags:
        content.append(ent.tags)
    canonical = orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()[:32]


def _parents_json(parents: Sequence[EntityUid]) -> list[dict[str, str]]:
    return [{"type": t, "id": i} for t, i in parents]


def _entity(row: Any) -> StoredEntity:
    return StoredEntity.build(row.type, row.id, row.attrs or {},
                              tuple((p["type"], p["id"]) for p in row.parents or ()),
                              row.tags or None)


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class SQLEntityStore:
    """An :class:`~pdp.entities.store.AdministeredEntityStore` over SQL with an in-process
    mirror."""

    def __init__(self, db: Database, *, poll_interval: float = 1.0,
                 max_staleness: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_staleness < poll_interval:
            raise ValueError("max_staleness must be at least poll_interval")
        self._db = db
        self._poll_interval = poll_interval
        self._max_staleness = max_staleness
        self._clock = clock
        # the mirror; readers never lock, writers hold _mirror_lock
        self._by_uid: dict[EntityUid, StoredEntity] = {}
        self._ids: dict[str, list[str]] = {}
        self._links = LinkSet({})  # template links; a new snapshot on every change
        self._links_listeners: list[Callable[[], None]] = []
        self._version = 0
        self._mirror_lock = threading.Lock()
        # what the mirror reflects of the database
        self._seen = -1
        self._synced_at = clock()
        self._last_attempt = float("-inf")
        self._last_purge = clock()
        self._sync_lock = threading.Lock()
        self._outage_logged = False
        self._poller: threading.Thread | None = None
        self._stopping = threading.Event()

    # -- construction --------------------------------------------------------------------

    @classmethod
    def open(cls, url: str, *, poll_interval: float = 1.0, max_staleness: float = 10.0,
             clock: Callable[[], float] = time.monotonic) -> SQLEntityStore:
        """Connect, create or migrate the schema, and load the mirror (StoreUnavailable if the
        database cannot be reached)."""
        db = open_database(url)
        try:
            migrate(db, "entities", MIGRATIONS)
            store = cls(db, poll_interval=poll_interval, max_staleness=max_staleness,
                        clock=clock)
            store.sync()
        except BaseException:
            db.dispose()
            raise
        return store

    @staticmethod
    def url_for(database_url: str | None, data_dir: Path) -> str:
        """``database_url``, or the SQLite file ``entities.db`` in ``data_dir``."""
        return database_url or sqlite_url(data_dir / "entities.db")

    # -- the EntityStore protocol (hot path) --------------------------------------------------

    @property
    def version(self) -> int:
        self._check()
        return self._version

    def get_many(self, uids: Iterable[EntityUid]) -> Mapping[EntityUid, StoredEntity]:
        self._check()
        return pick(self._by_uid, uids)

    def candidates(self, entity_type: str, *, after: str | None, limit: int) -> Sequence[str]:
        self._check()
        ids = self._ids.get(entity_type)
        if not ids:
            return []
        start = 0 if after is None else bisect.bisect_right(ids, after)
        return ids[start:start + limit]

    def types(self) -> Sequence[str]:
        self._check()
        return sorted(t for t, ids in self._ids.items() if ids)

    def get(self, uid: EntityUid) -> StoredEntity | None:
        self._check()
        return self._by_uid.get(uid)

    def links(self) -> LinkSet:
        """The template links held in the database (a new snapshot after a change)."""
        self._check()
        return self._links

    def administered(self) -> SQLEntityStore:
        return self

    def watch_links(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after each change of :meth:`links` (seen by a poll, or written
        here), on the thread that saw it."""
        self._links_listeners.append(listener)

    def __len__(self) -> int:
        return len(self._by_uid)

    def _check(self) -> None:
        age = self._clock() - self._synced_at
        if age > self._poll_interval:
            self._stale(age)

    def _stale(self, age: float) -> None:
        if self._poller is None:  # nobody polls in the background: refresh here, throttled
            now = self._clock()
            if now - self._last_attempt >= self._poll_interval \
                    and self._sync_lock.acquire(blocking=False):
                try:
                    self._last_attempt = now
                    self._sync_locked()
                except StoreUnavailable:
                    pass
                finally:
                    self._sync_lock.release()
                age = self._clock() - self._synced_at
        if age > self._max_staleness:
            raise StoreUnavailable(
                f"the entity store has not been reachable for {age:.0f} s "
                f"(the bound is {self._max_staleness:g} s)")

    # -- keeping the mirror current -----------------------------------------------------------

    def sync(self) -> bool:
        """Bring the mirror up to the database's version; True if anything changed."""
        with self._sync_lock:
            return self._sync_locked()

    def _sync_locked(self) -> bool:
        started = self._clock()
        full = False
        rows: Sequence[Any] = ()
        live: list[LinkInfo] = []
        gone: list[str] = []
        with unavailable("reading the entity store"), self._db.read() as conn:
            version, purged = conn.execute(
                sa.select(_STATE.c.version, _STATE.c.purged_through)
                .where(_STATE.c.id == 1)).one()
            if version != self._seen:
                cols = (_ENTITIES.c.type, _ENTITIES.c.id, _ENTITIES.c.attrs,
                        _ENTITIES.c.parents, _ENTITIES.c.tags, _ENTITIES.c.deleted)
                if self._seen < 0 or self._seen < purged or version < self._seen:
                    full = True
                    rows = conn.execute(sa.select(*cols).where(
                        _ENTITIES.c.deleted == sa.false())).all()
                else:
                    rows = conn.execute(sa.select(*cols).where(
                        _ENTITIES.c.revision > self._seen)).all()
                live, gone = read_links(conn, None if full else self._seen)
        links_before = self._links
        if full:
            self._links = self._links.replaced(live)
        elif live or gone:
            self._links = self._links.changed(live, gone)
        changed = False
        if full:
            self._replace_mirror([_entity(r) for r in rows])
            changed = True
        elif rows:
            self._apply([_entity(r) for r in rows
                         if not r.deleted],
                        [(r.type, r.id) for r in rows if r.deleted])
            changed = True
        elif live or gone:
            with self._mirror_lock:
                self._version += 1
            changed = True
        self._seen = version
        self._synced_at = started
        if self._outage_logged:
            log.warning("the entity database is reachable again")
            self._outage_logged = False
        if self._links is not links_before and (live or gone or links_before.by_id):
            for listener in self._links_listeners:
                try:
                    listener()
                except Exception:  # noqa: BLE001 - a listener never fails the sync
                    log.exception("a listener of the stored template links failed")
        return changed

    def _replace_mirror(self, entities: Sequence[StoredEntity]) -> None:
        by_uid = {e.uid: e for e in entities}
        ids: dict[str, list[str]] = {}
        for t, i in by_uid:
            ids.setdefault(t, []).append(i)
        for lst in ids.values():
            lst.sort()
        with self._mirror_lock:
            self._by_uid, self._ids = by_uid, ids
            self._version += 1

    def _apply(self, upserts: Sequence[StoredEntity], deletes: Sequence[EntityUid]) -> None:
        """Apply changes in place; the version moves last, so a reader that sees the new
        version sees all of them."""
        with self._mirror_lock:
            by_uid = self._by_uid
            added: dict[str, list[str]] = {}
            removed: dict[str, list[str]] = {}
            for ent in upserts:
                if ent.uid not in by_uid:
                    added.setdefault(ent.type, []).append(ent.id)
                by_uid[ent.uid] = ent
            for uid in deletes:
                if by_uid.pop(uid, None) is not None:
                    removed.setdefault(uid[0], []).append(uid[1])
            for type_ in added.keys() | removed.keys():
                old = self._ids.get(type_, [])
                plus, minus = added.get(type_, []), removed.get(type_, [])
                if len(plus) + len(minus) > 64:
                    new = sorted((set(old) | set(plus)) - set(minus))
                else:
                    new = list(old)
                    for i in plus:
                        bisect.insort(new, i)
                    for i in minus:
                        at = bisect.bisect_left(new, i)
                        if at < len(new) and new[at] == i:
                            del new[at]
                self._ids[type_] = new  # copy on write: a reader keeps the list it has
            self._version += 1

    # -- background polling ---------------------------------------------------------------

    def start(self) -> None:
        """Start the poller thread (from the application's lifespan)."""
        if self._poller is not None:
            return
        self._stopping.clear()
        self._poller = threading.Thread(target=self._poll, name="pdp-entity-poller",
                                        daemon=True)
        self._poller.start()

    def stop(self) -> None:
        poller, self._poller = self._poller, None
        if poller is not None:
            self._stopping.set()
            poller.join(timeout=10)

    def close(self) -> None:
        self.stop()
        self._db.dispose()

    def _poll(self) -> None:
        while not self._stopping.wait(self._poll_interval):
            try:
                self.sync()
                if self._clock() - self._last_purge > _PURGE_EVERY:
                    self._last_purge = self._clock()
                    self.purge_tombstones()
            except StoreUnavailable as exc:
                if not self._outage_logged:
                    log.error("entity store poll failed (%s); decisions fail with 503 after "
                              "%g s without a successful poll", exc.message,
                              self._max_staleness)
                    self._outage_logged = True
            except Exception:  # noqa: BLE001 - the poller must survive anything
                log.exception("entity store poll failed")

    # -- writes ---------------------------------------------------------------------------------

    def replace_file_managed(self, entities: Iterable[StoredEntity | Mapping[str, Any]],
                             ) -> WriteResult:
        """Make the file-managed entities exactly ``entities`` (those of ``entities.json``):
        upsert what is new or changed, delete what left the file. One transaction; a no-op
        (nothing changed, e.g. another replica did it first) does not move the version."""
        wanted: dict[EntityUid, StoredEntity] = {}
        for item in entities:
            ent = item if isinstance(item, StoredEntity) else StoredEntity.from_cedar_json(item)
            if ent.type == "Action" or ent.type.endswith("::Action"):
                continue  # actions and their groups come from the schema, as the engine reads them
            wanted[ent.uid] = ent
        digests = {uid: _digest(e) for uid, e in wanted.items()}
        try:
            with unavailable("writing file-managed entities"), self._db.write() as conn:
                version = self._bump(conn)
                current = {(r.type, r.id): r.digest for r in conn.execute(
                    sa.select(_ENTITIES.c.type, _ENTITIES.c.id, _ENTITIES.c.digest).where(
                        _ENTITIES.c.source == "file", _ENTITIES.c.deleted == sa.false()))}
                write = [e for uid, e in wanted.items() if current.get(uid) != digests[uid]]
                gone = [uid for uid in current if uid not in wanted]
                if not write and not gone:
                    raise _Unchanged
                taken = self._existing(conn, [e.uid for e in write if e.uid not in current])
                for uid in taken:
                    log.warning("entity %s::%r is in entities.json and becomes file-managed",
                                *uid)
                self._upsert(conn, write, "file", version, digests)
                self._tombstone(conn, gone, version)
        except _Unchanged:
            self._after_write((), ())
            return WriteResult()
        log.info("entities.json applied: %d written, %d deleted (store version %d)",
                 len(write), len(gone), version)
        self._after_write(write, gone)
        return WriteResult(len(write), len(gone), version)

    def put_many(self, entities: Sequence[StoredEntity], *, replace: bool = False,
                 ) -> WriteResult:
        """Upsert API-managed entities in one transaction (validate them first). With
        ``replace``, API-managed entities not in ``entities`` are deleted in the same
        transaction. A file-managed entity is refused and nothing is written."""
        uids = [e.uid for e in entities]
        if len(set(uids)) != len(uids):
            raise EntityError("an entity appears twice in one write")
        digests = {e.uid: _digest(e) for e in entities}
        gone: list[EntityUid] = []
        try:
            with unavailable("writing entities"), self._db.write() as conn:
                version = self._bump(conn)
                self._refuse_file_managed(conn, uids)
                if replace:
                    keep = set(uids)
                    gone = [(r.type, r.id) for r in conn.execute(
                        sa.select(_ENTITIES.c.type, _ENTITIES.c.id).where(
                            _ENTITIES.c.source == "api", _ENTITIES.c.deleted == sa.false()))
                            if (r.type, r.id) not in keep]
                if not entities and not gone:
                    raise _Unchanged
                self._upsert(conn, entities, "api", version, digests)
                self._tombstone(conn, gone, version)
        except _Unchanged:
            return WriteResult()
        self._after_write(entities, gone)
        return WriteResult(len(entities), len(gone), version)

    def delete_many(self, uids: Sequence[EntityUid]) -> WriteResult:
        """Delete API-managed entities (absent ones are ignored; file-managed ones refused)."""
        try:
            with unavailable("deleting entities"), self._db.write() as conn:
                version = self._bump(conn)
                self._refuse_file_managed(conn, uids)
                present = [uid for uid in self._existing(conn, uids)]
                if not present:
                    raise _Unchanged
                self._tombstone(conn, present, version)
        except _Unchanged:
            return WriteResult()
        self._after_write((), present)
        return WriteResult(0, len(present), version)

    def put_links(self, links: Sequence[LinkInfo]) -> WriteResult:
        """Add template links (checked against the policy set by the caller) in one
        transaction; an id already stored is refused and nothing is written."""
        ids = [x.link_id for x in links]
        if len(set(ids)) != len(ids):
            raise LinkError("a link id appears twice in one write", field="link_id")
        if not links:
            return WriteResult()
        with unavailable("writing template links"), self._db.write() as conn:
            version = self._bump(conn)
            taken = existing_links(conn, ids)
            if taken:
                raise LinkError(f"link {sorted(taken)[0]} exists already (remove it first)",
                                field="link_id")
            upsert_links(conn, links, version, self._db.is_sqlite)
        self._after_write((), ())
        return WriteResult(len(links), 0, version)

    def delete_links(self, link_ids: Sequence[str]) -> WriteResult:
        """Remove template links (absent ones are ignored)."""
        try:
            with unavailable("removing template links"), self._db.write() as conn:
                version = self._bump(conn)
                present = sorted(existing_links(conn, list(link_ids)))
                if not present:
                    raise _Unchanged
                tombstone_links(conn, present, version)
        except _Unchanged:
            return WriteResult()
        self._after_write((), ())
        return WriteResult(0, len(present), version)

    def purge_tombstones(self, older_than: timedelta = _TOMBSTONE_TTL) -> int:
        """Remove tombstones older than ``older_than``; replicas that have not yet seen one
        of them reload their mirror in full."""
        cutoff = utcnow() - older_than
        with unavailable("purging deleted entities"), self._db.write() as conn:
            condition = sa.and_(_ENTITIES.c.deleted == sa.true(),
                                _ENTITIES.c.updated_at < cutoff)
            highest = conn.execute(sa.select(sa.func.max(_ENTITIES.c.revision))
                                   .where(condition)).scalar_one_or_none()
            if highest is None:
                return 0
            purged = conn.execute(sa.delete(_ENTITIES).where(condition)).rowcount
            conn.execute(sa.update(_STATE).where(_STATE.c.id == 1).values(
                purged_through=sa.func.max(_STATE.c.purged_through, highest)
                if self._db.is_sqlite else sa.func.greatest(_STATE.c.purged_through, highest)))
        return int(purged or 0)

    def _after_write(self, written: Iterable[StoredEntity], deleted: Iterable[EntityUid]) -> None:
        """Make a committed write visible here at once: sync, or apply it if that fails."""
        try:
            self.sync()
        except StoreUnavailable:
            written, deleted = list(written), list(deleted)
            if written or deleted:
                self._apply(written, deleted)

    def _bump(self, conn: Connection) -> int:
        return int(conn.execute(
            sa.update(_STATE).where(_STATE.c.id == 1)
            .values(version=_STATE.c.version + 1).returning(_STATE.c.version)).scalar_one())

    def _existing(self, conn: Connection, uids: Sequence[EntityUid]) -> list[EntityUid]:
        found: list[EntityUid] = []
        key = sa.tuple_(_ENTITIES.c.type, _ENTITIES.c.id)
        for chunk in _chunks(list(uids)):
            found.extend((r.type, r.id) for r in conn.execute(
                sa.select(_ENTITIES.c.type, _ENTITIES.c.id).where(
                    key.in_(chunk), _ENTITIES.c.deleted == sa.false())))
        return found

    def _refuse_file_managed(self, conn: Connection, uids: Sequence[EntityUid]) -> None:
        key = sa.tuple_(_ENTITIES.c.type, _ENTITIES.c.id)
        for chunk in _chunks(list(uids)):
            row = conn.execute(sa.select(_ENTITIES.c.type, _ENTITIES.c.id).where(
                key.in_(chunk), _ENTITIES.c.source == "file",
                _ENTITIES.c.deleted == sa.false()).limit(1)).first()
            if row is not None:
                raise EntityError(
                    f"entity {row.type}::{orjson.dumps(row.id).decode()} is managed by the "
                    "policy set's entities.json; change it there", field="uid")

    def _upsert(self, conn: Connection, entities: Sequence[StoredEntity], source: Source,
                version: int, digests: Mapping[EntityUid, str]) -> None:
        if not entities:
            return
        now = utcnow()
        insert = sqlite_insert if self._db.is_sqlite else pg_insert
        stmt = insert(_ENTITIES)
        stmt = stmt.on_conflict_do_update(
            index_elements=[_ENTITIES.c.type, _ENTITIES.c.id],
            set_={c: stmt.excluded[c] for c in
                  ("attrs", "parents", "tags", "source", "revision", "deleted", "digest",
                   "updated_at")})
        for chunk in _chunks(entities):
            conn.execute(stmt, [
                {"type": e.type, "id": e.id, "attrs": dict(e.attrs),
                 "parents": _parents_json(e.parents), "tags": dict(e.tags) or None,
                 "source": source, "revision": version,
                 "deleted": False, "digest": digests[e.uid], "updated_at": now}
                for e in chunk])

    def _tombstone(self, conn: Connection, uids: Sequence[EntityUid], version: int) -> None:
        key = sa.tuple_(_ENTITIES.c.type, _ENTITIES.c.id)
        now = utcnow()
        for chunk in _chunks(list(uids)):
            conn.execute(sa.update(_ENTITIES).where(key.in_(chunk)).values(
                deleted=True, revision=version, attrs={}, parents=[], tags=None, digest="",
                updated_at=now))

    # -- admin reads (from the database, with bookkeeping) ----------------------------------

    def describe(self, uid: EntityUid) -> EntityRecord | None:
        with unavailable("reading an entity"), self._db.read() as conn:
            row = conn.execute(sa.select(_ENTITIES).where(
                _ENTITIES.c.type == uid[0], _ENTITIES.c.id == uid[1],
                _ENTITIES.c.deleted == sa.false())).first()
        return None if row is None else _record(row)

    def page(self, *, entity_type: str | None = None, after: EntityUid | None = None,
             limit: int = 100, source: Source | None = None) -> list[EntityRecord]:
        """Entities in (type, id) order strictly after ``after`` (keyset pagination)."""
        query = sa.select(_ENTITIES).where(_ENTITIES.c.deleted == sa.false())
        if entity_type is not None:
            query = query.where(_ENTITIES.c.type == entity_type)
        if source is not None:
            query = query.where(_ENTITIES.c.source == source)
        if after is not None:
            query = query.where(sa.tuple_(_ENTITIES.c.type, _ENTITIES.c.id)
                                > sa.tuple_(sa.literal(after[0]), sa.literal(after[1])))
        query = query.order_by(_ENTITIES.c.type, _ENTITIES.c.id).limit(limit)
        with unavailable("listing entities"), self._db.read() as conn:
            return [_record(r) for r in conn.execute(query)]

    def export(self, *, entity_type: str | None = None, source: Source | None = None,
               page_size: int = 1000) -> Iterator[EntityRecord]:
        after: EntityUid | None = None
        while True:
            batch = self.page(entity_type=entity_type, after=after, limit=page_size,
                              source=source)
            yield from batch
            if len(batch) < page_size:
                return
            after = batch[-1].entity.uid

    # -- operations -------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """For ``/status``: never raises, even when the database is down."""
        age = self._clock() - self._synced_at
        return {
            "backend": self._db.dialect,
            "url": describe_url(self._db.url),
            "count": len(self._by_uid),
            "version": self._version,
            "database_version": self._seen,
            "seconds_since_sync": round(age, 3),
            "poll_interval": self._poll_interval,
            "max_staleness": self._max_staleness,
            "available": age <= self._max_staleness,
        }


def _record(row: Any) -> EntityRecord:
    updated = row.updated_at
    if updated.tzinfo is None:  # SQLite keeps no zone; everything is written in UTC
        updated = updated.replace(tzinfo=UTC)
    return EntityRecord(_entity(row), row.source,
                        int(row.revision), updated)


if TYPE_CHECKING:  # mypy checks the store against the capability it declares
    _SQL: type[AdministeredEntityStore] = SQLEntityStore
