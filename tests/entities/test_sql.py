"""The SQL entity store on SQLite and PostgreSQL: file- and API-managed entities, atomic
writes, propagation between replicas, and failing closed when the database is gone."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from pdp.entities.database import SchemaVersionRow, open_database
from pdp.entities.manage import EntityAdmin
from pdp.entities.model import StoredEntity
from pdp.entities.sql import SQLEntityStore
from pdp.entities.validate import EntityValidator
from pdp.errors import EntityError, StoreUnavailable
from pdp.http import create_app
from pdp.policies.compiled import compile_directory
from tests.conftest import POLICIES, make_service
from tests.entities.databases import Backend
from tests.waiting import wait_until

SEARCH = compile_directory(POLICIES / "search")
VALIDATOR = EntityValidator(SEARCH.schema, SEARCH.schema_types)
POLL = 0.1


def user(uid: str, role: str = "employee", department: str = "Legal") -> dict[str, Any]:
    return {"uid": {"type": "user", "id": uid}, "attrs": {"role": role, "department": department},
            "parents": []}


def file_entities(*, drop: tuple[str, ...] = (), extra: tuple[dict[str, Any], ...] = (),
                  change: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    out = []
    for doc in SEARCH.entities:
        uid = doc["uid"]
        if uid["type"] == "Action" or uid["id"] in drop:
            continue
        out.append(change.get(uid["id"], doc) if change else doc)
    return [*out, *extra]


@pytest.fixture
def stores(backend: Backend) -> Iterator[Callable[..., SQLEntityStore]]:
    opened: list[SQLEntityStore] = []

    def open_store(**kwargs: Any) -> SQLEntityStore:
        kwargs.setdefault("poll_interval", POLL)
        kwargs.setdefault("max_staleness", 1.0)
        store = SQLEntityStore.open(backend.url, **kwargs)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()


def admin(store: SQLEntityStore) -> EntityAdmin:
    return EntityAdmin(store, lambda: VALIDATOR)


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> float:
    """Wait until ``condition`` holds; how long that took, in seconds."""
    started = time.monotonic()
    wait_until(condition, timeout=timeout)
    return time.monotonic() - started


def test_entities_json_is_applied_once_and_its_entities_are_file_managed(
        stores: Callable[..., SQLEntityStore]) -> None:
    first = stores()
    applied = first.replace_file_managed(SEARCH.entities)
    assert (applied.written, applied.deleted) == (26, 0)
    assert first.candidates("user", after=None, limit=10) == [
        "alice", "bob", "carol", "dan", "erin", "felix"]
    alice = first.describe(("user", "alice"))
    assert alice is not None and alice.source == "file"
    assert alice.entity.attrs == {"role": "manager", "department": "Sales"}
    second = stores()  # a second replica starting with the same policy set
    again = second.replace_file_managed(SEARCH.entities)
    assert not again.changed and again.version is None
    assert len(second) == 26


def test_replicas_starting_together_apply_the_file_exactly_once(
        stores: Callable[..., SQLEntityStore]) -> None:
    replicas = [stores() for _ in range(4)]
    barrier = threading.Barrier(len(replicas))
    results: list[Any] = []

    def start(store: SQLEntityStore) -> None:
        barrier.wait()
        results.append(store.replace_file_managed(SEARCH.entities))

    threads = [threading.Thread(target=start, args=(s,)) for s in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.written for r in results) == [0, 0, 0, 26]
    for store in replicas:
        store.sync()
        assert len(store) == 26


def test_a_changed_file_updates_and_deletes_its_entities_and_keeps_api_managed_ones(
        stores: Callable[..., SQLEntityStore]) -> None:
    store = stores()
    store.replace_file_managed(SEARCH.entities)
    admin(store).put([user("zoe")])
    changed = file_entities(drop=("bob",), extra=(user("gina"),),
                            change={"alice": user("alice", "employee", "Sales")})
    result = store.replace_file_managed(changed)
    assert (result.written, result.deleted) == (2, 1)
    assert store.get(("user", "bob")) is None and store.describe(("user", "bob")) is None
    assert store.get(("user", "gina")) is not None
    alice = store.get(("user", "alice"))
    assert alice is not None and alice.attrs["role"] == "employee"
    zoe = store.describe(("user", "zoe"))
    assert zoe is not None and zoe.source == "api"


def test_the_api_may_not_change_or_delete_a_file_managed_entity(
        stores: Callable[..., SQLEntityStore]) -> None:
    store = stores()
    store.replace_file_managed(SEARCH.entities)
    with pytest.raises(EntityError, match=r'user::"alice" is managed by .*entities\.json'):
        admin(store).put([user("alice", "employee")])
    with pytest.raises(EntityError, match=r'user::"alice" is managed'):
        admin(store).delete([("user", "alice")])
    alice = store.get(("user", "alice"))
    assert alice is not None and alice.attrs["role"] == "manager"


def test_a_bad_entity_refuses_the_whole_import_and_names_entity_and_attribute(
        stores: Callable[..., SQLEntityStore]) -> None:
    store = stores()
    before = store.status()["database_version"]
    docs = [user("u1"), user("u2"), {"uid": {"type": "user", "id": "u3"},
                                     "attrs": {"role": 7, "department": "Legal"}}]
    with pytest.raises(EntityError) as refused:
        admin(store).put(docs)
    assert refused.value.message == 'entity user::"u3": attribute `role` must be String, got 7'
    assert store.describe(("user", "u1")) is None and store.get(("user", "u1")) is None
    assert store.status()["database_version"] == before


def test_an_import_refused_by_the_database_leaves_nothing_half_written(
        stores: Callable[..., SQLEntityStore]) -> None:
    store = stores()
    store.replace_file_managed(SEARCH.entities)
    before = store.status()["database_version"]
    # valid entities, but the last one is file-managed: the transaction is rolled back
    with pytest.raises(EntityError, match="managed by"):
        admin(store).put([user("u1"), user("u2"), user("alice")])
    assert store.describe(("user", "u1")) is None
    other = stores()
    assert other.get(("user", "u1")) is None
    assert store.status()["database_version"] == before


def test_a_write_is_seen_here_at_once_and_by_another_replica_within_the_poll_interval(
        stores: Callable[..., SQLEntityStore]) -> None:
    writer, reader = stores(), stores()
    reader.start()
    version_before = writer.version
    admin(writer).put([user("zoe", "manager")])
    assert writer.version > version_before  # the decision cache key moves at once
    assert writer.get(("user", "zoe")) is not None
    seen_after = wait_for(lambda: reader.get(("user", "zoe")) is not None)
    assert seen_after < POLL + 0.5
    admin(writer).delete([("user", "zoe")])
    assert writer.get(("user", "zoe")) is None
    gone_after = wait_for(lambda: reader.get(("user", "zoe")) is None)
    assert gone_after < POLL + 0.5
    assert reader.candidates("user", after=None, limit=10) == []


def test_a_replica_that_missed_purged_deletions_reloads_in_full(
        stores: Callable[..., SQLEntityStore]) -> None:
    writer, reader = stores(), stores()
    admin(writer).put([user("u1"), user("u2")])
    reader.sync()
    assert len(reader) == 2
    admin(writer).delete([("user", "u1")])
    assert writer.purge_tombstones(older_than=timedelta(0)) == 1
    reader.sync()
    assert reader.get(("user", "u1")) is None and len(reader) == 1


def test_candidates_are_walked_in_id_order_strictly_after_the_cursor(
        stores: Callable[..., SQLEntityStore]) -> None:
    store = stores()
    ids = [f"r{i:03d}" for i in range(50)]
    store.put_many([StoredEntity.build("record", i, {}) for i in reversed(ids)])
    walked: list[str] = []
    after = None
    while page := store.candidates("record", after=after, limit=7):
        walked.extend(page)
        after = page[-1]
    assert walked == ids
    assert store.candidates("nothing", after=None, limit=5) == []
    assert store.types() == ["record"]


def test_reads_fail_closed_once_the_database_is_gone_longer_than_the_bound(
        backend: Backend, stores: Callable[..., SQLEntityStore]) -> None:
    store = stores(max_staleness=0.5)
    store.put_many([StoredEntity.build("user", "u1", {})])
    store.start()
    with backend.unreachable():
        assert store.get(("user", "u1")) is not None  # within the bound: the mirror serves
        wait_for(lambda: not store.status()["available"], timeout=5)
        with pytest.raises(StoreUnavailable):
            store.get_many([("user", "u1")])
        with pytest.raises(StoreUnavailable):
            _ = store.version
    wait_for(lambda: store.status()["available"], timeout=5)
    assert store.get(("user", "u1")) is not None


@pytest.mark.asyncio
async def test_decisions_are_503_with_retry_after_while_the_store_is_unreachable(
        backend: Backend) -> None:
    service = make_service(POLICIES / "search", database_url=backend.url, poll_interval=POLL,
                           entity_max_staleness=0.5)
    service.start()
    body = {"subject": {"type": "user", "id": "alice"}, "action": {"name": "delete"},
            "resource": {"type": "record", "id": "101"}}
    search = {"subject": {"type": "user", "id": "alice"}, "action": {"name": "view"},
              "resource": {"type": "record"}}
    transport = httpx.ASGITransport(app=create_app(service))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://pdp.test") as client:
            assert (await client.post("/access/v1/evaluation", json=body)).json() == {
                "decision": True}
            with backend.unreachable():
                wait_for(lambda: not service.store.status()[  # type: ignore[attr-defined]
                    "available"])
                for path, payload in (("/access/v1/evaluation", body),
                                      ("/access/v1/search/resource", search)):
                    denied = await client.post(path, json=payload)
                    assert denied.status_code == 503
                    assert denied.headers["retry-after"] == "1"
                    assert denied.json()["error"] == "store_unavailable"
                status = (await client.get("/status")).json()
                assert status["entities"]["available"] is False
            wait_for(lambda: service.store.status()["available"])  # type: ignore[attr-defined]
            assert (await client.post("/access/v1/evaluation", json=body)).json() == {
                "decision": True}
    finally:
        service.close()


def test_a_database_with_a_newer_schema_is_refused(
        backend: Backend, stores: Callable[..., SQLEntityStore]) -> None:
    stores().close()
    db = open_database(backend.url)
    table = SchemaVersionRow.__table__  # type: ignore[attr-defined]
    with db.write() as conn:
        conn.execute(sa.update(table).where(table.c.component == "entities").values(version=99))
    db.dispose()
    with pytest.raises(StoreUnavailable, match="newer than this PDP"):
        SQLEntityStore.open(backend.url)


def test_an_unreachable_database_at_start_is_store_unavailable(
        backend: Backend, tmp_path: Any) -> None:
    if backend.relay is not None:
        backend.relay.down()
        url = backend.url
    else:
        blocker = tmp_path / "not-a-directory"
        blocker.write_text("")
        url = f"sqlite:///{blocker}/entities.db"
    with pytest.raises(StoreUnavailable):
        SQLEntityStore.open(url)


def test_entity_tags_are_stored_and_reach_every_replica(
        stores: Callable[..., SQLEntityStore]) -> None:
    first, second = stores(), stores()
    tagged = StoredEntity.build("user", "tia", {"role": "employee", "department": "Legal"},
                                (), {"clearance": "high"})
    first.put_many([tagged])
    wait_for(lambda: second.get(("user", "tia")) is not None)
    found = second.get(("user", "tia"))
    assert found is not None and found.tags == {"clearance": "high"}
    assert b'"tags":{"clearance":"high"}' in found.json
    record = first.describe(("user", "tia"))
    assert record is not None and record.to_dict()["tags"] == {"clearance": "high"}


def test_a_first_version_database_gains_the_tags_column(backend: Backend) -> None:
    from pdp.entities.database import migrate
    from pdp.entities.sql import MIGRATIONS

    db = open_database(backend.url)
    with db.write() as conn:  # a database as the first schema version made it
        conn.execute(sa.text(
            "CREATE TABLE pdp_entities (type VARCHAR NOT NULL, id VARCHAR NOT NULL, attrs JSON,"
            " parents JSON, source VARCHAR(8), revision BIGINT, deleted BOOLEAN, digest "
            "VARCHAR(64), updated_at TIMESTAMP, PRIMARY KEY (type, id))"))
        conn.execute(sa.text("CREATE TABLE pdp_store_state (id INTEGER PRIMARY KEY, version "
                             "BIGINT, purged_through BIGINT)"))
        conn.execute(sa.text("INSERT INTO pdp_store_state VALUES (1, 0, 0)"))
    migrate(db, "entities", (lambda conn: None,))  # recorded as version 1
    assert migrate(db, "entities", MIGRATIONS) == 1
    db.dispose()
    store = SQLEntityStore.open(backend.url)
    try:
        store.put_many([StoredEntity.build("user", "x", {}, (), {"t": 1})])
        found = store.get(("user", "x"))
        assert found is not None and found.tags == {"t": 1}
    finally:
        store.close()
