"""Template links held in the entity store: ``/admin/links`` adds, lists and removes them,
checked against the policy set; they take effect at the next decision without a reload,
reach every replica on the same database, and explanations name the link and its template."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from pdp.http import create_app
from pdp.service import PDPService
from pdp.settings import Settings
from tests.conftest import fresh_data_dir, make_service
from tests.entities.databases import Backend
from tests.waiting import eventually

TOKEN = "admin-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SCHEMA = """\
entity User;
entity Folder;
entity Doc in [Folder];
action view appliesTo { principal: User, resource: [Doc, Folder] };
"""
POLICIES = """\
@id("share")
permit (principal == ?principal, action == Action::"view", resource in ?resource);
"""
ENTITIES = [{"uid": {"type": "Doc", "id": "report"}, "attrs": {},
             "parents": [{"type": "Folder", "id": "q3"}]}]
SHARE = {"template_id": "share", "link_id": "alice-q3",
         "args": {"?principal": 'User::"alice"', "?resource": 'Folder::"q3"'}}
VIEW = {"subject": {"type": "User", "id": "alice"}, "action": {"name": "view"},
        "resource": {"type": "Doc", "id": "report"}}


def policy_set(tmp_path: Path) -> Path:
    directory = tmp_path / "set"
    directory.mkdir()
    (directory / "p.cedar").write_text(POLICIES)
    (directory / "s.cedarschema").write_text(SCHEMA)
    (directory / "entities.json").write_text(json.dumps(ENTITIES))
    return directory


@pytest_asyncio.fixture
async def replicas(backend: Backend, tmp_path: Path,
                   ) -> AsyncIterator[list[tuple[httpx.AsyncClient, PDPService]]]:
    directory = policy_set(tmp_path)
    services = [make_service(directory, database_url=backend.url, admin_token=TOKEN,
                             poll_interval=0.1) for _ in range(2)]
    clients = [httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(s)),
                                 base_url="http://pdp.test") for s in services]
    try:
        yield list(zip(clients, services, strict=True))
    finally:
        for client in clients:
            await client.aclose()
        for service in services:
            service.close()


async def decide(client: httpx.AsyncClient, explain: bool = False) -> dict[str, Any]:
    response = await client.post("/access/v1/evaluation", json=VIEW,
                                 headers={"X-PDP-Explain": "true"} if explain else {})
    assert response.status_code == 200
    return dict(response.json())


@pytest.mark.asyncio
async def test_a_stored_link_permits_at_once_everywhere_and_its_removal_denies(
        replicas: list[tuple[httpx.AsyncClient, PDPService]]) -> None:
    (first, _), (second, _) = replicas
    assert (await decide(first))["decision"] is False
    added = await first.post("/admin/links", json=SHARE, headers=AUTH)
    assert added.status_code == 200 and added.json()["written"] == 1
    explained = await decide(first, explain=True)
    assert explained["decision"] is True
    assert explained["context"]["reasons"] == ["alice-q3"]
    assert explained["context"]["policies"] == [{
        "id": "alice-q3", "link": {"stored": True},
        "template": {"id": "share", "file": "p.cedar", "line": 1, "column": 1}}]

    async def second_permits() -> bool:
        return bool((await decide(second))["decision"])

    await eventually(second_permits)
    listed = (await second.get("/admin/links", headers=AUTH)).json()["links"]
    assert listed == [dict(SHARE, managed_by="api", template={
        "id": "share", "file": "p.cedar", "line": 1, "column": 1})]
    removed = await second.delete("/admin/links/alice-q3", headers=AUTH)
    assert removed.status_code == 200 and removed.json()["deleted"] == 1
    assert (await decide(second))["decision"] is False

    async def first_denies() -> bool:
        return not (await decide(first))["decision"]

    await eventually(first_denies)


@pytest.mark.asyncio
@pytest.mark.parametrize(("link", "message"), [
    (dict(SHARE, template_id="nope"), "no template 'nope'"),
    (dict(SHARE, args={"?principal": 'User::"alice"'}), "slot ?resource"),
    (dict(SHARE, args=dict(SHARE["args"], **{"?x": 'User::"b"'})), "has no slot ?x"),
    (dict(SHARE, args=dict(SHARE["args"], **{"?principal": 'Robot::"r"'})),
     "of a type the schema does not declare"),
    (dict(SHARE, link_id="share"), "already a policy's"),
    (dict(SHARE, args=dict(SHARE["args"], **{"?principal": 'Folder::"x"'})),
     "unable to find an applicable action"),
])
async def test_a_wrong_link_is_refused_and_nothing_is_written(
        replicas: list[tuple[httpx.AsyncClient, PDPService]], link: dict[str, Any],
        message: str) -> None:
    (client, _), _ = replicas
    refused = await client.post("/admin/links", json=[SHARE | {"link_id": "ok"}, link],
                                headers=AUTH)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == "invalid_link"
    assert message in refused.json()["message"]
    assert (await client.get("/admin/links", headers=AUTH)).json()["links"] == []


@pytest.mark.asyncio
async def test_a_link_id_cannot_be_added_twice_or_removed_when_absent(
        replicas: list[tuple[httpx.AsyncClient, PDPService]]) -> None:
    (client, _), _ = replicas
    assert (await client.post("/admin/links", json=SHARE, headers=AUTH)).status_code == 200
    again = await client.post("/admin/links", json=SHARE, headers=AUTH)
    assert again.status_code == 400 and "exists already" in again.json()["message"]
    assert (await client.delete("/admin/links/nope", headers=AUTH)).status_code == 404
    assert (await client.post("/admin/links", json=SHARE)).status_code == 401


@pytest.mark.asyncio
async def test_the_decision_log_names_the_link_that_decided(
        backend: Backend, tmp_path: Path) -> None:
    service = PDPService.from_settings(Settings(
        policies=policy_set(tmp_path), data_dir=fresh_data_dir("links"), watch=False,
        database_url=backend.url, admin_token=TOKEN,  # type: ignore[arg-type]
        decision_log="on", decision_log_personal_data="full"))
    service.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(service)),
                                     base_url="http://pdp.test") as client:
            assert (await client.post("/admin/links", json=SHARE,
                                      headers=AUTH)).status_code == 200
            assert (await decide(client))["decision"] is True

            async def logged() -> bool:
                page = (await client.get("/admin/decisions", headers=AUTH)).json()
                return [d["reasons"] for d in page["decisions"]] == [["alice-q3"]]

            await eventually(logged)
    finally:
        service.close()


@pytest.mark.asyncio
async def test_a_reload_that_would_strand_a_stored_link_is_refused(
        replicas: list[tuple[httpx.AsyncClient, PDPService]]) -> None:
    (client, service), _ = replicas
    assert (await client.post("/admin/links", json=SHARE, headers=AUTH)).status_code == 200
    source = service.policies.current.directory / "p.cedar"
    source.write_text(POLICIES.replace("resource in ?resource", "resource"))  # slot gone
    refused = await client.post("/admin/reload", headers=AUTH)
    assert refused.status_code == 422
    [diagnostic] = refused.json()["diagnostics"]
    assert "alice-q3" in diagnostic["message"] and "?resource" in diagnostic["message"]
    assert (await decide(client))["decision"] is True  # the old set and the link still serve
    assert (await client.delete("/admin/links/alice-q3", headers=AUTH)).status_code == 200
    assert (await client.post("/admin/reload", headers=AUTH)).status_code == 200


@pytest.mark.asyncio
async def test_search_finds_what_a_stored_link_shares(
        replicas: list[tuple[httpx.AsyncClient, PDPService]]) -> None:
    (client, _), _ = replicas
    query = {"subject": {"type": "User", "id": "alice"}, "action": {"name": "view"},
             "resource": {"type": "Doc"}}

    async def found() -> list[str]:
        response = await client.post("/access/v1/search/resource", json=query)
        assert response.status_code == 200, response.text
        return [r["id"] for r in response.json()["results"]]

    assert await found() == []
    assert (await client.post("/admin/links", json=SHARE, headers=AUTH)).status_code == 200
    assert await found() == ["report"]
