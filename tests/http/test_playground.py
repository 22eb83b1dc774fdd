"""The playground's page and API over HTTP: off unless enabled, open only on loopback without
PEP credentials, else behind an admin credential (and never started without one); the served
set and its examples; decisions with the determining policies' lines; scratch sets; invalid
requests and invalid policies answered with the error shape."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from pdp.auth.keys import entry_for, new_key
from pdp.errors import ConfigurationError
from pdp.http import create_app
from pdp.playground import check_playground
from pdp.settings import Settings
from tests.conftest import POLICIES, make_service

ADMIN = new_key()
PEP = new_key()
DENIED = {"subject": {"type": "user", "id": "dave"}, "action": {"name": "delete"},
          "resource": {"type": "document", "id": "contract"}}
SCRATCH = '@id("readers")\npermit (\n  principal,\n  action == Action::"read",\n  resource\n);\n'


def _client(**settings: Any) -> httpx.AsyncClient:
    app = create_app(make_service(POLICIES / "default", entity_store="memory", **settings))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pdp.test")


@pytest_asyncio.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with _client(playground=True) as c:
        yield c


@pytest.mark.asyncio
async def test_the_playground_is_off_unless_enabled() -> None:
    async with _client() as c:
        response = await c.get("/playground")
        assert (response.status_code, response.json()["error"]) == (404, "not_found")
        assert (await c.get("/playground/api/set")).status_code == 404


@pytest.mark.asyncio
async def test_the_page_loads_only_its_own_assets_under_a_strict_policy(
        client: httpx.AsyncClient) -> None:
    page = await client.get("/playground")
    assert page.status_code == 200
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assets = re.findall(r"""(?:src|href)=["']([^"'#]+)["']""", page.text)
    assert sorted(assets) == ["/playground/assets/playground.css",
                              "/playground/assets/playground.js"]
    for asset in assets:
        assert (await client.get(asset)).status_code == 200
    assert "<script>" not in page.text and " style=" not in page.text  # nothing inline
    for control in ("scratch-policies", "scratch-schema", "scratch-entities", "example",
                    "request"):
        assert f'<label for="{control}">' in page.text  # every field has a label


@pytest.mark.asyncio
async def test_the_served_set_shows_its_files_and_its_tests_requests(
        client: httpx.AsyncClient) -> None:
    view = (await client.get("/playground/api/set")).json()
    assert view["directory"] == "default"
    assert [f["name"] for f in view["files"]] == ["documents.cedar", "documents.cedarschema",
                                                  "entities.json"]
    text = (POLICIES / "default" / "documents.cedar").read_text()
    assert view["files"][0]["text"] == text
    assert len(view["examples"]) >= 6
    assert all(e["file"] == "documents.test.yaml" and "subject" in e["request"]
               for e in view["examples"])


@pytest.mark.asyncio
async def test_a_deny_names_the_forbid_with_the_lines_it_spans_and_the_entities_read(
        client: httpx.AsyncClient) -> None:
    answer = (await client.post("/playground/api/decide", json={"request": DENIED})).json()
    assert (answer["decision"], answer["outcome"]) == (False, "forbid")
    [policy] = answer["policies"]
    lines = (POLICIES / "default" / "documents.cedar").read_text().splitlines()
    assert policy["id"] == "legal-hold-freezes-documents"
    assert lines[policy["line"] - 1] == '@id("legal-hold-freezes-documents")'
    assert lines[policy["end_line"] - 1].rstrip().endswith(";")
    assert policy["end_line"] > policy["line"]
    read = {(e["uid"]["type"], e["uid"]["id"]) for e in answer["entities"]}
    assert {("user", "dave"), ("document", "contract")} <= read
    assert answer["cedar_request"]["action"] == {"type": "Action", "id": "delete"}


@pytest.mark.asyncio
async def test_an_invalid_request_is_a_400_in_the_error_shape(client: httpx.AsyncClient) -> None:
    bad = {"subject": {"type": "user", "id": "dave"}, "action": {"name": "delete"}}
    response = await client.post("/playground/api/decide", json={"request": bad})
    assert response.status_code == 400
    assert response.json() == {"error": "missing_field", "message": "'resource' is required",
                               "field": "resource"}
    response = await client.post("/playground/api/decide", json={"nothing": 1})
    assert (response.status_code, response.json()["field"]) == (400, "request")


@pytest.mark.asyncio
async def test_a_scratch_set_decides_without_touching_the_served_one(
        client: httpx.AsyncClient) -> None:
    read = {"subject": {"type": "U", "id": "a"}, "action": {"name": "read"},
            "resource": {"type": "D", "id": "d"}}
    answer = (await client.post("/playground/api/decide", json={
        "request": read, "scratch": {"policies": SCRATCH}})).json()
    assert answer["decision"] is True
    assert answer["policies"] == [{"id": "readers", "effect": "permit", "file": "scratch.cedar",
                                   "line": 1, "end_line": 6}]
    served = (await client.post("/playground/api/decide", json={"request": read})).json()
    assert served["decision"] is False


@pytest.mark.asyncio
async def test_an_invalid_scratch_set_answers_every_diagnostic(
        client: httpx.AsyncClient) -> None:
    response = await client.post("/playground/api/decide", json={
        "request": DENIED, "scratch": {"policies": "permit(principal, action, resource) "
                                                   "when { 1 + };"}})
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_policy_set"
    [d] = body["diagnostics"]
    assert (d["file"], d["line"], d["column"]) == ("scratch.cedar", 1, 48)
    response = await client.post("/playground/api/decide", json={
        "request": DENIED, "scratch": {"policies": 5}})
    assert (response.status_code, response.json()["field"]) == (400, "scratch.policies")


def test_the_playground_never_starts_open_where_decisions_are_protected() -> None:
    check_playground(Settings(playground=True))  # loopback, no credentials: open
    with pytest.raises(ConfigurationError, match="PDP_ADMIN_API_KEYS"):
        check_playground(Settings(playground=True, host="0.0.0.0",
                                  api_keys=[entry_for("gw", PEP)]))
    with pytest.raises(ConfigurationError):
        check_playground(Settings(playground=True, api_keys=[entry_for("gw", PEP)]))
    check_playground(Settings(playground=True, host="0.0.0.0", api_keys=[entry_for("gw", PEP)],
                              admin_api_keys=[entry_for("ops", ADMIN)]))
    with pytest.raises(ConfigurationError):
        create_app(make_service(POLICIES / "default", entity_store="memory", playground=True,
                                api_keys=[entry_for("gw", PEP)]))


@pytest.mark.asyncio
async def test_where_it_is_not_open_every_playground_path_needs_an_admin_credential() -> None:
    async with _client(playground=True, host="0.0.0.0", api_keys=[entry_for("gw", PEP)],
                       admin_api_keys=[entry_for("ops", ADMIN)]) as c:
        for path in ("/playground", "/playground/api/set",
                     "/playground/assets/playground.js"):
            assert (await c.get(path)).status_code == 401, path
            pep = await c.get(path, headers={"Authorization": f"Bearer {PEP}"})
            assert pep.status_code == 401, path
            admin = await c.get(path, headers={"Authorization": f"Bearer {ADMIN}"})
            assert admin.status_code == 200, path
        decide = await c.post("/playground/api/decide", json={"request": DENIED})
        assert decide.status_code == 401
