"""Every JSON endpoint answers its errors through one translation
(:func:`pdp.http.responses.error_answer`): the error's status and JSON body, never stored by a
cache, and an unexpected failure a 500 ``internal_error`` saying what was not done."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from pdp.http import create_app
from pdp.service import PDPService
from tests.conftest import POLICIES, make_service

BAD_TYPE = {"content-type": "text/plain"}


@pytest_asyncio.fixture
async def served() -> AsyncIterator[tuple[PDPService, httpx.AsyncClient]]:
    service = make_service(POLICIES / "mcp", entity_store="memory", tenants=["acme"])
    app = create_app(service)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://pdp.test") as client:
        yield service, client


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["/access/v1/evaluation", "/access/v1/evaluations",
                                  "/access/v1/search/subject", "/coaz/v1/map",
                                  "/coaz/v1/authorize"])
async def test_a_refused_body_is_the_same_error_answer_on_every_endpoint(
        served: tuple[PDPService, httpx.AsyncClient], path: str) -> None:
    _, client = served
    answer = await client.post(path, content=b"{}", headers=BAD_TYPE)
    assert answer.status_code == 400
    assert answer.headers["cache-control"] == "no-store"
    assert answer.json() == {"error": "unsupported_content_type", "field": "Content-Type",
                             "message": "Content-Type must be application/json, got "
                             "'text/plain'"}


@pytest.mark.asyncio
async def test_the_metadata_of_an_unknown_tenant_is_an_uncached_404(
        served: tuple[PDPService, httpx.AsyncClient]) -> None:
    _, client = served
    answer = await client.get("/.well-known/authzen-configuration/nobody")
    assert answer.status_code == 404 and answer.json()["error"] == "not_found"
    assert answer.headers["cache-control"] == "no-store"
    known = await client.get("/.well-known/authzen-configuration/acme")
    assert known.status_code == 200


@pytest.mark.asyncio
@pytest.mark.parametrize(("path", "body", "failure"), [
    ("/access/v1/evaluation", {"subject": {"type": "identity", "id": "a"},
                               "action": {"name": "tools/list"},
                               "resource": {"type": "mcp_server", "id": "s"}},
     "the decision could not be made"),
    ("/coaz/v1/map", {"message": {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                      "claims": {"sub": "a"}, "server": "https://s.example.com/mcp"},
     "the request could not be mapped"),
])
async def test_an_unexpected_failure_is_a_500_saying_what_was_not_done(
        served: tuple[PDPService, httpx.AsyncClient], monkeypatch: pytest.MonkeyPatch,
        path: str, body: dict[str, Any], failure: str) -> None:
    service, client = served

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("broken")

    monkeypatch.setattr(service, "evaluation", broken)
    monkeypatch.setattr("pdp.coaz_service.core.map_message", broken)
    answer = await client.post(path, json=body)
    assert answer.status_code == 500
    assert answer.json() == {"error": "internal_error", "message": failure}
    assert answer.headers["cache-control"] == "no-store"
