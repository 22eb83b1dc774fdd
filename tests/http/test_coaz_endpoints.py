"""``POST /coaz/v1/map`` and ``POST /coaz/v1/authorize`` (docs/spec/coaz.md; AuthZEN 1.0
section 10).

Every outcome (pass, evaluate with one or many evaluations, deny for mapping errors and unknown
methods, unauthenticated), the decisions of /authorize, the 400s, PEP authentication (401) and
when ``claims`` are accepted, the compiled-catalog cache, and the OpenAPI description.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from pdp.auth.keys import entry_for
from pdp.http import create_app
from tests.conftest import POLICIES, make_service
from tests.gateway.support import RESOURCE, TOOLS, Keys, call, message

MAP = "/coaz/v1/map"
AUTHORIZE = "/coaz/v1/authorize"
PEP_KEY = "pep-key-0123456789abcdefghijklmnopqrstuvwxyz"
PEP_KEYS = [entry_for("gateway", PEP_KEY)]
ADMIN_KEY = "admin-key-0123456789abcdefghijklmnopqrstuvwxyz"
ALICE = {"iss": "https://as.example.com", "aud": RESOURCE, "sub": "alice@example.com",
         "client_id": "agent-app-1"}
METADATA = "https://gw.example.com/.well-known/oauth-protected-resource/mcp"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return Keys(tmp_path_factory.mktemp("coaz-keys"))


def _client(keys: Keys, **settings: Any) -> httpx.AsyncClient:
    values: dict[str, Any] = {"entity_store": "memory", "resource_id": RESOURCE,
                              "token_jwks_file": keys.jwks_file,
                              "authorization_servers": ["https://as.example.com"]}
    values.update(settings)
    app = create_app(make_service(POLICIES / "mcp", **values))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pdp.test")


@pytest_asyncio.fixture
async def pep(keys: Keys) -> AsyncIterator[httpx.AsyncClient]:
    """A PDP that requires PEP authentication; the client sends its API key."""
    async with _client(keys, api_keys=PEP_KEYS) as client:
        client.headers["authorization"] = f"Bearer {PEP_KEY}"
        yield client


@pytest_asyncio.fixture
async def open_pdp(keys: Keys) -> AsyncIterator[httpx.AsyncClient]:
    """A PDP without PEP credentials (unauthenticated mode, loopback)."""
    async with _client(keys) as client:
        yield client


def _body(msg: Any, **extra: Any) -> dict[str, Any]:
    return {"message": msg, "tools": TOOLS, "claims": ALICE, **extra}


# -- /coaz/v1/map ------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_map_pass(pep: httpx.AsyncClient) -> None:
    for msg in (message("ping"), message("notifications/initialized", request_id=None),
                {"jsonrpc": "2.0", "id": 7, "result": {}}):
        answer = await pep.post(MAP, json=_body(msg))
        assert answer.status_code == 200
        assert answer.json() == {"outcome": "pass"}


@pytest.mark.asyncio
async def test_map_evaluate_one_evaluation(pep: httpx.AsyncClient) -> None:
    msg = call("transfer_funds", {"from_account": "acc-alice", "to_account": "acc-bob",
                                  "amount": 25000})
    answer = await pep.post(MAP, json=_body(msg))
    assert answer.json() == {
        "outcome": "evaluate", "dialect": "binding",
        "evaluation": {
            "subject": {"type": "identity", "id": "alice@example.com"},
            "action": {"name": "transfer_funds"},
            "resource": {"type": "account", "id": "acc-alice"},
            "context": {"agent": "agent-app-1", "to_account": "acc-bob", "amount": 25000,
                        "risk": "high"}}}


@pytest.mark.asyncio
async def test_map_evaluate_many_evaluations(pep: httpx.AsyncClient) -> None:
    msg = call("copy_object", {"source": "a", "destination": "b"})
    answer = (await pep.post(MAP, json=_body(msg))).json()
    assert answer["outcome"] == "evaluate" and "evaluation" not in answer
    assert [e["action"]["name"] for e in answer["evaluations"]["evaluations"]] == ["read", "write"]


@pytest.mark.asyncio
async def test_map_sep_example_of_the_spec(pep: httpx.AsyncClient) -> None:
    msg = call("get_customer", {"id": "cust-12345", "case": "case-67890"})
    answer = (await pep.post(MAP, json=_body(msg))).json()
    assert answer == {"outcome": "evaluate", "dialect": "sep", "evaluation": {
        "subject": {"type": "user", "id": "alice@example.com"},
        "action": {"name": "get_customer"},
        "resource": {"type": "customer", "id": "cust-12345"},
        "context": {"agent": "agent-app-1", "case": "case-67890"}}}


@pytest.mark.asyncio
async def test_map_default_mapping(pep: httpx.AsyncClient) -> None:
    answer = (await pep.post(MAP, json=_body(message("tools/list", {})))).json()
    assert answer["outcome"] == "evaluate" and answer["dialect"] == "default"
    assert answer["evaluation"]["resource"] == {"type": "mcp_server", "id": RESOURCE}


@pytest.mark.asyncio
async def test_map_deny_outcomes(pep: httpx.AsyncClient) -> None:
    broken = {"name": "broken", "inputSchema": {"type": "object", "x-authzen-mapping": {
        "evaluation": {"resource": {"type": "x", "id": "$params.arguments.id"}},
        "evaluations": {}}}}
    cases = [
        (call("transfer_funds", {"from_account": "a", "to_account": "b", "amount": "x"}),
         [*TOOLS], -32602),                                    # inputSchema violation
        (call("broken", {"id": "1"}), [*TOOLS, broken], -32602),  # malformed mapping
        (call("nowhere", {}), [*TOOLS], -32602),                 # unknown tool
        (message("server/reboot", {}), [*TOOLS], -32401),        # unknown method
    ]
    for msg, tools, code in cases:
        answer = await pep.post(MAP, json=_body(msg, tools=tools))
        assert answer.status_code == 200
        body = answer.json()
        assert body["outcome"] == "deny" and body["error"]["code"] == code, body
        assert isinstance(body["error"]["message"], str) and body["error"]["message"]


@pytest.mark.asyncio
async def test_map_with_a_token(open_pdp: httpx.AsyncClient, keys: Keys) -> None:
    msg = call("get_customer", {"id": "cust-12345"})
    good = await open_pdp.post(MAP, json={"message": msg, "tools": TOOLS,
                                          "token": keys.token(RESOURCE)})
    assert good.json()["evaluation"]["subject"] == {"type": "user", "id": "alice@example.com"}
    other = "https://other.example.com/mcp"  # `server` names the audience
    elsewhere = await open_pdp.post(MAP, json={"message": msg, "tools": TOOLS, "server": other,
                                               "token": keys.token(other)})
    assert elsewhere.json()["outcome"] == "evaluate"


@pytest.mark.asyncio
async def test_map_unauthenticated(open_pdp: httpx.AsyncClient, keys: Keys) -> None:
    msg = message("tools/list", {})
    for token, challenge in [
        (None, f'Bearer resource_metadata="{METADATA}"'),
        ("not.a.jwt", f'Bearer error="invalid_token", resource_metadata="{METADATA}"'),
        (keys.token("https://other.example.com/mcp"),
         f'Bearer error="invalid_token", resource_metadata="{METADATA}"'),
        (keys.token(RESOURCE, lifetime=-3600),
         f'Bearer error="invalid_token", resource_metadata="{METADATA}"'),
    ]:
        body: dict[str, Any] = {"message": msg}
        if token is not None:
            body["token"] = token
        answer = await open_pdp.post(MAP, json=body)
        assert answer.status_code == 200
        assert answer.json() == {"outcome": "unauthenticated", "www_authenticate": challenge}


# -- /coaz/v1/authorize ----------------------------------------------------------------


@pytest.mark.asyncio
async def test_authorize_pass(pep: httpx.AsyncClient) -> None:
    answer = await pep.post(AUTHORIZE, json=_body(message("ping")))
    assert answer.json() == {"allow": True, "outcome": "pass", "decisions": []}


@pytest.mark.asyncio
async def test_authorize_permit_and_deny(pep: httpx.AsyncClient) -> None:
    ok = (await pep.post(AUTHORIZE, json=_body(call(
        "copy_object", {"source": "reports/q1.csv", "destination": "reports/q1-copy.csv"})))).json()
    assert ok["allow"] is True and ok["outcome"] == "evaluate"
    assert ok["decisions"] == [{"decision": True}, {"decision": True}]
    assert ok["endpoint"] == "/access/v1/evaluations" and "error" not in ok
    assert ok["request"]["evaluations"][1]["resource"]["id"] == "reports/q1-copy.csv"

    locked = (await pep.post(AUTHORIZE, json=_body(call(
        "copy_object", {"source": "reports/q1.csv", "destination": "archive/2020.csv"})))).json()
    assert locked["allow"] is False
    assert locked["decisions"] == [{"decision": True}, {"decision": False}]
    assert locked["error"] == {"code": -32401, "message": "Access denied"}

    sep = (await pep.post(AUTHORIZE, json=_body(call("get_customer", {"id": "cust-67890"})))
           ).json()
    assert sep["allow"] is False and sep["error"]["code"] == -32401


@pytest.mark.asyncio
async def test_authorize_explains_when_asked(pep: httpx.AsyncClient) -> None:
    msg = call("transfer_funds", {"from_account": "acc-frozen", "to_account": "b", "amount": 5})
    answer = (await pep.post(AUTHORIZE, json=_body(msg),
                             headers={"X-PDP-Explain": "true"})).json()
    assert answer["allow"] is False
    assert answer["decisions"][0]["context"]["reasons"] == ["frozen-accounts-send-nothing"]
    assert answer["error"]["data"]["decisions"][0]["context"]["reasons"] == [
        "frozen-accounts-send-nothing"]
    plain = (await pep.post(AUTHORIZE, json=_body(msg))).json()
    assert "data" not in plain["error"]


@pytest.mark.asyncio
async def test_authorize_deny_and_unauthenticated(open_pdp: httpx.AsyncClient,
                                                  pep: httpx.AsyncClient) -> None:
    denied = (await pep.post(AUTHORIZE, json=_body(message("server/reboot", {})))).json()
    assert denied == {"allow": False, "outcome": "deny", "decisions": [],
                      "error": {"code": -32401, "message": "method 'server/reboot' is not "
                                "allowed"}}
    anonymous = (await open_pdp.post(AUTHORIZE, json={"message": message("ping")})).json()
    assert anonymous["allow"] is False and anonymous["outcome"] == "unauthenticated"
    assert anonymous["www_authenticate"] == f'Bearer resource_metadata="{METADATA}"'
    assert anonymous["error"]["code"] == -32401


# -- errors, PEP authentication, claims -------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("path", [MAP, AUTHORIZE])
async def test_bad_bodies_are_400(pep: httpx.AsyncClient, path: str) -> None:
    bad: list[tuple[dict[str, Any], str]] = [
        ({"content": b"{nope"}, "malformed_json"),
        ({"content": b""}, "empty_body"),
        ({"json": {"tools": TOOLS, "claims": ALICE}}, "missing_field"),
        ({"json": [1, 2]}, "invalid_field"),
        ({"json": {"message": message("ping"), "tools": {"a": 1}, "claims": ALICE}},
         "invalid_field"),
        ({"json": {"message": message("ping"), "claims": ALICE, "token": "t"}},
         "invalid_field"),
        ({"json": {"message": message("ping"), "claims": "alice"}}, "invalid_field"),
    ]
    for kwargs, code in bad:
        answer = await pep.post(path, headers={"content-type": "application/json"}, **kwargs)
        assert answer.status_code == 400, kwargs
        assert answer.json()["error"] == code
    wrong_type = await pep.post(path, content=b"{}", headers={"content-type": "text/plain"})
    assert wrong_type.status_code == 400


@pytest.mark.asyncio
@pytest.mark.parametrize("path", [MAP, AUTHORIZE])
async def test_pep_authentication(keys: Keys, path: str) -> None:
    async with _client(keys, api_keys=PEP_KEYS) as client:
        for auth in (None, "Bearer wrong", f"Basic {PEP_KEY}"):
            headers = {} if auth is None else {"authorization": auth}
            answer = await client.post(path, json=_body(message("ping")), headers=headers)
            assert answer.status_code == 401
            assert answer.headers["www-authenticate"].startswith("Bearer")
        ok = await client.post(path, json=_body(message("ping")),
                               headers={"authorization": f"Bearer {PEP_KEY}"})
        assert ok.status_code == 200


@pytest.mark.asyncio
async def test_claims_are_accepted_from_an_authenticated_pep_or_in_unauthenticated_mode(
        keys: Keys) -> None:
    async with _client(keys, api_keys=PEP_KEYS, admin_api_keys=[entry_for("ops", ADMIN_KEY)],
                       ) as client:
        for auth in (None, f"Bearer {ADMIN_KEY}"):  # nobody, or an admin: not a PEP
            headers = {} if auth is None else {"authorization": auth}
            refused = await client.post(MAP, json=_body(message("tools/list", {})),
                                        headers=headers)
            assert refused.status_code == 401
        accepted = await client.post(MAP, json=_body(message("tools/list", {})),
                                     headers={"x-api-key": PEP_KEY})
        assert accepted.status_code == 200 and accepted.json()["outcome"] == "evaluate"
    async with _client(keys) as client:  # no PEP credential: anyone may ask /access/v1 anyway
        accepted = await client.post(MAP, json=_body(message("tools/list", {})))
        assert accepted.status_code == 200 and accepted.json()["outcome"] == "evaluate"
        with_token = await client.post(MAP, json={"message": message("tools/list", {}),
                                                  "token": keys.token(RESOURCE)})
        assert with_token.json()["outcome"] == "evaluate"


@pytest.mark.asyncio
async def test_tool_catalogs_are_compiled_once(keys: Keys) -> None:
    app = create_app(make_service(POLICIES / "mcp", resource_id=RESOURCE,
                                  entity_store="memory"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://pdp.test") as client:
        for _ in range(3):
            answer = await client.post(AUTHORIZE, json=_body(call("echo", {"text": "hi"})))
            assert answer.json()["allow"] is True
        assert app.state.coaz.catalogs.compiled == 1
        await client.post(MAP, json=_body(call("echo", {"text": "hi"}), tools=TOOLS[:4]))
        assert app.state.coaz.catalogs.compiled == 2


@pytest.mark.asyncio
async def test_openapi_documents_both_endpoints(open_pdp: httpx.AsyncClient) -> None:
    schema = (await open_pdp.get("/openapi.json")).json()
    for path, response in [(MAP, "CoazMapResponseModel"),
                           (AUTHORIZE, "CoazAuthorizeResponseModel")]:
        operation = schema["paths"][path]["post"]
        assert operation["tags"] == ["COAZ"]
        assert operation["requestBody"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/CoazRequestModel"}
        assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{response}"}
    assert set(schema["components"]["schemas"]["CoazRequestModel"]["properties"]) == {
        "message", "tools", "token", "claims", "server"}
