"""Reading the decision log: ``/admin/decisions`` (authenticated, filtered, paged) and
``pdp decisions tail|query``."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio

from pdp.cli import main
from pdp.decision_log import DecisionLog
from pdp.decision_log.segments import SegmentWriter
from pdp.decision_log.writer import SPOOL_DIR
from pdp.entities.database import open_database
from pdp.http import create_app
from pdp.service import PDPService
from tests.conftest import POLICIES, make_service
from tests.entities.databases import Backend

TOKEN = "admin-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def evaluation(who: str, action: str, record: str) -> dict[str, Any]:
    return {"subject": {"type": "user", "id": who}, "action": {"name": action},
            "resource": {"type": "record", "id": record}}


@pytest_asyncio.fixture
async def logged(backend: Backend) -> AsyncIterator[tuple[httpx.AsyncClient, PDPService]]:
    """A PDP that made eight decisions, all written to the log."""
    service = make_service(POLICIES / "search", admin_token=TOKEN)
    service.decision_log = DecisionLog(open_database(backend.url), flush_interval=0.05)
    service.start()
    transport = httpx.ASGITransport(app=create_app(service))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://pdp.test") as client:
            for i, (who, action, record) in enumerate([
                    ("alice", "delete", "101"), ("bob", "delete", "101"),
                    ("bob", "view", "102"), ("carol", "edit", "103"),
                    ("dan", "view", "101"), ("erin", "delete", "105"),
                    ("alice", "view", "120"), ("felix", "edit", "101")]):
                await client.post("/access/v1/evaluation", json=evaluation(who, action, record),
                                  headers={"X-Request-ID": f"r{i}"})
            assert service.decision_log.flush()
            yield client, service
    finally:
        service.close()


async def decisions(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get("/admin/decisions", params=params, headers=AUTH)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.asyncio
async def test_the_decision_log_endpoint_needs_the_admin_token(
        logged: tuple[httpx.AsyncClient, PDPService]) -> None:
    client, _ = logged
    assert (await client.get("/admin/decisions")).status_code == 401


@pytest.mark.asyncio
async def test_filters_select_by_subject_action_resource_decision_and_time(
        logged: tuple[httpx.AsyncClient, PDPService]) -> None:
    client, _ = logged

    async def ids(**params: Any) -> list[str]:
        return [d["request_id"] for d in (await decisions(client, **params))["decisions"]]

    assert await ids() == [f"r{i}" for i in range(7, -1, -1)]  # newest first
    assert await ids(subject="alice") == ["r6", "r0"]
    assert await ids(subject="bob", action="delete") == ["r1"]
    assert await ids(resource="101", resource_type="record") == ["r7", "r4", "r1", "r0"]
    assert await ids(decision="true") == ["r6", "r5", "r4", "r3", "r2", "r0"]
    assert await ids(decision="false", subject_type="user") == ["r7", "r1"]
    now = datetime.now(UTC)
    assert await ids(since=(now - timedelta(minutes=5)).isoformat(), subject="dan") == ["r4"]
    assert await ids(until=(now - timedelta(minutes=5)).isoformat()) == []
    assert await ids(since="2000-01-01T00:00:00Z", until="2100-01-01") == [
        f"r{i}" for i in range(7, -1, -1)]
    bad = await client.get("/admin/decisions", params={"since": "yesterday"}, headers=AUTH)
    assert bad.status_code == 400 and bad.json()["field"] == "since"


@pytest.mark.asyncio
async def test_pages_follow_the_cursor_to_the_oldest_record(
        logged: tuple[httpx.AsyncClient, PDPService]) -> None:
    client, _ = logged
    seen: list[str] = []
    cursor = None
    while True:
        page = await decisions(client, limit=3, **({"cursor": cursor} if cursor else {}))
        assert len(page["decisions"]) <= 3
        seen.extend(d["request_id"] for d in page["decisions"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"r{i}" for i in range(7, -1, -1)]


@pytest.mark.asyncio
async def test_with_the_log_off_the_endpoint_says_so() -> None:
    service = make_service(POLICIES / "search", admin_token=TOKEN)
    transport = httpx.ASGITransport(app=create_app(service))
    async with httpx.AsyncClient(transport=transport, base_url="http://pdp.test") as client:
        response = await client.get("/admin/decisions", headers=AUTH)
    assert response.status_code == 404 and "PDP_DECISION_LOG" in response.json()["message"]


@pytest.mark.asyncio
async def test_pdp_decisions_tail_and_query_print_json_lines(
        logged: tuple[httpx.AsyncClient, PDPService], backend: Backend,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decisions", "tail", "--url", backend.url, "-n", "3"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["request_id"] for r in lines] == ["r5", "r6", "r7"]  # oldest first
    assert main(["decisions", "query", "--url", backend.url, "--decision", "deny",
                 "--limit", "1"]) == 0
    out, err = capsys.readouterr()
    assert [json.loads(line)["request_id"] for line in out.splitlines()] == ["r7"]
    cursor = err.split("next_cursor: ")[1].strip()
    assert main(["decisions", "query", "--url", backend.url, "--decision", "deny",
                 "--cursor", cursor]) == 0
    out, _ = capsys.readouterr()
    assert [json.loads(line)["request_id"] for line in out.splitlines()] == ["r1"]
    assert main(["decisions", "query", "--url", backend.url, "--since", "nonsense"]) == 2
    assert "--since must be an ISO 8601 time" in capsys.readouterr().err


def test_pdp_decisions_feeds_what_is_spooled_before_reading_so_it_never_lags(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A record in a segment file, not yet fed (the feeder yields a busy core), is found."""
    monkeypatch.delenv("PDP_DECISION_LOG_URL", raising=False)
    writer = SegmentWriter(tmp_path / SPOOL_DIR)
    writer.append(orjson.dumps(
        ["evaluation", time.time(), "spooled-only", None, "user", "u", "view", "doc", "d", True,
         "permit", [], [], "v1", 0.001, None, None, None, "hashed"],
        option=orjson.OPT_APPEND_NEWLINE))
    writer.close()
    assert main(["decisions", "query", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert [json.loads(line)["request_id"] for line in out.splitlines()] == ["spooled-only"]
    assert main(["decisions", "tail", "--data-dir", str(tmp_path)]) == 0  # fed exactly once
    out = capsys.readouterr().out
    assert [json.loads(line)["request_id"] for line in out.splitlines()] == ["spooled-only"]
