"""AuthZEN 1.0 points: pagination's page.limit, no caching of decisions, tenant metadata, and
the API-key forms the interop runners send."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from pdp.auth.keys import entry_for, new_key
from pdp.http import create_app
from tests.conftest import POLICIES, make_service

pytestmark = pytest.mark.asyncio

SEARCH = "/access/v1/search/resource"
RESOURCES = {"subject": {"type": "user", "id": "alice"}, "action": {"name": "view"},
             "resource": {"type": "record"}}
KEY = new_key()


@asynccontextmanager
async def client_for(**settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_service(POLICIES / "search", entity_store="memory", **settings))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://pdp.test") as client:
        yield client


async def test_changing_the_limit_in_the_middle_of_a_pagination_is_a_400() -> None:
    async with client_for() as client:
        page = (await client.post(SEARCH, json={**RESOURCES, "page": {"limit": 2}})).json()
        token = page["page"]["next_token"]
        assert token
        same = await client.post(SEARCH, json={**RESOURCES, "page": {"limit": 2, "token": token}})
        assert same.status_code == 200 and len(same.json()["results"]) <= 2
        changed = await client.post(SEARCH, json={**RESOURCES, "page": {"limit": 3,
                                                                         "token": token}})
        assert changed.status_code == 400, changed.text
        assert changed.json()["field"] == "page.limit"
        # a follow-up that does not restate the limit continues with the pagination's own
        unstated = await client.post(SEARCH, json={**RESOURCES, "page": {"token": token}})
        assert unstated.status_code == 200
        assert unstated.json()["results"] == same.json()["results"]


async def test_a_limit_of_zero_means_the_server_default() -> None:
    async with client_for(max_search_page=4) as client:
        zero = await client.post(SEARCH, json={**RESOURCES, "page": {"limit": 0}})
        default = await client.post(SEARCH, json={**RESOURCES, "page": {}})
        assert zero.status_code == 200, zero.text
        assert zero.json()["results"] == default.json()["results"]
        assert len(zero.json()["results"]) == 4


@pytest.mark.parametrize(("path", "body"), [
    ("/access/v1/evaluation", {**RESOURCES, "resource": {"type": "record", "id": "101"}}),
    ("/access/v1/evaluations", {"evaluations": [
        {**RESOURCES, "resource": {"type": "record", "id": "101"}}]}),
    (SEARCH, RESOURCES),
    ("/access/v1/evaluation", {"subject": {}}),  # an error is not to be cached either
])
async def test_decisions_say_cache_control_no_store(path: str, body: Any) -> None:
    async with client_for() as client:
        answer = await client.post(path, json=body)
        assert answer.headers["cache-control"] == "no-store"


async def test_tenant_metadata_is_served_for_configured_tenants_only() -> None:
    async with client_for(tenants=["acme", "globex"],
                          public_url="https://pdp.example.com") as client:
        acme = await client.get("/.well-known/authzen-configuration/acme")
        assert acme.status_code == 200
        assert acme.json()["policy_decision_point"] == "https://pdp.example.com/acme"
        assert acme.json()["access_evaluation_endpoint"].endswith("/access/v1/evaluation")
        other = await client.get("/.well-known/authzen-configuration/initech")
        assert other.status_code == 404
    async with client_for() as plain:
        assert (await plain.get("/.well-known/authzen-configuration/acme")).status_code == 404


@pytest.mark.parametrize("header", [KEY, f"Basic {KEY}"])
async def test_interop_key_forms_are_accepted_only_when_enabled(header: str) -> None:
    keys = [entry_for("runner", KEY)]
    async with client_for(api_keys=keys) as strict:
        assert (await strict.post(SEARCH, json=RESOURCES,
                                  headers={"Authorization": header})).status_code == 401
    async with client_for(api_keys=keys, api_key_any_scheme=True) as loose:
        assert (await loose.post(SEARCH, json=RESOURCES,
                                 headers={"Authorization": header})).status_code == 200
        assert (await loose.post(SEARCH, json=RESOURCES, headers={
            "Authorization": header.replace(KEY, new_key())})).status_code == 401
        assert (await loose.post(SEARCH, json=RESOURCES, headers={
            "Authorization": f"Bearer {KEY}"})).status_code == 200
