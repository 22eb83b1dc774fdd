"""The AuthZEN interop IdP cases (resource search: which records may each user delete)
through the real HTTP API, compared as the interop harness compares them.

The IdP scenario's records have the same ids and owners as the Search scenario's, and it asks
only who may delete what (owners delete their own records), so the Search policy set
(``policies/search``) answers it; the first test checks that premise on the data itself."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from pdp.http import create_app
from tests.conftest import POLICIES, make_service
from tests.entities.databases import make_backend

AUTHZEN = Path(__file__).resolve().parent / "authzen"
IDP = AUTHZEN / "idp"
CASES = [pytest.param(c["request"], c["expected"]["results"],
                      id=c["request"]["subject"]["id"])
         for c in json.loads((IDP / "results.json").read_text())["search"]]


def _sorted(results: list[dict[str, str]]) -> str:
    return json.dumps(sorted(results, key=json.dumps), separators=(",", ":"))


def test_the_idp_data_is_the_search_data_so_one_policy_set_serves_both() -> None:
    assert len(CASES) == 6
    idp_owners = {r["id"]: r["owner"] for r in json.loads((IDP / "records.json").read_text())}
    search_owners = {str(r["id"]): r["owner"] for r in
                     json.loads((AUTHZEN / "search" / "records.json").read_text())}
    assert idp_owners == search_owners
    idp_users = {u["id"] for u in json.loads((IDP / "users.json").read_text())}
    assert idp_users == {u["id"] for u in
                         json.loads((AUTHZEN / "search" / "users.json").read_text())}


@pytest_asyncio.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def client(request: pytest.FixtureRequest,
                 tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The search set on the SQL entity store, in a SQLite file and in PostgreSQL."""
    backend = make_backend(request.param, tmp_path)
    service = make_service(POLICIES / "search", database_url=backend.url)
    transport = httpx.ASGITransport(app=create_app(service))
    async with httpx.AsyncClient(transport=transport, base_url="http://pdp.test") as c:
        yield c
    service.close()
    backend.close()


@pytest.mark.asyncio
@pytest.mark.parametrize(("request_body", "expected"), CASES)
async def test_each_idp_search_gives_the_expected_records(
        client: httpx.AsyncClient, request_body: dict[str, Any],
        expected: list[dict[str, str]]) -> None:
    response = await client.post("/access/v1/search/resource", json=request_body)
    assert response.status_code == 200
    assert _sorted(response.json()["results"]) == _sorted(expected)
