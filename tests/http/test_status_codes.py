"""HTTP status codes and error bodies of the AuthZEN endpoints (AuthZEN 1.0 section 10).

Every refusal is checked for its status, for an error body that names the field or limit at
fault, and for the service answering the next valid request normally.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from pdp.http import create_app
from tests.conftest import POLICIES, make_service, start_server, stop_server

EVALUATION = "/access/v1/evaluation"
EVALUATIONS = "/access/v1/evaluations"
BODY_LIMIT = 16_384
DEPTH_LIMIT = 8
ADMIN_TOKEN = "admin-s3cret"

RICK = "CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"  # admin, evil_genius
BETH = "CiRmZDM2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"  # viewer

VALID: dict[str, Any] = {
    "subject": {"type": "user", "id": BETH},
    "action": {"name": "can_read_todos"},
    "resource": {"type": "todo", "id": "1"},
}

APP = create_app(make_service(POLICIES / "todo", max_body_bytes=BODY_LIMIT,
                              max_depth=DEPTH_LIMIT, admin_token=ADMIN_TOKEN))


async def _client_for(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://pdp.test") as c:
        yield c


@pytest_asyncio.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async for c in _client_for(APP):
        yield c


POLICY_WITH_ERRORS = """\
@id("senior-staff-read")
permit (principal, action == Action::"read", resource)
when { principal.level > 3 };

@id("nobody-reads-secrets")
forbid (principal, action == Action::"read", resource)
when { resource has secret && resource.secret };
"""


@pytest_asyncio.fixture
async def schemaless_client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A policy set without a schema: every property and context value reaches Cedar."""
    (tmp_path / "policies.cedar").write_text(POLICY_WITH_ERRORS)
    async for c in _client_for(create_app(make_service(tmp_path))):
        yield c


async def _still_answers(client: httpx.AsyncClient) -> None:
    response = await client.post(EVALUATION, json=VALID)
    assert response.status_code == 200
    assert response.json() == {"decision": True}


async def _post_raw(client: httpx.AsyncClient, content: bytes | str,
                    content_type: str | None = "application/json",
                    path: str = EVALUATION, **headers: str) -> httpx.Response:
    all_headers = dict(headers)
    if content_type is not None:
        all_headers["Content-Type"] = content_type
    return await client.post(path, content=content, headers=all_headers)


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["error"] == code
    assert isinstance(body["message"], str) and body["message"]
    return body


def _without(body: dict[str, Any], *path: str) -> dict[str, Any]:
    copy = json.loads(json.dumps(body))
    target = copy
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return copy


def _with(body: dict[str, Any], value: Any, *path: str) -> dict[str, Any]:
    copy = json.loads(json.dumps(body))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return copy


# -- content type and body ------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_text_plain_body_is_refused_with_400_naming_the_content_type(
        client: httpx.AsyncClient) -> None:
    response = await _post_raw(client, json.dumps(VALID), "text/plain")
    body = _error(response, 400, "unsupported_content_type")
    assert body["field"] == "Content-Type"
    assert "text/plain" in body["message"]
    await _still_answers(client)


@pytest.mark.asyncio
async def test_a_body_without_a_content_type_is_refused_with_400(
        client: httpx.AsyncClient) -> None:
    response = await _post_raw(client, json.dumps(VALID), None)
    assert "content-type" not in response.request.headers
    body = _error(response, 400, "unsupported_content_type")
    assert body["field"] == "Content-Type"
    await _still_answers(client)


@pytest.mark.asyncio
@pytest.mark.parametrize("content_type", [
    "application/json; charset=utf-8", "Application/JSON", "application/json;charset=UTF-8"])
async def test_json_with_parameters_or_another_case_is_accepted(
        client: httpx.AsyncClient, content_type: str) -> None:
    response = await _post_raw(client, json.dumps(VALID), content_type)
    assert response.status_code == 200
    assert response.json() == {"decision": True}


@pytest.mark.asyncio
async def test_a_look_alike_media_type_is_refused(client: httpx.AsyncClient) -> None:
    response = await _post_raw(client, json.dumps(VALID), "application/jsonp")
    _error(response, 400, "unsupported_content_type")
    await _still_answers(client)


