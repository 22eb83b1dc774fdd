"""The decision endpoints' short path (pdp.http.lane): every check of the application's own
middleware still applies, and other methods and paths take FastAPI's full path."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pdp.auth.keys import entry_for, new_key
from pdp.http import create_app
from tests.conftest import POLICIES, RICK_READS_TODOS, make_service

EVALUATION = "/access/v1/evaluation"


def _client(**settings: object) -> httpx.AsyncClient:
    app = create_app(make_service(POLICIES / "todo", entity_store="memory", **settings))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pdp.test")


@pytest.mark.asyncio
async def test_the_short_path_decides_echoes_the_request_id_and_counts_the_request() -> None:
    async with _client() as client:
        response = await client.post(EVALUATION, json=RICK_READS_TODOS,
                                     headers={"X-Request-ID": "lane-1"})
        metrics = (await client.get("/metrics")).text
    assert response.status_code == 200 and response.json()["decision"] is True
    assert response.headers["x-request-id"] == "lane-1"
    assert response.headers["cache-control"] == "no-store"
    counted = [s for f in text_string_to_metric_families(metrics) for s in f.samples
               if s.name == "pdp_http_requests_total" and s.labels.get("status") == "200"]
    assert counted and sum(s.value for s in counted) >= 1


@pytest.mark.asyncio
async def test_the_short_path_still_refuses_a_request_without_a_pep_credential() -> None:
    key = new_key()
    async with _client(api_keys=[entry_for("gateway", key)]) as client:
        refused = await client.post(EVALUATION, json=RICK_READS_TODOS)
        allowed = await client.post(EVALUATION, json=RICK_READS_TODOS,
                                    headers={"X-API-Key": key})
    assert refused.status_code == 401
    assert allowed.status_code == 200


@pytest.mark.asyncio
async def test_other_methods_on_a_decision_path_are_answered_as_before() -> None:
    async with _client() as client:
        got = await client.get(EVALUATION)
        bad = await client.post(EVALUATION, content=b"{", headers={
            "Content-Type": "application/json"})
    assert got.status_code == 405
    assert bad.status_code == 400 and bad.headers["cache-control"] == "no-store"
