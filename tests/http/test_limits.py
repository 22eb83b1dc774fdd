"""Request limits beyond body size and nesting (tests/http/test_status_codes.py has those):
the request timeout (408 for a slow body, 503 ``timeout`` for slow awaited work), the
per-client rate limit (429 with ``Retry-After``), and the search page limit."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pdp.auth.keys import entry_for
from pdp.http import create_app
from tests.conftest import POLICIES, RICK_READS_TODOS, make_service
from tests.gateway.support import ISSUER, RESOURCE, TOOLS, Keys, call

EVALUATION = "/access/v1/evaluation"
VALID = RICK_READS_TODOS
TIMEOUT = 0.3


def _client(app: Any, ip: str = "127.0.0.1") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(ip, 50000)),
                             base_url="http://pdp.test")


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == code
    assert body["message"]
    return body


async def _slow_body() -> AsyncIterator[bytes]:
    """The first half of a request, then nothing for far longer than the timeout."""
    text = json.dumps(VALID).encode()
    yield text[: len(text) // 2]
    await asyncio.sleep(30)
    yield text[len(text) // 2:]


# -- request timeout ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_body_that_does_not_arrive_within_the_timeout_is_a_408() -> None:
    app = create_app(make_service(POLICIES / "todo", entity_store="memory",
                                  request_timeout=TIMEOUT))
    async with _client(app) as client:
        response = await client.post(EVALUATION, content=_slow_body(),
                                     headers={"Content-Type": "application/json"})
        body = _error(response, 408, "request_timeout")
        assert str(TIMEOUT) in body["message"]
        answered = await client.post(EVALUATION, json=VALID)
        assert answered.json() == {"decision": True}


@pytest.mark.asyncio
async def test_a_slow_body_to_the_coaz_endpoints_is_a_408_too() -> None:
    app = create_app(make_service(POLICIES / "mcp", entity_store="memory",
                                  request_timeout=TIMEOUT))
    async with _client(app) as client:
        response = await client.post("/coaz/v1/map", content=_slow_body(),
                                     headers={"Content-Type": "application/json"})
        _error(response, 408, "request_timeout")


@pytest.mark.asyncio
async def test_an_admin_body_must_arrive_in_time_but_the_admin_work_may_take_longer(
        tmp_path: Path) -> None:
    # 1,000 policies: compiling them takes far longer than the 10 ms timeout
    (tmp_path / "many.cedar").write_text("".join(
        f'@id("p{i}")\npermit (principal == user::"u{i}", action, resource);\n'
        for i in range(1000)))
    service = make_service(tmp_path, request_timeout=0.01, admin_token="admin-secret")
    admin = {"Authorization": "Bearer admin-secret", "Content-Type": "application/json"}
    async with _client(create_app(service)) as client:
        slow = await client.put("/admin/entities", content=_slow_body(), headers=admin)
        _error(slow, 408, "request_timeout")
        (tmp_path / "more.cedar").write_text('@id("extra")\npermit (principal, action, '
                                             'resource == doc::"x");\n')
        reloaded = await client.post("/admin/reload", headers=admin)
        assert reloaded.status_code == 200, reloaded.text
        assert reloaded.json()["policies"] == 1001


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A server that accepts connections and never answers (a hung JWKS endpoint)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/jwks"
    finally:
        listener.close()
        for conn in accepted:
            conn.close()


@pytest.mark.asyncio
async def test_awaited_work_past_the_timeout_is_a_503_timeout_with_retry_after(
        silent_server: str, tmp_path: Path) -> None:
    keys = Keys(tmp_path)
    app = create_app(make_service(
        POLICIES / "mcp", entity_store="memory", request_timeout=TIMEOUT,
        resource_id=RESOURCE, authorization_servers=[ISSUER], token_jwks_url=silent_server))
    async with _client(app) as client:
        response = await client.post("/coaz/v1/map", json={
            "message": call("list_issues", {"owner": "acme", "repo": "web"}), "tools": TOOLS,
            "token": keys.token()})
        body = _error(response, 503, "timeout")
        assert response.headers["retry-after"] == "1"
        assert str(TIMEOUT) in body["message"]
        assert (await client.get("/health")).status_code == 200


# -- rate limit -----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_client_past_its_burst_gets_429_with_retry_after_and_others_do_not() -> None:
    app = create_app(make_service(POLICIES / "todo", entity_store="memory", rate_limit=0.5,
                                  rate_limit_burst=3))
    async with _client(app, "10.0.0.1") as first, _client(app, "10.0.0.2") as second:
        for _ in range(3):
            assert (await first.post(EVALUATION, json=VALID)).status_code == 200
        refused = await first.post(EVALUATION, json=VALID, headers={"X-Request-ID": "r-429"})
        body = _error(refused, 429, "rate_limited")
        assert refused.headers["retry-after"] == "2"  # one token per 2 s
        assert refused.headers["x-request-id"] == "r-429"
        assert "0.5" in body["message"]
        _error(await first.post("/coaz/v1/map", json={}), 429, "rate_limited")
        assert (await first.get("/health")).status_code == 200  # only the decision APIs
        assert (await first.get("/metrics")).status_code == 200
        assert (await second.post(EVALUATION, json=VALID)).status_code == 200


@pytest.mark.asyncio
async def test_without_a_rate_limit_a_client_is_never_refused() -> None:
    app = create_app(make_service(POLICIES / "todo", entity_store="memory"))
    async with _client(app) as client:
        for _ in range(50):
            assert (await client.post(EVALUATION, json=VALID)).status_code == 200


@pytest.mark.asyncio
async def test_authenticated_clients_are_limited_by_principal_not_by_address() -> None:
    keys = {"pep-a": "key-a-" + "x" * 40, "pep-b": "key-b-" + "y" * 40}
    app = create_app(make_service(
        POLICIES / "todo", entity_store="memory", rate_limit=0.1, rate_limit_burst=2,
        api_keys=[entry_for(name, key) for name, key in keys.items()]))
    a = {"X-API-Key": keys["pep-a"]}
    async with _client(app, "10.0.0.1") as one, _client(app, "10.0.0.2") as two:
        assert (await one.post(EVALUATION, json=VALID, headers=a)).status_code == 200
        assert (await two.post(EVALUATION, json=VALID, headers=a)).status_code == 200
        _error(await one.post(EVALUATION, json=VALID, headers=a), 429, "rate_limited")
        b = {"X-API-Key": keys["pep-b"]}
        assert (await one.post(EVALUATION, json=VALID, headers=b)).status_code == 200


# -- search page limit ------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_search_page_limit_above_the_maximum_is_lowered_to_it() -> None:
    app = create_app(make_service(POLICIES / "search", entity_store="memory",
                                  max_search_page=2))
    async with _client(app) as client:
        response = await client.post("/access/v1/search/resource", json={
            "subject": {"type": "user", "id": "alice"}, "action": {"name": "view"},
            "resource": {"type": "record"}, "page": {"limit": 1000}})
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["results"]) == 2
        assert body["page"]["next_token"]
