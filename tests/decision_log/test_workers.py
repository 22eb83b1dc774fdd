"""With ``--workers N`` every worker spools its own segments and any one of them feeds the
database at a time: each decision is logged exactly once, and SIGTERM loses none."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from pdp.decision_log import DecisionFilter, DecisionReader
from pdp.entities.database import open_database, sqlite_url
from tests.conftest import POLICIES, RICK_READS_TODOS, launch_server

COUNT = 400


@pytest.mark.slow
def test_two_workers_log_every_decision_once_and_lose_none_at_sigterm() -> None:
    server = launch_server(POLICIES / "todo", "--workers", "2", "--decision-cache", "off",
                           "--log-level", "warning", env={"PDP_DECISION_LOG": "on"})

    async def burst() -> None:
        limits = httpx.Limits(max_connections=16, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=server.base, limits=limits, timeout=30) as client:
            async def one(i: int) -> None:
                response = await client.post("/access/v1/evaluation", json=RICK_READS_TODOS,
                                             headers={"X-Request-ID": f"w-{i:04d}"})
                assert response.json() == {"decision": True}

            await asyncio.gather(*(one(i) for i in range(COUNT)))

    try:
        asyncio.run(burst())
    finally:
        assert server.stop() == 0, server.log.read_text()
    reader = DecisionReader(open_database(sqlite_url(server.data_dir / "decisions.db")))
    try:
        logged = [r["request_id"] for r in reader.query(DecisionFilter(), limit=1000).decisions]
    finally:
        reader.close()
    assert len(logged) == len(set(logged)), "a decision was logged twice"
    assert set(logged) == {f"w-{i:04d}" for i in range(COUNT)}
    assert list((server.data_dir / "decision-log").glob("*.jsonl")) == []
    assert "unwritten" not in server.log.read_text()
