"""PEP and admin authentication over HTTP (AuthZEN 1.0 section 10: the PDP SHOULD authenticate
the PEP; 401 with ``WWW-Authenticate``; RFC 6750 for bearer tokens), the open endpoints, the
loopback rule of ``pdp serve`` and ``pdp keys``."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from starlette.types import Receive, Scope, Send

from pdp.auth import Principal, authenticators
from pdp.auth.keys import entry_for, new_key
from pdp.cli import main
from pdp.http import create_app
from pdp.http.auth import PUBLIC_PATHS, AuthenticationMiddleware, classify
from pdp.http.responses import json_response
from pdp.settings import Settings
from tests.auth.conftest import PepTokens
from tests.conftest import POLICIES, make_service, start_server, stop_server
from tests.waiting import eventually

GW_A, GW_B, ADMIN = new_key(), new_key(), new_key()
KEYS = [entry_for("gateway-a", GW_A), entry_for("gateway-b", GW_B)]
ADMIN_KEYS = [entry_for("ops", ADMIN)]
EVALUATION = "/access/v1/evaluation"
REQUEST = {"subject": {"type": "user", "id": "bob"}, "action": {"name": "view"},
           "resource": {"type": "document", "id": "roadmap"}}
PROTECTED = [  # (path, body) of every PEP endpoint
    (EVALUATION, REQUEST),
    ("/access/v1/evaluations", {"evaluations": [REQUEST]}),
    ("/access/v1/search/subject", {"subject": {"type": "user"}, "action": {"name": "view"},
                                   "resource": {"type": "document", "id": "roadmap"}}),
    ("/access/v1/search/resource", {"subject": {"type": "user", "id": "bob"},
                                    "action": {"name": "view"},
                                    "resource": {"type": "document"}}),
    ("/access/v1/search/action", {"subject": {"type": "user", "id": "bob"},
                                  "resource": {"type": "document", "id": "roadmap"}}),
    ("/coaz/v1/map", {"message": {"jsonrpc": "2.0", "id": 1, "method": "ping"},
                      "claims": {"sub": "alice"}}),
    ("/coaz/v1/authorize", {"message": {"jsonrpc": "2.0", "id": 1, "method": "ping"},
                            "claims": {"sub": "alice"}}),
]


@pytest.fixture(scope="module")
def pep_tokens(tmp_path_factory: pytest.TempPathFactory) -> PepTokens:
    return PepTokens(tmp_path_factory.mktemp("pep-tokens"))


def _client(**settings: Any) -> httpx.AsyncClient:
    app = create_app(make_service(POLICIES / "default", entity_store="memory", **settings))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pdp.test")


@pytest_asyncio.fixture
async def client(pep_tokens: PepTokens) -> AsyncIterator[httpx.AsyncClient]:
    """Two PEP keys (a rotation), PEP JWTs and an admin key."""
    async with _client(api_keys=KEYS, admin_api_keys=ADMIN_KEYS,
                       **pep_tokens.settings()) as c:
        yield c


def _bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def _refused(response: httpx.Response, status: int = 401) -> str:
    assert response.status_code == status, response.text
    assert response.json()["error"] == ("unauthenticated" if status == 401
                                        else "insufficient_scope")
    assert response.json()["message"]
    challenge: str = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="authzen"')
    return challenge


# -- API keys ----------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(("path", "body"), PROTECTED)
async def test_every_pep_endpoint_needs_a_credential(client: httpx.AsyncClient, path: str,
                                                     body: dict[str, Any]) -> None:
    assert _refused(await client.post(path, json=body)) == 'Bearer realm="authzen"'
    answer = await client.post(path, json=body, headers=_bearer(GW_A))
    assert answer.status_code == 200, answer.text


@pytest.mark.asyncio
async def test_a_wrong_key_is_refused_as_an_invalid_token(client: httpx.AsyncClient) -> None:
    for headers in (_bearer(GW_A + "x"), _bearer("x"), {"X-API-Key": "nope"},
                    {"Authorization": f"Basic {GW_A}"}):
        challenge = _refused(await client.post(EVALUATION, json=REQUEST, headers=headers))
        if headers.get("Authorization", "").startswith("Bearer") or "X-API-Key" in headers:
            assert 'error="invalid_token"' in challenge


@pytest.mark.asyncio
async def test_both_keys_of_a_rotation_work_and_a_removed_one_is_refused() -> None:
    async with _client(api_keys=KEYS) as rotating:
        for key in (GW_A, GW_B):
            answer = await rotating.post(EVALUATION, json=REQUEST, headers=_bearer(key))
            assert answer.json() == {"decision": True}
    async with _client(api_keys=KEYS[1:]) as rotated:
        _refused(await rotated.post(EVALUATION, json=REQUEST, headers=_bearer(GW_A)))
        ok = await rotated.post(EVALUATION, json=REQUEST, headers=_bearer(GW_B))
        assert ok.status_code == 200


@pytest.mark.asyncio
async def test_a_key_is_rotated_through_the_keys_file_without_a_restart(
        tmp_path: Path) -> None:
    keys_file = tmp_path / "pep-keys"
    keys_file.write_text(KEYS[0] + "\n")
    async with _client(api_keys_file=keys_file, poll_interval=0.05) as client:
        assert (await client.post(EVALUATION, json=REQUEST, headers=_bearer(GW_A))).is_success
        _refused(await client.post(EVALUATION, json=REQUEST, headers=_bearer(GW_B)))
        keys_file.write_text(f"# rotating gateway-a to gateway-b\n{KEYS[1]}\n")

        async def accepted(key: str) -> bool:
            answer = await client.post(EVALUATION, json=REQUEST, headers=_bearer(key))
            return answer.is_success

        await eventually(lambda: accepted(GW_B), message="the new key being accepted")
        assert (await client.post(EVALUATION, json=REQUEST, headers=_bearer(GW_B))).is_success
        _refused(await client.post(EVALUATION, json=REQUEST, headers=_bearer(GW_A)))
        keys_file.write_text("")  # every key revoked: still enforced, nobody gets in

        async def b_refused() -> bool:
            return not await accepted(GW_B)

        await eventually(b_refused, message="the emptied keys file taking effect")
        for key in (GW_A, GW_B):
            _refused(await client.post(EVALUATION, json=REQUEST, headers=_bearer(key)))
        _refused(await client.post(EVALUATION, json=REQUEST))


@pytest.mark.asyncio
async def test_the_key_may_come_as_x_api_key(client: httpx.AsyncClient) -> None:
    answer = await client.post(EVALUATION, json=REQUEST, headers={"X-API-Key": GW_B})
    assert answer.json() == {"decision": True}


@pytest.mark.asyncio
async def test_a_401_still_echoes_the_request_id(client: httpx.AsyncClient) -> None:
    answer = await client.post(EVALUATION, json=REQUEST, headers={"X-Request-ID": "r-1"})
    assert answer.status_code == 401 and answer.headers["x-request-id"] == "r-1"


# -- bearer JWTs -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_valid_jwt_is_accepted(client: httpx.AsyncClient,
                                       pep_tokens: PepTokens) -> None:
    token = pep_tokens.token()
    for _ in range(2):  # the second time from the accepted-token memory
        answer = await client.post(EVALUATION, json=REQUEST, headers=_bearer(token))
        assert answer.json() == {"decision": True}


@pytest.mark.asyncio
@pytest.mark.parametrize("overrides", [
    {"exp": int(time.time()) - 120, "iat": int(time.time()) - 600},
    {"aud": "https://other.example.com"},
    {"iss": "https://evil.example.com"},
])
async def test_an_expired_or_foreign_jwt_is_a_401(client: httpx.AsyncClient,
                                                  pep_tokens: PepTokens,
                                                  overrides: dict[str, Any]) -> None:
    answer = await client.post(EVALUATION, json=REQUEST,
                               headers=_bearer(pep_tokens.token(**overrides)))
    assert 'error="invalid_token"' in _refused(answer)


@pytest.mark.asyncio
async def test_a_jwt_signed_by_another_key_is_a_401(client: httpx.AsyncClient,
                                                    tmp_path: Any) -> None:
    forged = PepTokens(tmp_path).token()  # same kid, another key
    _refused(await client.post(EVALUATION, json=REQUEST, headers=_bearer(forged)))


@pytest.mark.asyncio
async def test_a_jwt_without_the_scope_is_a_403_insufficient_scope(
        client: httpx.AsyncClient, pep_tokens: PepTokens) -> None:
    answer = await client.post(EVALUATION, json=REQUEST,
                               headers=_bearer(pep_tokens.token(scope="openid")))
    challenge = _refused(answer, 403)
    assert 'error="insufficient_scope"' in challenge and 'scope="authzen:evaluate"' in challenge


@pytest.mark.asyncio
async def test_a_jwt_authenticated_pep_may_send_claims(client: httpx.AsyncClient,
                                                       pep_tokens: PepTokens) -> None:
    answer = await client.post(*PROTECTED[5][:1], json=PROTECTED[5][1],
                               headers=_bearer(pep_tokens.token()))
    assert answer.json() == {"outcome": "pass"}


# -- admin -------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_admin_and_pep_credentials_never_stand_in_for_each_other(
        client: httpx.AsyncClient) -> None:
    for key in (GW_A, GW_B):
        refused = await client.post("/admin/reload", headers=_bearer(key))
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith('Bearer realm="authzen-admin"')
    assert (await client.post("/admin/reload", headers=_bearer(ADMIN))).status_code == 200
    assert (await client.post("/admin/reload", headers={"X-API-Key": ADMIN})).status_code == 200
    _refused(await client.post(EVALUATION, json=REQUEST, headers=_bearer(ADMIN)))


@pytest.mark.asyncio
async def test_the_plain_admin_token_still_works_beside_the_hashed_keys() -> None:
    async with _client(admin_token="legacy-admin", admin_api_keys=ADMIN_KEYS) as c:
        for key in ("legacy-admin", ADMIN):
            assert (await c.post("/admin/reload", headers=_bearer(key))).status_code == 200


@pytest.mark.asyncio
async def test_without_an_admin_credential_the_admin_endpoints_do_not_exist() -> None:
    async with _client(api_keys=KEYS) as c:
        for path in ("/admin/reload", "/admin/entities"):
            answer = await c.request("POST" if path.endswith("reload") else "GET", path,
                                     headers=_bearer(GW_A))
            assert answer.status_code == 404 and answer.json()["error"] == "admin_disabled"
            assert "PDP_ADMIN_API_KEYS" in answer.json()["message"]


# -- open endpoints, unauthenticated mode ------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["/.well-known/authzen-configuration", "/health", "/status",
                                  "/metrics", "/openapi.json", "/docs"])
async def test_metadata_and_operations_need_no_credential(client: httpx.AsyncClient,
                                                          path: str) -> None:
    assert (await client.get(path)).status_code == 200


@pytest.mark.asyncio
async def test_every_route_is_either_protected_or_documented_as_open() -> None:
    app = create_app(make_service(POLICIES / "default", entity_store="memory",
                                  bench_noop="on"))
    paths = {getattr(route, "path", None) for route in app.routes} | set(app.openapi()["paths"])
    paths.discard(None)
    assert "/admin/entities" in paths and "/bench/noop" in paths
    for path in paths:
        assert classify(path) in ("pep", "admin") or path in PUBLIC_PATHS, path


@pytest.mark.asyncio
async def test_without_pep_credentials_on_loopback_anyone_may_ask() -> None:
    async with _client() as c:
        assert (await c.post(EVALUATION, json=REQUEST)).json() == {"decision": True}
        assert (await c.post(*PROTECTED[5][:1], json=PROTECTED[5][1])).status_code == 200


@pytest.mark.asyncio
async def test_the_principal_is_in_the_scope_state_for_the_rate_limiter() -> None:
    seen: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["state"].get("principal"))
        await json_response({})(scope, receive, send)

    pep, admin = authenticators(Settings(api_keys=KEYS))
    guarded = AuthenticationMiddleware(app, pep=pep, admin=admin)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=guarded),
                                 base_url="http://pdp.test") as c:
        await c.post(EVALUATION, headers={"X-API-Key": GW_B})
        await c.post(EVALUATION)  # refused: never reaches the app
    assert seen == [Principal("gateway-b", "api_key")]
    assert isinstance(seen[0].name, str)


# -- the command line --------------------------------------------------------------------------


def test_serve_refuses_a_public_address_without_credentials(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("PDP_API_KEYS", "PDP_API_KEYS_FILE", "PDP_PEP_JWKS_URL", "PDP_PEP_JWKS_FILE",
                 "PDP_ALLOW_UNAUTHENTICATED"):
        monkeypatch.delenv(name, raising=False)
    assert main(["serve", "--host", "0.0.0.0", "--port", "1"]) == 2
    message = capsys.readouterr().err
    for name in ("cannot start", "0.0.0.0", "PDP_API_KEYS", "PDP_PEP_JWKS_URL",
                 "PDP_ALLOW_UNAUTHENTICATED"):
        assert name in message


def test_serve_refuses_malformed_keys(monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PDP_API_KEYS", f"gw={GW_A}")  # a plain key instead of its hash
    assert main(["serve", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "sha256" in err and GW_A not in err


def test_serve_on_a_public_address_when_unauthenticated_mode_is_allowed() -> None:
    proc, base = start_server(POLICIES / "default", "--host", "0.0.0.0",
                              env={"PDP_ALLOW_UNAUTHENTICATED": "true",
                                   "PDP_ENTITY_STORE": "memory"})
    try:
        assert httpx.get(base + "/health", timeout=5).status_code == 200
        assert httpx.post(base + EVALUATION, json=REQUEST, timeout=5).status_code == 200
    finally:
        stop_server(proc)


def test_serve_on_a_public_address_with_a_key_from_pdp_keys_new(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "new", "--name", "gateway-c"]) == 0
    lines = dict(line.split(":", 1) for line in capsys.readouterr().out.splitlines())
    key, entry = lines["key"].strip(), lines["entry"].strip()
    assert entry.startswith("gateway-c=sha256:") and key not in entry
    proc, base = start_server(POLICIES / "default", "--host", "0.0.0.0",
                              env={"PDP_API_KEYS": entry, "PDP_ENTITY_STORE": "memory"})
    try:
        assert httpx.post(base + EVALUATION, json=REQUEST, timeout=5).status_code == 401
        ok = httpx.post(base + EVALUATION, json=REQUEST, headers=_bearer(key), timeout=5)
        assert ok.json() == {"decision": True}
    finally:
        stop_server(proc)


def test_keys_hash_reads_the_key_from_stdin(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(GW_A + "\n"))
    assert main(["keys", "hash", "--name", "gateway-a"]) == 0
    assert capsys.readouterr().out.strip() == KEYS[0]
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert main(["keys", "hash"]) == 2


def test_an_app_started_by_its_factory_refuses_a_public_address_too() -> None:
    env = {"PDP_HOST": "0.0.0.0", "PDP_DECISION_LOG": "off", "PDP_ENTITY_STORE": "memory",
           "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", "from pdp.http.app import app_from_environment as f; f()"],
        env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "PDP_ALLOW_UNAUTHENTICATED" in done.stderr


@pytest.mark.asyncio
async def test_openapi_declares_the_pep_credentials(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    assert set(schema["components"]["securitySchemes"]) == {"pepBearer", "pepApiKey",
                                                                "adminBearer"}
    operation = schema["paths"][EVALUATION]["post"]
    assert operation["security"] == [{"pepBearer": []}, {"pepApiKey": []}]
    assert {"401", "403"} <= set(operation["responses"])
