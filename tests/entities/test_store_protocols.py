"""Each entity store implements the capabilities it declares (pdp.entities.store), and what a
caller may do with a store follows from those capabilities, never from probing its class."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pdp.entities.model import StoredEntity
from pdp.entities.sql import SQLEntityStore
from pdp.entities.store import (
    AdministeredEntityStore,
    EntityStore,
    InMemoryEntityStore,
    LinkReader,
    LinkWriter,
    MutableEntityStore,
)
from pdp.policies.links import LinkInfo
from tests.entities.databases import Backend
from tests.waiting import wait_until

ALICE = StoredEntity.build("User", "alice", {"dept": "eng"})


@pytest.fixture
def sql_store(backend: Backend) -> Iterator[SQLEntityStore]:
    store = SQLEntityStore.open(backend.url, poll_interval=0.05, max_staleness=5.0)
    yield store
    store.close()


def test_the_in_memory_store_is_a_mutable_store_without_administration() -> None:
    store = InMemoryEntityStore([ALICE])
    for capability in (LinkReader, EntityStore, MutableEntityStore):
        assert isinstance(store, capability), capability.__name__
    assert not isinstance(store, LinkWriter)
    assert not isinstance(store, AdministeredEntityStore)
    assert store.administered() is None


def test_the_in_memory_store_reads_no_links_and_reports_its_status() -> None:
    store = InMemoryEntityStore([ALICE])
    assert store.links() is store.links()  # one snapshot: the engine's state is not rebuilt
    assert dict(store.links().by_id) == {}
    assert store.status() == {"backend": "memory", "count": 1, "version": store.version}


def test_the_sql_store_declares_every_capability_and_administers_itself(
        sql_store: SQLEntityStore) -> None:
    for capability in (LinkReader, EntityStore, MutableEntityStore, LinkWriter,
                       AdministeredEntityStore):
        assert isinstance(sql_store, capability), capability.__name__
    assert sql_store.administered() is sql_store
    assert sql_store.status()["available"] is True


def test_a_link_written_elsewhere_reaches_the_listeners_of_the_store(
        sql_store: SQLEntityStore, backend: Backend) -> None:
    told: list[int] = []
    sql_store.watch_links(lambda: told.append(len(sql_store.links().by_id)))
    sql_store.start()
    other = SQLEntityStore.open(backend.url, poll_interval=0.05, max_staleness=5.0)
    try:
        other.put_links([LinkInfo("link-1", "t", {"?principal": ("User", "alice")})])
    finally:
        other.close()
    wait_until(lambda: 1 in told, timeout=10)
    assert told[-1] == 1
