"""The decision endpoints' short path (pdp.http.lane): every check of the application's own
middleware still applies, and other methods and paths take FastAPI's full path."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.types import ASGIApp, Receive, Scope, Send

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


class _Failing:
    """A middleware that fails before (``when="before"``) or after the response started."""

    def __init__(self, app: ASGIApp, when: str) -> None:
        self.app, self.when = app, when

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.when == "before" and scope["type"] == "http":
            raise RuntimeError("broken middleware")
        await self.app(scope, receive, send)
        if self.when == "after" and scope["type"] == "http":
            raise RuntimeError("broken middleware")


@pytest.mark.asyncio
async def test_a_failure_on_the_short_path_before_any_response_is_a_500() -> None:
    app = create_app(make_service(POLICIES / "todo", entity_store="memory"))
    app.add_middleware(_Failing, when="before")
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://pdp.test") as client:
        response = await client.post(EVALUATION, json=RICK_READS_TODOS)
    assert response.status_code == 500


@pytest.mark.asyncio
async def test_a_failure_on_the_short_path_after_the_response_keeps_the_response() -> None:
    app = create_app(make_service(POLICIES / "todo", entity_store="memory"))
    app.add_middleware(_Failing, when="after")
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://pdp.test") as client:
        response = await client.post(EVALUATION, json=RICK_READS_TODOS)
    assert response.status_code == 200 and response.json()["decision"] is True
