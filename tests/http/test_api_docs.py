"""The API's own description: Swagger UI and ReDoc served from the PDP's package assets (an
air-gapped PDP shows them), an OpenAPI document that declares every route's bodies, errors and
credentials, and unknown paths or methods answered in the project's error shape."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from pdp.http.app import create_app
from tests.conftest import POLICIES, make_service

ERROR_REF = "#/components/schemas/ErrorModel"


@pytest_asyncio.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_service(POLICIES / "default", entity_store="memory"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://pdp.test") as c:
        yield c


@pytest.mark.asyncio
@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_api_pages_load_every_asset_from_the_pdp_itself(
        client: httpx.AsyncClient, page: str) -> None:
    response = await client.get(page)
    assert response.status_code == 200
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", response.text)
    assert assets, response.text
    for asset in assets:
        assert asset.startswith("/"), f"{page} loads {asset} from elsewhere"
        fetched = await client.get(asset)
        assert fetched.status_code == 200, asset
        assert len(fetched.content) > 1000
    assert "cdn" not in response.text.lower() and "googleapis" not in response.text


@pytest.mark.asyncio
async def test_every_operation_declares_its_errors_in_the_project_shape(
        client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    for path, operations in schema["paths"].items():
        for method, op in operations.items():
            responses = op["responses"]
            assert "422" not in responses or path == "/admin/reload", (method, path)
            for status, response in responses.items():
                if status.startswith(("4", "5")) and path not in ("/ready",):
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref == ERROR_REF, (method, path, status)


@pytest.mark.asyncio
async def test_the_openapi_document_declares_admin_security_bodies_and_non_json_answers(
        client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    schemes = schema["components"]["securitySchemes"]
    assert {"pepBearer", "pepApiKey", "adminBearer"} <= set(schemes)
    admin = [op for path, ops in schema["paths"].items() if path.startswith("/admin/")
             for op in ops.values()]
    assert len(admin) >= 6
    assert all(op["security"] == [{"adminBearer": []}] for op in admin)
    assert "requestBody" in schema["paths"]["/admin/entities"]["put"]
    assert "requestBody" in schema["paths"]["/admin/entities/import"]["post"]
    assert set(schema["paths"]["/metrics"]["get"]["responses"]["200"]["content"]) == {
        "text/plain"}
    assert "503" in schema["paths"]["/ready"]["get"]["responses"]
    evaluation = schema["paths"]["/access/v1/evaluation"]["post"]["responses"]
    assert {"400", "401", "408", "413", "429", "503"} <= set(evaluation)


@pytest.mark.asyncio
async def test_an_unknown_path_or_method_answers_in_the_error_shape(
        client: httpx.AsyncClient) -> None:
    missing = await client.get("/no/such/thing")
    assert missing.status_code == 404
    assert missing.json() == {"error": "not_found", "message": "no such endpoint"}
    wrong = await client.get("/access/v1/evaluation")
    assert wrong.status_code == 405
    assert wrong.json()["error"] == "method_not_allowed"
    assert "POST" in wrong.headers.get("allow", "")
    health = await client.post("/health")
    assert (health.status_code, health.json()["error"]) == (405, "method_not_allowed")


@pytest.mark.asyncio
async def test_every_json_answer_has_a_schema(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    empty = [f"{method.upper()} {path} {status}"
             for path, operations in schema["paths"].items()
             for method, op in operations.items()
             for status, response in op["responses"].items()
             for content in response.get("content", {}).values() if not content.get("schema")]
    assert empty == []
    ready = schema["paths"]["/ready"]["get"]["responses"]["200"]["content"]
    assert ready["application/json"]["schema"]["properties"]["status"]["enum"] == [
        "ready", "not_ready"]
