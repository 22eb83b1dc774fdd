"""The AuthZEN interop Search cases (subject, resource and action search; 198 of them) through
the real HTTP API, compared as the interop harness compares them: results sorted, then the JSON
text of exactly ``{"type", "id"}`` (or ``{"name"}``) objects. Also: every result evaluates to
``true`` through ``/access/v1/evaluation`` and every other candidate to ``false``; paging
through equals the unpaged answer; page tokens are bound to their request."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from pdp.errors import InvalidPageToken
from pdp.http import create_app
from pdp.service import PDPService
from tests.conftest import POLICIES, make_service, start_server, stop_server
from tests.entities.databases import make_backend

SEARCH = Path(__file__).resolve().parent / "authzen" / "search"
KINDS = ("subject", "resource", "action")
USERS = [u["id"] for u in json.loads((SEARCH / "users.json").read_text())]
RECORDS = [str(r["id"]) for r in json.loads((SEARCH / "records.json").read_text())]
ACTIONS = ["view", "edit", "delete"]


def _text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _sorted(results: list[dict[str, str]]) -> str:
    return _text(sorted(results, key=_text))


def _cases() -> list[Any]:
    out = []
    for kind in KINDS:
        doc = json.loads((SEARCH / f"{kind}-results.json").read_text())
        for i, case in enumerate(doc["evaluation"]):
            out.append(pytest.param(kind, case["request"], case["expected"]["results"],
                                    id=f"{kind}-{i}"))
    return out


CASES = _cases()


@pytest.fixture(scope="module",
                params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def service(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[PDPService]:
    """The search set on the SQL entity store, in a SQLite file and in PostgreSQL."""
    backend = make_backend(request.param, tmp_path_factory.mktemp("search-store"))
    svc = make_service(POLICIES / "search", database_url=backend.url)
    yield svc
    svc.close()
    backend.close()


@pytest.fixture(scope="module")
def app(service: PDPService) -> FastAPI:
    return create_app(service)


@pytest_asyncio.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://pdp.test") as c:
        yield c


def test_the_interop_files_hold_198_search_cases() -> None:
    assert len(CASES) == 198
    assert [sum(1 for c in CASES if c.values[0] == k) for k in KINDS] == [60, 18, 120]


@pytest.mark.asyncio
@pytest.mark.parametrize(("kind", "request_body", "expected"), CASES)
async def test_each_search_gives_the_expected_results_over_asgi(
        client: httpx.AsyncClient, kind: str, request_body: dict[str, Any],
        expected: list[dict[str, str]]) -> None:
    response = await client.post(f"/access/v1/search/{kind}", json=request_body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["results"]  # complete and unpaged: nothing else
    assert _sorted(body["results"]) == _sorted(expected)


def _evaluation(kind: str, request: dict[str, Any], candidate: str) -> dict[str, Any]:
    body = {k: v for k, v in request.items() if k in ("subject", "action", "resource")}
    if kind == "action":
        body["action"] = {"name": candidate}
    else:
        body[kind] = {"type": request[kind]["type"], "id": candidate}
    return body


@pytest.mark.asyncio
async def test_every_result_evaluates_to_true_and_every_other_candidate_to_false(
        client: httpx.AsyncClient) -> None:
    candidates = {"subject": USERS, "resource": RECORDS, "action": ACTIONS}
    wrong = []
    for param in CASES:
        kind, request, _ = param.values
        found = (await client.post(f"/access/v1/search/{kind}", json=request)).json()["results"]
        ids = {r["name"] if kind == "action" else r["id"] for r in found}
        for candidate in candidates[kind]:
            decision = (await client.post("/access/v1/evaluation",
                                          json=_evaluation(kind, request, candidate))).json()
            if decision != {"decision": candidate in ids}:
                wrong.append((param.id, candidate, decision))
    assert wrong == []


@pytest.mark.asyncio
@pytest.mark.parametrize("limit", [1, 2, 3, 7, 19, 20, 21])
async def test_paging_through_with_any_limit_gives_the_unpaged_results(
        client: httpx.AsyncClient, limit: int) -> None:
    for param in CASES[::9]:
        kind, request, expected = param.values
        walked: list[dict[str, str]] = []
        token = None
        for _ in range(30):
            page: dict[str, Any] = {"limit": limit} if token is None else {
                "limit": limit, "token": token}
            body = (await client.post(f"/access/v1/search/{kind}",
                                      json={**request, "page": page})).json()
            assert list(body) == ["page", "results"]  # page first
            assert len(body["results"]) <= limit
            walked.extend(body["results"])
            token = body["page"]["next_token"]
            if token == "":
                break
        assert _sorted(walked) == _sorted(expected), param.id


RESOURCE_SEARCH = {"subject": {"type": "user", "id": "alice"}, "action": {"name": "view"},
                   "resource": {"type": "record"}}


async def _first_token(client: httpx.AsyncClient) -> str:
    body = (await client.post("/access/v1/search/resource",
                              json={**RESOURCE_SEARCH, "page": {"limit": 5}})).json()
    token: str = body["page"]["next_token"]
    assert token
    return token


@pytest.mark.asyncio
@pytest.mark.parametrize("change", [
    {"subject": {"type": "user", "id": "bob"}},
    {"action": {"name": "edit"}},
    {"context": {"ip": "10.0.0.1"}},
    {"resource": {"type": "user"}},
])
async def test_a_follow_up_that_changes_the_request_is_refused(
        client: httpx.AsyncClient, change: dict[str, Any]) -> None:
    token = await _first_token(client)
    response = await client.post("/access/v1/search/resource",
                                 json={**RESOURCE_SEARCH, **change, "page": {"token": token}})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_page_token"
    other_kind = await client.post("/access/v1/search/subject", json={
        "subject": {"type": "user"}, "action": {"name": "view"},
        "resource": {"type": "record", "id": "101"}, "page": {"token": token}})
    assert other_kind.status_code == 400


@pytest.mark.asyncio
async def test_a_tampered_or_foreign_token_is_refused(client: httpx.AsyncClient) -> None:
    token = await _first_token(client)
    head, _, tag = token.partition(".")
    forged = [head[:-2] + ("A" if head[-2] != "A" else "B") + head[-1] + "." + tag,
              head + "." + tag[:-1] + ("A" if tag[-1] != "A" else "B"),
              head, "", "not a token", token + "x"]
    for bad in forged:
        response = await client.post("/access/v1/search/resource",
                                     json={**RESOURCE_SEARCH, "page": {"token": bad}})
        if bad == "":  # an empty token is no token: the first page
            assert response.status_code == 200
            continue
        assert response.status_code == 400, bad
        assert response.json()["error"] == "invalid_page_token"
    foreign = make_service(POLICIES / "search", entity_store="memory")  # another key
    with pytest.raises(InvalidPageToken):
        foreign.search("resource", {**RESOURCE_SEARCH, "page": {"token": token}})


@pytest.mark.asyncio
async def test_the_same_request_with_its_token_continues_and_the_last_page_says_so(
        client: httpx.AsyncClient) -> None:
    token = await _first_token(client)
    second = (await client.post("/access/v1/search/resource",
                                json={**RESOURCE_SEARCH, "page": {"limit": 5,
                                                                  "token": token}})).json()
    assert [r["id"] for r in second["results"]] == ["106", "107", "108", "109", "110"]
    last = (await client.post("/access/v1/search/resource",
                              json={**RESOURCE_SEARCH, "page": {"limit": 50}})).json()
    assert last["page"] == {"next_token": "", "count": 20}


@pytest.mark.asyncio
@pytest.mark.parametrize(("kind", "body"), [
    ("subject", {"subject": {"type": "spaceship"}, "action": {"name": "view"},
                 "resource": {"type": "record", "id": "101"}}),
    ("resource", {"subject": {"type": "user", "id": "alice"}, "action": {"name": "view"},
                  "resource": {"type": "spaceship"}}),
    ("resource", {"subject": {"type": "user", "id": "alice"}, "action": {"name": "view"},
                  "resource": {"type": "not a type"}}),
    ("action", {"subject": {"type": "user", "id": "nobody"},
                "resource": {"type": "record", "id": "101"}}),
])
async def test_an_unknown_type_or_id_finds_exactly_nothing(
        client: httpx.AsyncClient, kind: str, body: dict[str, Any]) -> None:
    response = await client.post(f"/access/v1/search/{kind}", json=body)
    assert (response.status_code, response.text) == (200, '{"results":[]}')


@pytest.mark.asyncio
@pytest.mark.parametrize(("kind", "body", "field"), [
    ("subject", {"subject": {"type": "user"}, "resource": {"type": "record", "id": "1"}},
     "action"),
    ("subject", {"action": {"name": "view"}, "resource": {"type": "record", "id": "1"}},
     "subject"),
    ("subject", {"subject": {"type": "user"}, "action": {"name": "view"},
                 "resource": {"type": "record"}}, "resource.id"),
    ("resource", {"action": {"name": "view"}, "resource": {"type": "record"}}, "subject"),
    ("resource", {"subject": {"type": "user"}, "action": {"name": "view"},
                  "resource": {"type": "record"}}, "subject.id"),
    ("resource", {"subject": {"type": "user", "id": "a"}, "action": {"name": "view"},
                  "resource": {}}, "resource.type"),
    ("action", {"subject": {"type": "user", "id": "alice"}}, "resource"),
    ("action", {"subject": {"type": "user"}, "resource": {"type": "record", "id": "1"}},
     "subject.id"),
    ("resource", {**RESOURCE_SEARCH, "page": {"limit": -1}}, "page.limit"),
    ("resource", {**RESOURCE_SEARCH, "page": {"token": 5}}, "page.token"),
    ("resource", {**RESOURCE_SEARCH, "page": []}, "page"),
])
async def test_a_missing_or_malformed_field_is_a_400_naming_it(
        client: httpx.AsyncClient, kind: str, body: dict[str, Any], field: str) -> None:
    response = await client.post(f"/access/v1/search/{kind}", json=body)
    assert response.status_code == 400
    assert response.json()["field"] == field


@pytest.mark.asyncio
async def test_the_metadata_advertises_the_search_endpoints(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/.well-known/authzen-configuration")).json()
    for kind in KINDS:
        assert doc[f"search_{kind}_endpoint"].endswith(f"/access/v1/search/{kind}")
    schema = (await client.get("/openapi.json")).json()
    assert {f"/access/v1/search/{k}" for k in KINDS} <= set(schema["paths"])


def test_every_case_passes_through_a_real_uvicorn_process() -> None:
    proc, base = start_server(POLICIES / "search")
    failures = []
    try:
        with httpx.Client(base_url=base, timeout=10) as http:
            for param in CASES:
                kind, request, expected = param.values
                got = http.post(f"/access/v1/search/{kind}", json=request).json()
                if _sorted(got.get("results", [])) != _sorted(expected):
                    failures.append((param.id, got))
    finally:
        stop_server(proc)
    assert failures == []