@pytest.mark.asyncio
@pytest.mark.parametrize("raw", [
    '{"subject": {"type": "user", "id": "alice"}, "action": ',
    "{'subject': 1}",
    '{"subject": {"type": "user", "id": "a"}} trailing',
    "\xff\xfe",
])
async def test_malformed_json_is_refused_with_400_naming_the_body(
        client: httpx.AsyncClient, raw: str) -> None:
    response = await _post_raw(client, raw.encode("latin-1"))
    body = _error(response, 400, "malformed_json")
    assert body["field"] == "body"
    await _still_answers(client)


@pytest.mark.asyncio
@pytest.mark.parametrize("raw", ["", "   \n\t"])
async def test_an_empty_body_is_refused_with_400(client: httpx.AsyncClient, raw: str) -> None:
    body = _error(await _post_raw(client, raw), 400, "empty_body")
    assert body["field"] == "body"
    await _still_answers(client)


@pytest.mark.asyncio
@pytest.mark.parametrize("path", [EVALUATION, EVALUATIONS])
@pytest.mark.parametrize("raw", ["[]", "null", '"subject"', "42"])
async def test_a_body_that_is_not_an_object_is_refused_with_400(
        client: httpx.AsyncClient, raw: str, path: str) -> None:
    body = _error(await _post_raw(client, raw, path=path), 400, "invalid_field")
    assert body["field"] == "$"
    await _still_answers(client)


# -- required fields and their types ----------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("path", [EVALUATION, EVALUATIONS])
@pytest.mark.parametrize("field", ["subject", "action", "resource"])
async def test_a_missing_top_level_field_is_a_400_naming_it(
        client: httpx.AsyncClient, field: str, path: str) -> None:
    body = _error(await client.post(path, json=_without(VALID, field)), 400, "missing_field")
    assert body["field"] == field
    assert field in body["message"]
    await _still_answers(client)


@pytest.mark.asyncio
@pytest.mark.parametrize(("path", "field"), [
    (("subject", "type"), "subject.type"),
    (("subject", "id"), "subject.id"),
    (("resource", "type"), "resource.type"),
    (("resource", "id"), "resource.id"),
    (("action", "name"), "action.name"),
])
async def test_a_missing_sub_field_is_a_400_naming_it(
        client: httpx.AsyncClient, path: tuple[str, ...], field: str) -> None:
    body = _error(await client.post(EVALUATION, json=_without(VALID, *path)), 400,
                  "missing_field")
    assert body["field"] == field
    assert field in body["message"]
    await _still_answers(client)


@pytest.mark.asyncio
@pytest.mark.parametrize(("value", "path", "field"), [
    (7, ("subject", "id"), "subject.id"),
    (7.5, ("resource", "id"), "resource.id"),
    (["user"], ("subject", "type"), "subject.type"),
    (123, ("action", "name"), "action.name"),
    ("role=admin", ("subject", "properties"), "subject.properties"),
    ([1, 2], ("resource", "properties"), "resource.properties"),
    (True, ("action", "properties"), "action.properties"),
    (["time", "now"], ("context",), "context"),
    ("now", ("context",), "context"),
    ("alice", ("subject",), "subject"),
    ([], ("action",), "action"),
])
async def test_a_field_of_the_wrong_type_is_a_400_naming_it(
        client: httpx.AsyncClient, value: Any, path: tuple[str, ...], field: str) -> None:
    body = _error(await client.post(EVALUATION, json=_with(VALID, value, *path)), 400,
                  "invalid_field")
    assert body["field"] == field
    await _still_answers(client)


@pytest.mark.asyncio
async def test_unknown_fields_are_ignored_everywhere(client: httpx.AsyncClient) -> None:
    noisy = json.loads(json.dumps(VALID))
    noisy["futureField"] = {"nested": True}
    noisy["subject"]["_note"] = "interop cases send this"
    noisy["action"]["version"] = 2
    noisy["resource"]["extra"] = [1, 2, 3]
    response = await client.post(EVALUATION, json=noisy)
    assert response.status_code == 200
    assert response.json() == {"decision": True}
    batch = {**noisy, "options": {"evaluations_semantic": "execute_all", "future": 1},
             "evaluations": [{"unknown": 1}]}
    response = await client.post(EVALUATIONS, json=batch)
    assert response.json() == {"evaluations": [{"decision": True}]}


