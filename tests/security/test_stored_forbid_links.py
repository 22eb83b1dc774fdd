"""A template link added to the entity store at run time binds every evaluator at once: a
forbid link denies what a static permit allows, natively and with cedarpy, and removing it
restores the permit. (The native evaluator compiles the policies of the index it is given; a
slice holding a policy it has not compiled is left to cedarpy, never decided without it.)"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from pdp.http import create_app
from tests.conftest import make_service

TOKEN = "admin-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
POLICIES = """\
@id("everyone-views")
permit (principal, action == Action::"view", resource);

@id("blocked")
forbid (principal == ?principal, action, resource in ?resource);
"""
ENTITIES = [{"uid": {"type": "Doc", "id": "report"}, "attrs": {},
             "parents": [{"type": "Folder", "id": "q3"}]}]
BLOCK = {"template_id": "blocked", "link_id": "mallory-q3",
         "args": {"?principal": 'User::"mallory"', "?resource": 'Folder::"q3"'}}
VIEW = {"subject": {"type": "User", "id": "mallory"}, "action": {"name": "view"},
        "resource": {"type": "Doc", "id": "report"}}


@pytest.mark.asyncio
@pytest.mark.parametrize("evaluator", ["native", "cedarpy"])
async def test_a_stored_forbid_link_denies_at_once_with_either_evaluator(
        tmp_path: Path, evaluator: str) -> None:
    directory = tmp_path / "set"
    directory.mkdir()
    (directory / "p.cedar").write_text(POLICIES)
    (directory / "entities.json").write_text(json.dumps(ENTITIES))
    service = make_service(directory, admin_token=TOKEN, evaluator=evaluator,
                           decision_cache="off")
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(service)),
                                     base_url="http://pdp.test") as client:
            async def decide() -> dict[str, object]:
                answer = await client.post("/access/v1/evaluation", json=VIEW,
                                           headers={"X-PDP-Explain": "true"})
                assert answer.status_code == 200
                return dict(answer.json())

            assert (await decide())["decision"] is True
            added = await client.post("/admin/links", json=BLOCK, headers=AUTH)
            assert added.status_code == 200
            denied = await decide()
            assert denied["decision"] is False
            assert denied["context"]["reasons"] == ["mallory-q3"]  # type: ignore[index]
            removed = await client.delete("/admin/links/mallory-q3", headers=AUTH)
            assert removed.status_code == 200
            assert (await decide())["decision"] is True
    finally:
        service.close()
