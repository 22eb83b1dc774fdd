"""``/admin/entities``: authenticated, paged, validated and all-or-nothing, with changes
visible to the very next decision."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from pdp.http import create_app
from pdp.service import PDPService
from tests.conftest import POLICIES, make_service
from tests.entities.databases import Backend

TOKEN = "admin-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def record(rid: str, owner: str, department: str = "Legal") -> dict[str, Any]:
    return {"uid": {"type": "record", "id": rid},
            "attrs": {"title": f"Record {rid}", "department": department,
                      "owner": {"type": "user", "id": owner}}}


@pytest_asyncio.fixture
async def api(backend: Backend) -> AsyncIterator[tuple[httpx.AsyncClient, PDPService]]:
    service = make_service(POLICIES / "search", database_url=backend.url, admin_token=TOKEN)
    transport = httpx.ASGITransport(app=create_app(service))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://pdp.test") as client:
            yield client, service
    finally:
        service.close()


async def can_delete(client: httpx.AsyncClient, who: str, rid: str) -> bool:
    response = await client.post("/access/v1/evaluation", json={
        "subject": {"type": "user", "id": who}, "action": {"name": "delete"},
        "resource": {"type": "record", "id": rid}})
    assert response.status_code == 200
    return bool(response.json()["decision"])


@pytest.mark.asyncio
async def test_admin_routes_need_the_admin_token(
        api: tuple[httpx.AsyncClient, PDPService]) -> None:
    client, _ = api
    assert (await client.get("/admin/entities")).status_code == 401
    bad = await client.get("/admin/entities", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and "www-authenticate" in bad.headers
    assert (await client.put("/admin/entities", json=record("900", "bob"))).status_code == 401


@pytest.mark.asyncio
async def test_a_put_entity_decides_the_next_request_and_a_delete_undoes_it(
        api: tuple[httpx.AsyncClient, PDPService]) -> None:
    client, _ = api
    assert not await can_delete(client, "bob", "900")
    put = await client.put("/admin/entities", json=record("900", "bob"), headers=AUTH)
    assert put.status_code == 200 and put.json()["written"] == 1
    assert await can_delete(client, "bob", "900")
    shown = (await client.get("/admin/entities/record/900", headers=AUTH)).json()
    assert shown["managed_by"] == "api" and shown["attrs"]["owner"] == {
        "__entity": {"type": "user", "id": "bob"}}
    gone = await client.delete("/admin/entities", params={"type": "record", "id": "900"},
                               headers=AUTH)
    assert gone.status_code == 200 and gone.json()["deleted"] == 1
    assert not await can_delete(client, "bob", "900")
    again = await client.delete("/admin/entities", params={"type": "record", "id": "900"},
                                headers=AUTH)
    assert again.status_code == 404
    assert (await client.get("/admin/entities/record/900", headers=AUTH)).status_code == 404


@pytest.mark.asyncio
async def test_an_import_with_one_bad_entity_is_refused_whole_with_a_precise_error(
        api: tuple[httpx.AsyncClient, PDPService]) -> None:
    client, _ = api
    bad = {"uid": {"type": "record", "id": "903"}, "attrs": {"title": "x", "department": 1,
                                                             "owner": {"type": "user",
                                                                       "id": "bob"}}}
    response = await client.post("/admin/entities/import", headers=AUTH,
                                 json=[record("901", "bob"), record("902", "bob"), bad])
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_entity", "field": "attrs.department",
        "message": 'entity record::"903": attribute `department` must be String, got 1'}
    assert not await can_delete(client, "bob", "901")
    listed = (await client.get("/admin/entities", params={"managed_by": "api"},
                               headers=AUTH)).json()
    assert listed == {"entities": [], "next_cursor": None}


@pytest.mark.asyncio
async def test_an_import_with_replace_makes_the_api_managed_set_exactly_the_import(
        api: tuple[httpx.AsyncClient, PDPService]) -> None:
    client, _ = api
    first = await client.post("/admin/entities/import", headers=AUTH,
                              json={"entities": [record("901", "bob"), record("902", "bob")]})
    assert first.json()["written"] == 2
    second = await client.post("/admin/entities/import", params={"replace": "true"},
                               headers=AUTH, json=[record("903", "bob")])
    assert (second.json()["written"], second.json()["deleted"]) == (1, 2)
    assert [await can_delete(client, "bob", r) for r in ("901", "902", "903")] == [
        False, False, True]
    assert await can_delete(client, "bob", "102")  # file-managed entities are untouched


@pytest.mark.asyncio
async def test_the_listing_pages_by_cursor_and_filters_by_type_and_manager(
        api: tuple[httpx.AsyncClient, PDPService]) -> None:
    client, _ = api
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"type": "record", "limit": 6}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/admin/entities", params=params, headers=AUTH)).json()
        seen.extend(e["uid"]["id"] for e in page["entities"])
        assert all(e["managed_by"] == "file" for e in page["entities"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [str(i) for i in range(101, 121)]
    users = (await client.get("/admin/entities", params={"type": "user"}, headers=AUTH)).json()
    assert [e["uid"]["id"] for e in users["entities"]] == [
        "alice", "bob", "carol", "dan", "erin", "felix"]
    bad = await client.get("/admin/entities", params={"cursor": "!!"}, headers=AUTH)
    assert bad.status_code == 400


@pytest.mark.asyncio
async def test_file_managed_entities_cannot_be_changed_through_the_api(
        api: tuple[httpx.AsyncClient, PDPService]) -> None:
    client, _ = api
    response = await client.put("/admin/entities", headers=AUTH, json=record("101", "bob"))
    assert response.status_code == 400
    assert "managed by the policy set's entities.json" in response.json()["message"]
    assert await can_delete(client, "alice", "101")


@pytest.mark.asyncio
async def test_without_the_sql_store_entity_administration_is_not_found() -> None:
    service = make_service(POLICIES / "search", entity_store="memory", admin_token=TOKEN)
    transport = httpx.ASGITransport(app=create_app(service))
    async with httpx.AsyncClient(transport=transport, base_url="http://pdp.test") as client:
        response = await client.get("/admin/entities", headers=AUTH)
    assert response.status_code == 404
    assert "PDP_ENTITY_STORE=sql" in response.json()["message"]