@pytest.mark.asyncio
async def test_null_optional_fields_count_as_absent(client: httpx.AsyncClient) -> None:
    body = {**VALID, "context": None, "subject": {**VALID["subject"], "properties": None}}
    response = await client.post(EVALUATION, json=body)
    assert response.json() == {"decision": True}


# -- limits -----------------------------------------------------------------------------------


def _nested_context(levels: int) -> dict[str, Any]:
    """A request whose JSON nesting depth is ``levels + 2`` (body, context, ``levels`` more)."""
    inner: dict[str, Any] = {}
    for _ in range(levels):
        inner = {"a": inner}
    return {**VALID, "context": inner}


@pytest.mark.asyncio
async def test_nesting_up_to_the_depth_limit_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post(EVALUATION, json=_nested_context(DEPTH_LIMIT - 2))
    assert response.status_code == 200


@pytest.mark.asyncio
async def test_nesting_one_past_the_depth_limit_is_a_400_naming_the_limit(
        client: httpx.AsyncClient) -> None:
    response = await client.post(EVALUATION, json=_nested_context(DEPTH_LIMIT - 1))
    body = _error(response, 400, "nesting_too_deep")
    assert str(DEPTH_LIMIT) in body["message"]
    await _still_answers(client)


@pytest.mark.asyncio
async def test_nesting_deeper_than_the_json_parser_allows_is_still_reported_as_nesting(
        client: httpx.AsyncClient) -> None:
    raw = '{"context": ' + "[" * 3000 + "]" * 3000 + "}"
    assert len(raw) < BODY_LIMIT
    body = _error(await _post_raw(client, raw), 400, "nesting_too_deep")
    assert str(DEPTH_LIMIT) in body["message"]
    await _still_answers(client)


def _padded(size: int) -> bytes:
    """A valid request padded with whitespace to exactly ``size`` bytes."""
    text = json.dumps(VALID).encode()
    return text + b" " * (size - len(text))


@pytest.mark.asyncio
async def test_a_body_of_exactly_the_size_limit_is_accepted(client: httpx.AsyncClient) -> None:
    response = await _post_raw(client, _padded(BODY_LIMIT))
    assert response.status_code == 200
    assert response.json() == {"decision": True}


@pytest.mark.asyncio
async def test_a_body_over_the_size_limit_is_a_413_naming_the_limit(
        client: httpx.AsyncClient) -> None:
    response = await _post_raw(client, _padded(BODY_LIMIT + 1))
    body = _error(response, 413, "body_too_large")
    assert body["field"] == "body"
    assert str(BODY_LIMIT) in body["message"]
    await _still_answers(client)


