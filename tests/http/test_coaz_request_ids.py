"""``/coaz/v1/authorize`` records its decisions with the request's ``X-Request-ID``, as the
AuthZEN endpoints do (AuthZEN 1.0 section 10.1; docs/decision-log.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from pdp.decision_log import DecisionFilter, DecisionReader
from pdp.http import create_app
from pdp.service import PDPService
from pdp.settings import Settings
from tests.conftest import POLICIES
from tests.gateway.support import RESOURCE, TOOLS, call

ALICE = {"iss": "https://as.example.com", "aud": RESOURCE, "sub": "alice@example.com",
         "client_id": "agent-app-1"}


@pytest_asyncio.fixture
async def logged(tmp_path: Path) -> AsyncIterator[tuple[PDPService, httpx.AsyncClient]]:
    service = PDPService.from_settings(Settings(
        policies=POLICIES / "mcp", entity_store="memory", resource_id=RESOURCE,
        decision_log="on", data_dir=tmp_path, watch=False))
    service.start()
    app = create_app(service)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://pdp.test") as client:
        yield service, client
    service.close()


def rows(service: PDPService) -> list[dict[str, Any]]:
    log = service.decision_log
    assert log is not None and log.flush()
    return DecisionReader(log.database).latest(100, DecisionFilter())


@pytest.mark.asyncio
async def test_the_decisions_of_a_coaz_authorization_carry_the_request_id(
        logged: tuple[PDPService, httpx.AsyncClient]) -> None:
    service, client = logged
    msg = call("copy_object", {"source": "reports/q1.csv", "destination": "archive/2020.csv"})
    answer = await client.post("/coaz/v1/authorize", headers={"X-Request-ID": "coaz-req-7"},
                               json={"message": msg, "tools": TOOLS, "claims": ALICE})
    assert answer.json()["allow"] is False
    found = sorted(rows(service), key=lambda r: r["item"])
    assert [(r["request_id"], r["endpoint"], r["item"], r["decision"]) for r in found] == [
        ("coaz-req-7", "evaluations", 0, True), ("coaz-req-7", "evaluations", 1, False)]


@pytest.mark.asyncio
async def test_a_coaz_authorization_without_a_request_id_is_logged_under_a_generated_one(
        logged: tuple[PDPService, httpx.AsyncClient]) -> None:
    service, client = logged
    msg = call("copy_object", {"source": "reports/q1.csv", "destination": "reports/q1-copy.csv"})
    answer = await client.post("/coaz/v1/authorize",
                               json={"message": msg, "tools": TOOLS, "claims": ALICE})
    assert answer.json()["allow"] is True
    found = rows(service)
    assert len(found) == 2 and all(r["request_id"] for r in found)
