"""The decision log records every decision, never blocks or fails one, survives the database
going away (nothing made meanwhile is lost), drops only on overflow (counted), and forgets
what is older than the retention period."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio

from pdp.authzen import Action, Decision, Entity, EvaluationRequest
from pdp.decision_log import DecisionFilter, DecisionLog, DecisionReader
from pdp.entities.database import open_database
from pdp.http import create_app
from pdp.service import PDPService
from tests.conftest import POLICIES, make_service
from tests.entities.databases import Backend
from tests.waiting import eventually, wait_until

ALICE_DELETES_101 = {"subject": {"type": "user", "id": "alice"}, "action": {"name": "delete"},
                     "resource": {"type": "record", "id": "101"}}


def open_log(backend: Backend, **kwargs: Any) -> DecisionLog:
    kwargs.setdefault("flush_interval", 0.05)
    kwargs.setdefault("retry_interval", 0.1)
    return DecisionLog(open_database(backend.url, busy_timeout=0.2), **kwargs)


@pytest.fixture
def logs(backend: Backend) -> Iterator[Callable[..., DecisionLog]]:
    opened: list[DecisionLog] = []

    def make(**kwargs: Any) -> DecisionLog:
        log = open_log(backend, **kwargs)
        opened.append(log)
        return log

    yield make
    for log in opened:
        log.close()


@pytest_asyncio.fixture
async def served(backend: Backend) -> AsyncIterator[tuple[httpx.AsyncClient, PDPService]]:
    service = make_service(POLICIES / "search")
    service.decision_log = open_log(backend, personal_data="full")
    service.start()
    transport = httpx.ASGITransport(app=create_app(service))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://pdp.test") as client:
            yield client, service
    finally:
        service.close()


@pytest.fixture
def reader(backend: Backend) -> Iterator[DecisionReader]:
    found = DecisionReader(open_database(backend.url))
    yield found
    found.close()


@pytest.mark.asyncio
async def test_every_decision_and_search_is_recorded_with_what_an_audit_needs(
        served: tuple[httpx.AsyncClient, PDPService], reader: DecisionReader,
        backend: Backend) -> None:
    client, service = served
    await client.post("/access/v1/evaluation", headers={"X-Request-ID": "req-1"},
                      json={**ALICE_DELETES_101, "context": {"ip": "10.1.2.3"}})
    await client.post("/access/v1/evaluation", json={**ALICE_DELETES_101,
                                                     "subject": {"type": "user", "id": "bob"}})
    await client.post("/access/v1/evaluations", headers={"X-Request-ID": "req-3"}, json={
        "subject": {"type": "user", "id": "bob"}, "resource": {"type": "record", "id": "102"},
        "evaluations": [{"action": {"name": "view"}}, {"action": {"name": "delete"}},
                        {"action": {}}]})
    await client.post("/access/v1/search/resource", headers={"X-Request-ID": "req-4"}, json={
        "subject": {"type": "user", "id": "bob", "properties": {"mood": "ok"}},
        "action": {"name": "delete"}, "resource": {"type": "record"}})
    assert service.decision_log is not None and service.decision_log.flush()
    rows = reader.latest(10)
    assert [r["request_id"] for r in rows][:1] == ["req-1"]
    first, second, *batch, search = rows
    assert first["endpoint"] == "evaluation" and first["decision"] is True
    assert first["subject"] == {"type": "user", "id": "alice"}
    assert first["action"] == "delete"
    assert first["resource"] == {"type": "record", "id": "101"}
    assert first["outcome"] == "permit" and first["reasons"] == ["owners-manage-own-records"]
    assert first["policy_version"] == service.policies.current.version
    assert first["latency_ms"] > 0 and first["context"] == {"ip": "10.1.2.3"}
    assert second["decision"] is False and second["outcome"] == "no_permit"
    assert len(second["request_id"]) == 32  # none was sent: one was generated
    assert [(r["request_id"], r["item"], r.get("decision")) for r in batch] == [
        ("req-3", 0, True), ("req-3", 1, True), ("req-3", 2, False)]
    assert batch[2]["errors"] == ["'action.name' is required"]
    assert search["endpoint"] == "search/resource" and search["result_count"] == 4
    assert search["resource"] == {"type": "record", "id": None}
    assert search["properties"] == {"subject": {"mood": "ok"}}
    assert "decision" not in search


@pytest.mark.parametrize(("mode", "context", "properties"), [
    ("full", {"ip": "10.0.0.1"}, {"subject": {"email": "a@example.com"}}),
    ("hashed", "hmac-sha256:", {"subject": "hmac-sha256:"}),
    ("omitted", None, None),
])
def test_personal_data_is_kept_in_full_hashed_or_not_at_all(
        logs: Callable[..., DecisionLog], reader: DecisionReader, mode: str, context: Any,
        properties: Any) -> None:
    log = logs(personal_data=mode)
    log.start()
    request = EvaluationRequest(Entity("user", "ann", {"email": "a@example.com"}),
                                Action("view"), Entity("doc", "d"), {"ip": "10.0.0.1"})
    log.evaluation("r", request, Decision(True, "permit", ("p",)), "v1", 0.001)
    assert log.flush()
    [row] = reader.latest(1)
    assert row["personal_data"] == mode and row["subject"] == {"type": "user", "id": "ann"}
    if mode == "hashed":
        prefix = f"hmac-sha256:{log.status()['hash_key_id']}:"
        assert row["context"].startswith(prefix) and len(row["context"]) == len(prefix) + 64
        assert row["properties"]["subject"].startswith(prefix)
    else:
        assert row.get("context") == context and row.get("properties") == properties


def test_awkward_values_are_written_never_refused(
        logs: Callable[..., DecisionLog], reader: DecisionReader) -> None:
    log = logs(personal_data="full")
    log.start()
    request = EvaluationRequest(Entity("user", "a\x00b", {"x": "y\x00z"}), Action("vi\x00ew"),
                                Entity("doc", "é€😀"), {"nul": "\x00", "deep": [{"k": None}]})
    log.evaluation("r\x00" + "x" * 500, request, Decision(False, "error",
                                                          errors=("bad\x00",)), "v", 0.0)
    assert log.flush()
    assert log.stats().rejected == 0
    [row] = reader.latest(1)
    assert row["subject"]["id"].startswith("a") and row["resource"]["id"] == "é€😀"
    assert len(row["request_id"]) == 200
    assert row["context"]["deep"] == [{"k": None}]


@pytest.mark.asyncio
async def test_decisions_made_while_the_database_is_down_are_written_when_it_returns(
        served: tuple[httpx.AsyncClient, PDPService], reader: DecisionReader,
        backend: Backend) -> None:
    client, service = served
    log = service.decision_log
    assert log is not None
    run = uuid.uuid4().hex[:8]

    async def decide(i: int) -> float:
        started = time.perf_counter()
        response = await client.post("/access/v1/evaluation", json=ALICE_DELETES_101,
                                     headers={"X-Request-ID": f"{run}-{i}"})
        assert response.json() == {"decision": True}
        return time.perf_counter() - started

    for i in range(20):
        await decide(i)
    assert log.flush()
    with backend.locked():  # SQLite: another connection holds the write lock; PG: unreachable
        slowest = max([await decide(i) for i in range(20, 220)])
        async def outage_noticed() -> bool:
            await decide(999)  # keep deciding while the writer retries
            return log.stats().last_error is not None

        await eventually(outage_noticed, message="the writer noticing the outage")
        during = log.stats()
        assert during.queued + during.waiting > 0
        status = (await client.get("/status")).json()["decision_log"]
        assert status["last_error"] and status["dropped"] == 0
    assert slowest < 0.5  # a decision never waits for the log
    assert log.flush(timeout=20)
    written = [r["request_id"] for r in reader.query(
        DecisionFilter(), limit=1000).decisions if r["request_id"].startswith(run)]
    assert {f"{run}-{i}" for i in range(220)} <= set(written)
    assert log.stats().dropped == 0 and log.stats().last_error is None


@pytest.mark.asyncio
async def test_an_overflowing_queue_drops_new_decisions_and_counts_them(
        backend: Backend) -> None:
    service = make_service(POLICIES / "search")
    service.decision_log = open_log(backend, queue_size=10)  # not started: nothing drains
    transport = httpx.ASGITransport(app=create_app(service))
    async with httpx.AsyncClient(transport=transport, base_url="http://pdp.test") as client:
        for _ in range(25):
            assert (await client.post("/access/v1/evaluation",
                                      json=ALICE_DELETES_101)).status_code == 200
        status = (await client.get("/status")).json()["decision_log"]
        assert (status["queued"], status["dropped"]) == (10, 15)
        metrics = (await client.get("/metrics")).text
        assert "pdp_decision_log_dropped_total 15.0" in metrics
        assert "pdp_decision_log_queued 10.0" in metrics
    service.decision_log.start()
    assert service.decision_log.flush()
    assert service.decision_log.stats().written == 10
    service.close()


def test_records_older_than_the_retention_period_are_deleted(
        logs: Callable[..., DecisionLog], reader: DecisionReader) -> None:
    log = logs(retention_days=1)
    log.start()
    request = EvaluationRequest(Entity("user", "ann"), Action("view"), Entity("doc", "d"))
    for _ in range(3):
        log.evaluation(None, request, Decision(False), "v", 0.0)
    assert log.flush()
    assert log.purge() == 0
    assert log.purge(now=datetime.now(UTC) + timedelta(days=2)) == 3
    assert reader.latest(10) == []


def test_the_writer_purges_on_its_own_schedule(logs: Callable[..., DecisionLog],
                                               reader: DecisionReader) -> None:
    log = logs(retention_days=1e-6, purge_interval=0.1)  # anything older than 0.09 s
    request = EvaluationRequest(Entity("user", "ann"), Action("view"), Entity("doc", "d"))
    log.evaluation(None, request, Decision(False), "v", 0.0)
    log.start()
    assert log.flush()
    wait_until(lambda: not reader.latest(1), timeout=5, message="the scheduled purge")


@pytest.mark.parametrize(("context", "properties"), [
    (None, None), ({"ip": None}, None), (None, {"email": None}), ([None, None], None)])
def test_hashed_records_digest_exactly_the_values_that_were_sent(
        logs: Callable[..., DecisionLog], reader: DecisionReader, context: Any,
        properties: Any) -> None:
    log = logs(personal_data="hashed")
    log.start()
    request = EvaluationRequest(Entity("user", "ann", properties), Action("view"),
                                Entity("doc", "d"), context)
    log.evaluation("r", request, Decision(True, "permit", ("p",)), "v1", 0.001)
    assert log.flush()
    [row] = reader.latest(1)
    prefix = f"hmac-sha256:{log.status()['hash_key_id']}:"
    assert (row.get("context") is None) == (context is None)
    assert context is None or row["context"].startswith(prefix)
    assert (row.get("properties") is None) == (properties is None)
    assert properties is None or row["properties"]["subject"].startswith(prefix)