@pytest.mark.asyncio
async def test_a_chunked_body_over_the_limit_is_a_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield json.dumps(VALID).encode()
        for _ in range(BODY_LIMIT // 1000 + 1):
            yield b" " * 1000

    response = await client.post(EVALUATION, content=chunks(),
                                 headers={"Content-Type": "application/json"})
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    body = _error(response, 413, "body_too_large")
    assert str(BODY_LIMIT) in body["message"]
    await _still_answers(client)


@pytest.mark.asyncio
async def test_a_body_larger_than_its_content_length_claims_is_a_413(
        client: httpx.AsyncClient) -> None:
    response = await _post_raw(client, _padded(BODY_LIMIT * 2), **{"Content-Length": "100"})
    assert response.request.headers["content-length"] == "100"
    body = _error(response, 413, "body_too_large")
    assert str(BODY_LIMIT) in body["message"]
    await _still_answers(client)


@pytest.mark.asyncio
async def test_a_batch_over_the_item_limit_is_a_413_naming_the_limit() -> None:
    app = create_app(make_service(POLICIES / "todo", max_batch=3))
    async for c in _client_for(app):
        response = await c.post(EVALUATIONS, json={**VALID, "evaluations": [{}] * 4})
        body = _error(response, 413, "too_many_evaluations")
        assert body["field"] == "evaluations"
        assert "limit is 3" in body["message"]
        response = await c.post(EVALUATIONS, json={**VALID, "evaluations": [{}] * 3})
        assert response.json() == {"evaluations": [{"decision": True}] * 3}


# -- batches ----------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("evaluations", [{}, "all", 3, True])
async def test_evaluations_that_is_not_an_array_is_a_400(
        client: httpx.AsyncClient, evaluations: Any) -> None:
    response = await client.post(EVALUATIONS, json={**VALID, "evaluations": evaluations})
    body = _error(response, 400, "invalid_field")
    assert body["field"] == "evaluations"
    await _still_answers(client)


@pytest.mark.asyncio
@pytest.mark.parametrize("options", [
    {"evaluations_semantic": "first_wins"}, {"evaluations_semantic": 1},
    {"evaluations_semantic": "EXECUTE_ALL"}])
async def test_an_unknown_evaluations_semantic_is_a_400(
        client: httpx.AsyncClient, options: dict[str, Any]) -> None:
    response = await client.post(EVALUATIONS, json={**VALID, "options": options,
                                                     "evaluations": [{}]})
    body = _error(response, 400, "invalid_field")
    assert body["field"] == "options.evaluations_semantic"
    assert "deny_on_first_deny" in body["message"]
    await _still_answers(client)


@pytest.mark.asyncio
async def test_options_that_is_not_an_object_is_a_400(client: httpx.AsyncClient) -> None:
    response = await client.post(EVALUATIONS, json={**VALID, "options": ["execute_all"],
                                                     "evaluations": [{}]})
    assert _error(response, 400, "invalid_field")["field"] == "options"


@pytest.mark.asyncio
async def test_a_batch_item_that_is_not_an_object_fails_alone(
        client: httpx.AsyncClient) -> None:
    response = await client.post(EVALUATIONS, json={**VALID, "evaluations": [{}, 5, {}]})
    assert response.status_code == 200
    first, second, third = response.json()["evaluations"]
    assert first == third == {"decision": True}
    assert second["decision"] is False
    assert second["context"]["error"]["status"] == 400
    assert "evaluations[1]" in second["context"]["error"]["message"]


# -- values Cedar cannot take -----------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("path", [EVALUATION, EVALUATIONS])
@pytest.mark.parametrize(("where", "bad_type"), [
    ("subject", "not a type!"), ("resource", "todo item"), ("subject", "if"),
    ("resource", "a::"), ("subject", ""), ("resource", "9lives")])
async def test_an_invalid_cedar_type_name_is_a_deny_with_an_error_not_a_failure(
        client: httpx.AsyncClient, where: str, bad_type: str, path: str) -> None:
    response = await client.post(path, json=_with(VALID, bad_type, where, "type"))
    assert response.status_code == 200
    body = response.json()
    assert body["decision"] is False
    assert body["context"]["error"]["status"] == 400
    assert f"{where}.type" in body["context"]["error"]["message"]
    await _still_answers(client)


@pytest.mark.asyncio
async def test_an_invalid_type_in_one_batch_item_denies_only_that_item(
        client: httpx.AsyncClient) -> None:
    items = [{}, {"resource": {"type": "no good", "id": "1"}}, {}]
    response = await client.post(EVALUATIONS, json={**VALID, "evaluations": items})
    first, second, third = response.json()["evaluations"]
    assert first == third == {"decision": True}
    assert second["decision"] is False and "resource.type" in str(second["context"]["error"])


@pytest.mark.asyncio
@pytest.mark.parametrize(("number", "where"), [
    ("18446744073709551616", "subject.properties.level"),  # 2**64
    ("9223372036854775808", "resource.properties.size"),  # 2**63
    ("-9223372036854775809", "context.count"),  # -(2**63) - 1
    ("123456789012345678901234567890", "context.count"),
    ("1.00001", "context.ratio"),
])
async def test_a_number_cedar_cannot_hold_is_a_deny_with_an_error(
        schemaless_client: httpx.AsyncClient, number: str, where: str) -> None:
    top, *rest = where.split(".")
    body = json.loads(json.dumps({**VALID, "action": {"name": "read"}}))
    target = body.setdefault(top, {})
    for key in rest[:-1]:
        target = target.setdefault(key, {})
    target[rest[-1]] = "__NUMBER__"
    raw = json.dumps(body).replace('"__NUMBER__"', number)
    response = await _post_raw(schemaless_client, raw)
    assert response.status_code == 200
    result = response.json()
    assert result["decision"] is False
    assert result["context"]["error"]["status"] == 400
    assert where in result["context"]["error"]["message"]


@pytest.mark.asyncio
async def test_the_extreme_longs_are_accepted(schemaless_client: httpx.AsyncClient) -> None:
    body = {**VALID, "action": {"name": "read"},
            "subject": {"type": "user", "id": "u", "properties": {"level": 2**63 - 1}},
            "context": {"low": -(2**63)}}
    response = await schemaless_client.post(EVALUATION, json=body)
    assert response.json() == {"decision": True}


@pytest.mark.asyncio
async def test_a_number_beyond_double_range_is_a_client_error_not_a_crash(
        schemaless_client: httpx.AsyncClient) -> None:
    raw = json.dumps({**VALID, "context": {"big": 0}}).replace('"big": 0', '"big": 1e400')
    response = await _post_raw(schemaless_client, raw)
    body = _error(response, 400, "malformed_json")
    assert body["field"] == "body"
    assert "infinity" in body["message"]
    response = await schemaless_client.post(EVALUATION, json={**VALID, "action": {
        "name": "read"}, "subject": {"type": "user", "id": "u", "properties": {"level": 9}}})
    assert response.json() == {"decision": True}


# -- X-Request-ID -----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_request_id_is_echoed_on_a_decision(client: httpx.AsyncClient) -> None:
    response = await client.post(EVALUATION, json=VALID, headers={"X-Request-ID": "req-1"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "req-1"
    response = await client.post(EVALUATIONS, json={**VALID, "evaluations": [{}]},
                                 headers={"X-Request-ID": "req-batch"})
    assert response.headers["x-request-id"] == "req-batch"


@pytest.mark.asyncio
async def test_the_request_id_is_echoed_on_a_400(client: httpx.AsyncClient) -> None:
    response = await client.post(EVALUATION, json={}, headers={"X-Request-ID": "bad-1"})
    assert response.status_code == 400
    assert response.headers["x-request-id"] == "bad-1"


@pytest.mark.asyncio
async def test_the_request_id_is_echoed_on_a_413(client: httpx.AsyncClient) -> None:
    response = await _post_raw(client, _padded(BODY_LIMIT + 1), **{"X-Request-ID": "big-1"})
    assert response.status_code == 413
    assert response.headers["x-request-id"] == "big-1"


@pytest.mark.asyncio
async def test_the_request_id_is_echoed_on_a_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/access/v2/evaluation", json=VALID,
                                 headers={"X-Request-ID": "nf-1"})
    assert response.status_code == 404
    assert response.headers["x-request-id"] == "nf-1"


@pytest.mark.asyncio
async def test_the_request_id_is_echoed_once_with_an_opaque_value(
        client: httpx.AsyncClient) -> None:
    value = "3f1c9a70-0d5e-4c1b-9b1e-6f1f2f0b9a11;tenant=a b"
    response = await client.post(EVALUATION, json=VALID, headers={"X-Request-ID": value})
    assert response.headers.get_list("x-request-id") == [value]


@pytest.mark.asyncio
async def test_a_request_without_a_request_id_still_succeeds(client: httpx.AsyncClient) -> None:
    response = await client.post(EVALUATION, json=VALID)
    assert response.status_code == 200


# -- operations endpoints ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_health_answers_200(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.asyncio
async def test_admin_reload_does_not_exist_without_an_admin_token() -> None:
    async for c in _client_for(create_app(make_service(POLICIES / "todo"))):
        response = await c.post("/admin/reload",
                                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        body = _error(response, 404, "admin_disabled")
        assert "PDP_ADMIN_TOKEN" in body["message"]
        await _still_answers(c)


@pytest.mark.asyncio
@pytest.mark.parametrize("authorization", [
    None, "Bearer wrong", f"Bearer {ADMIN_TOKEN}x", ADMIN_TOKEN, f"Basic {ADMIN_TOKEN}"])
async def test_admin_reload_with_a_wrong_or_missing_token_is_a_401(
        client: httpx.AsyncClient, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await client.post("/admin/reload", headers=headers)
    _error(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"].startswith("Bearer")
    await _still_answers(client)


@pytest.mark.asyncio
async def test_admin_reload_with_the_right_token_reloads(client: httpx.AsyncClient) -> None:
    response = await client.post("/admin/reload",
                                 headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 200
    body = response.json()
    assert body["policies"] == 7
    assert isinstance(body["version"], str) and body["version"]
    await _still_answers(client)


@pytest.mark.asyncio
async def test_the_openapi_schema_documents_both_decision_endpoints(
        client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    components = doc["components"]["schemas"]

    def resolve(schema: dict[str, Any]) -> dict[str, Any]:
        ref = schema.get("$ref")
        if ref is None:
            return schema
        assert ref.startswith("#/components/schemas/")
        return resolve(components[ref.rsplit("/", 1)[1]])

    for path in (EVALUATION, EVALUATIONS):
        post = doc["paths"][path]["post"]
        request = resolve(post["requestBody"]["content"]["application/json"]["schema"])
        assert {"subject", "action", "resource", "context"} <= set(request["properties"])
        assert {"200", "400", "413"} <= set(post["responses"])
        assert {p["name"] for p in post["parameters"]} >= {"X-Request-ID"}
    single = resolve(doc["paths"][EVALUATION]["post"]["requestBody"]["content"][
        "application/json"]["schema"])
    assert set(single["required"]) == {"subject", "action", "resource"}
    batch = resolve(doc["paths"][EVALUATIONS]["post"]["requestBody"]["content"][
        "application/json"]["schema"])
    assert {"evaluations", "options"} <= set(batch["properties"])
    subject = resolve(single["properties"]["subject"])
    assert set(subject["required"]) == {"type", "id"}


# -- explanations -----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_by_default_a_decision_is_exactly_the_decision(client: httpx.AsyncClient) -> None:
    for headers in ({}, {"X-PDP-Explain": "false"}):
        response = await client.post(EVALUATION, json=VALID, headers=headers)
        assert response.text.replace(" ", "") == '{"decision":true}'
        deny = _with(VALID, "can_create_todo", "action", "name")
        response = await client.post(EVALUATION, json=deny, headers=headers)
        assert response.json() == {"decision": False}


def _where(source: str, policy_id: str, file: str) -> dict[str, object]:
    """Where ``@id("policy_id")`` starts in ``source``, as the explanation reports it."""
    lines = source.splitlines()
    line = next(i for i, text in enumerate(lines, 1) if f'@id("{policy_id}")' in text)
    return {"id": policy_id, "file": file, "line": line,
            "column": lines[line - 1].index("@") + 1}


TODO_SOURCE = (POLICIES / "todo" / "todo.cedar").read_text()


@pytest.mark.asyncio
async def test_explain_names_the_determining_policy_of_a_permit_and_where_it_is(
        client: httpx.AsyncClient) -> None:
    response = await client.post(EVALUATION, json=VALID, headers={"X-PDP-Explain": "true"})
    assert response.json() == {"decision": True, "context": {
        "outcome": "permit", "reasons": ["everyone-reads-todos"],
        "policies": [_where(TODO_SOURCE, "everyone-reads-todos", "todo.cedar")]}}
    body = {**VALID, "subject": {"type": "user", "id": RICK},
            "action": {"name": "can_delete_todo"}}
    response = await client.post(EVALUATION, json=body, headers={"X-PDP-Explain": "true"})
    assert response.json()["context"]["reasons"] == ["admin-deletes-any-todo"]


@pytest.mark.asyncio
async def test_explain_says_no_permit_when_nothing_permits(client: httpx.AsyncClient) -> None:
    deny = _with(VALID, "can_create_todo", "action", "name")
    response = await client.post(EVALUATION, json=deny, headers={"X-PDP-Explain": "true"})
    assert response.json() == {"decision": False, "context": {
        "outcome": "no_permit", "reasons": []}}


@pytest.mark.asyncio
async def test_explain_tells_an_evaluation_error_from_no_permit(
        schemaless_client: httpx.AsyncClient) -> None:
    base = {**VALID, "action": {"name": "read"}}
    explain = {"X-PDP-Explain": "true"}
    broken = _with(base, {"team": "x"}, "subject", "properties")  # no `level` attribute
    response = await schemaless_client.post(EVALUATION, json=broken, headers=explain)
    body = response.json()
    assert body["decision"] is False
    assert body["context"]["outcome"] == "error"
    assert body["context"]["reasons"] == []
    assert any("senior-staff-read" in e for e in body["context"]["errors"])

    no_permit = _with(base, "write", "action", "name")
    response = await schemaless_client.post(EVALUATION, json=no_permit, headers=explain)
    assert response.json() == {"decision": False, "context": {
        "outcome": "no_permit", "reasons": []}}

    response = await schemaless_client.post(EVALUATION, json=broken)
    assert response.json() == {"decision": False}


@pytest.mark.asyncio
async def test_explain_names_the_forbid_that_overrides_a_permit(
        schemaless_client: httpx.AsyncClient) -> None:
    body = {**VALID, "action": {"name": "read"},
            "subject": {"type": "user", "id": "u", "properties": {"level": 9}},
            "resource": {"type": "doc", "id": "d", "properties": {"secret": True}}}
    response = await schemaless_client.post(EVALUATION, json=body,
                                            headers={"X-PDP-Explain": "true"})
    assert response.json() == {"decision": False, "context": {
        "outcome": "forbid", "reasons": ["nobody-reads-secrets"],
        "policies": [_where(POLICY_WITH_ERRORS, "nobody-reads-secrets", "policies.cedar")]}}


@pytest.mark.asyncio
async def test_the_explain_setting_adds_reasons_unless_the_header_says_false() -> None:
    async for c in _client_for(create_app(make_service(POLICIES / "todo", explain=True))):
        response = await c.post(EVALUATION, json=VALID)
        assert response.json()["context"]["reasons"] == ["everyone-reads-todos"]
        response = await c.post(EVALUATION, json=VALID, headers={"X-PDP-Explain": "false"})
        assert response.json() == {"decision": True}


@pytest.mark.asyncio
async def test_explain_applies_to_every_item_of_a_batch(client: httpx.AsyncClient) -> None:
    body = {**VALID, "evaluations": [{}, {"action": {"name": "can_create_todo"}},
                                     {"resource": {"type": "bad type", "id": "1"}}]}
    response = await client.post(EVALUATIONS, json=body, headers={"X-PDP-Explain": "1"})
    permit, deny, error = response.json()["evaluations"]
    assert permit["context"] == {
        "outcome": "permit", "reasons": ["everyone-reads-todos"],
        "policies": [_where(TODO_SOURCE, "everyone-reads-todos", "todo.cedar")]}
    assert deny["context"] == {"outcome": "no_permit", "reasons": []}
    assert error["context"]["outcome"] == "error"
    assert "resource.type" in error["context"]["error"]["message"]


# -- the same through a real server -------------------------------------------------------------


@pytest.fixture(scope="module")
def real_server() -> Iterator[str]:
    proc, base = start_server(POLICIES / "todo", "--public-url", "https://pdp.example.com",
                              env={"PDP_MAX_BODY_BYTES": str(BODY_LIMIT)})
    try:
        yield base
    finally:
        stop_server(proc)


def test_a_real_server_refuses_oversized_bodies_and_keeps_answering(real_server: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"subject": '
        for _ in range(BODY_LIMIT // 1000 + 1):
            yield b" " * 1000

    with httpx.Client(base_url=real_server, timeout=10) as http:
        response = http.post(EVALUATION, content=chunks(), headers={
            "Content-Type": "application/json", "X-Request-ID": "chunked-1"})
        assert response.status_code == 413
        assert response.headers["x-request-id"] == "chunked-1"
        assert str(BODY_LIMIT) in response.json()["message"]
        response = http.post(EVALUATION, content=_padded(BODY_LIMIT * 4),
                             headers={"Content-Type": "application/json"})
        assert response.status_code == 413
        response = http.post(EVALUATION, content=json.dumps(VALID),
                             headers={"Content-Type": "text/plain", "X-Request-ID": "tp-1"})
        assert (response.status_code, response.headers["x-request-id"]) == (400, "tp-1")
        response = http.post(EVALUATION, json=VALID)
        assert (response.status_code, response.json()) == (200, {"decision": True})


def test_a_real_server_advertises_the_public_url_given_on_the_command_line(
        real_server: str) -> None:
    doc = httpx.get(real_server + "/.well-known/authzen-configuration", timeout=10).json()
    assert doc["policy_decision_point"] == "https://pdp.example.com"
    endpoints = [v for k, v in doc.items() if k.endswith("_endpoint")]
    assert "https://pdp.example.com/access/v1/evaluation" in endpoints
    assert all(v.startswith("https://pdp.example.com/") for v in endpoints)
