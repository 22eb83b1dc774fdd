"""The decision log survives ``kill -9`` of a real ``pdp serve``: a decision is accepted into
memory, appended to a segment file in the data directory within the write interval, and fed
from there into the SQL log; a process killed outright loses only what it had not yet appended
(at most one write interval of decisions). Once the segment files hold a decision, it reaches
the SQL log exactly once, after a restart if need be."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from pdp.decision_log import DecisionFilter, DecisionReader
from pdp.entities.database import open_database, sqlite_url
from tests.conftest import POLICIES, RICK_READS_TODOS, Server, launch_server

COUNT = 300


def spooled_request_ids(data_dir: Path, prefix: str) -> set[str]:
    """Request ids found in complete lines of the segment files (what a crash keeps)."""
    found: set[str] = set()
    for segment in (data_dir / "decision-log").glob("*.jsonl"):
        data = segment.read_bytes()
        for line in data[:data.rfind(b"\n") + 1].splitlines():
            marker = line.find(prefix.encode())
            if marker >= 0:
                found.add(line[marker:line.find(b'"', marker)].decode())
    return found


async def decide_all(base: str, prefix: str) -> None:
    limits = httpx.Limits(max_connections=20)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        async def one(i: int) -> None:
            response = await client.post("/access/v1/evaluation", json=RICK_READS_TODOS,
                                         headers={"X-Request-ID": f"{prefix}{i:04d}"})
            assert response.json() == {"decision": True}

        await asyncio.gather(*(one(i) for i in range(COUNT)))


@pytest.mark.slow
def test_kill_9_after_the_segment_holds_the_decisions_loses_none_and_duplicates_none() -> None:
    first = launch_server(POLICIES / "todo", "--decision-cache", "off", "--log-level", "warning",
                          env={"PDP_DECISION_LOG": "on"})
    data_dir = first.data_dir
    second: Server | None = None
    try:
        asyncio.run(decide_all(first.base, "kill-"))
        answered = time.monotonic()
        expected = {f"kill-{i:04d}" for i in range(COUNT)}
        deadline = answered + 10
        while (spooled := spooled_request_ids(data_dir, "kill-")) != expected:
            assert time.monotonic() < deadline, f"{len(spooled)} of {COUNT} reached a segment"
            time.sleep(0.002)
        first.proc.kill()  # SIGKILL: no shutdown, no drain
        assert first.proc.wait(timeout=10) == -9

        second = launch_server(POLICIES / "todo", "--log-level", "warning",
                               env={"PDP_DECISION_LOG": "on", "PDP_DATA_DIR": str(data_dir)})
        reader = DecisionReader(open_database(sqlite_url(data_dir / "decisions.db")))
        try:
            deadline = time.monotonic() + 20
            while True:
                logged = [r["request_id"] for r in reader.query(
                    DecisionFilter(),
                    limit=1000).decisions if r["request_id"].startswith("kill-")]
                if len(logged) >= COUNT or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        finally:
            reader.close()
        assert len(logged) == len(set(logged)), "a decision was logged twice"
        assert set(logged) == expected
    finally:
        if first.proc.poll() is None:
            first.stop()
        if second is not None:
            second.stop()
