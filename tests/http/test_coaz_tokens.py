"""Access tokens at ``/coaz/v1/*`` in real deployments: validators come from the configured
issuers only (no ``server`` value creates one or makes the PDP fetch keys), opaque tokens are
introspected at a real local endpoint (with or without ``aud``), and a revoked token stops
working within the token-cache lifetime."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from joserfc.jwk import ECKey

from pdp.http import create_app
from tests.conftest import POLICIES, make_service
from tests.gateway.support import RESOURCE, TOOLS, message
from tests.tokens.helpers import AuthServer, jwks_of, running, sign

MAP = "/coaz/v1/map"
ISSUER = "https://as.example.com"


@pytest.fixture
def auth_server() -> Iterator[AuthServer]:
    with running(AuthServer("")) as server:
        yield server


@pytest.fixture(scope="module")
def key() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": "k1", "use": "sig", "alg": "ES256"})


def _pdp(**settings: Any) -> httpx.AsyncClient:
    values: dict[str, Any] = {"entity_store": "memory", "authorization_servers": [ISSUER]}
    values.update(settings)
    app = create_app(make_service(POLICIES / "mcp", **values))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pdp.test")


def _claims(audience: str = RESOURCE, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": ISSUER, "aud": audience, "sub": "alice@example.com",
            "client_id": "agent-app-1", "iat": now, "exp": now + 300, **extra}


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _jwt_shaped(i: int) -> str:
    """Tokens that look like JWTs: garbage, an unconfigured issuer, alg none, unknown kid of
    an unconfigured issuer."""
    kinds = [
        f"eyJ{i}.eyJ{i}.sig",
        _b64({"alg": "ES256", "kid": f"kid-{i}", "typ": "JWT"}) + "."
        + _b64(_claims(iss=f"https://evil-{i}.example.com")) + ".c2ln",
        _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(_claims()) + ".",
        _b64({"alg": "RS256", "kid": f"k-{i}", "typ": "at+jwt"}) + "."
        + _b64({"iss": f"https://as-{i}.example.com"}) + ".c2ln",
    ]
    return kinds[i % len(kinds)]


@pytest.mark.asyncio
async def test_server_values_in_bodies_create_no_validators_and_fetch_no_keys(
        auth_server: AuthServer, key: ECKey) -> None:
    auth_server.jwks = jwks_of(key)
    async with _pdp(token_jwks_url=auth_server.jwks_url) as pdp:
        # a valid token loads the issuer's keys once
        good = await pdp.post(MAP, json={"message": message("tools/list"), "tools": TOOLS,
                                         "server": RESOURCE, "token": sign(key, "ES256",
                                                                            _claims())})
        assert good.json()["outcome"] == "evaluate"
        assert auth_server.count("/jwks.json") == 1
        for i in range(300):
            server = f"https://server-{i}.example.com/mcp"
            answer = await pdp.post(MAP, json={"message": message("tools/list"),
                                               "server": server, "token": _jwt_shaped(i)})
            assert answer.status_code == 200
            assert answer.json()["outcome"] == "unauthenticated"
        # a valid token for another server's audience is accepted for that audience only
        other = "https://elsewhere.example.com/mcp"
        token = sign(key, "ES256", _claims(other))
        ok = await pdp.post(MAP, json={"message": message("tools/list"), "server": other,
                                       "token": token})
        assert ok.json()["outcome"] == "evaluate"
        refused = await pdp.post(MAP, json={"message": message("tools/list"),
                                            "server": RESOURCE, "token": token})
        assert refused.json()["outcome"] == "unauthenticated"
    assert auth_server.count("/jwks.json") == 1


def _introspecting(server: AuthServer, **extra: Any) -> dict[str, Any]:
    return {"token_introspection_url": server.introspection_url,
            "token_introspection_client_id": "pdp",
            "token_introspection_client_secret": "s3cret", "resource_id": RESOURCE, **extra}


@pytest.mark.asyncio
async def test_an_opaque_token_is_introspected(auth_server: AuthServer) -> None:
    auth_server.introspection = {"active": True, **_claims()}
    async with _pdp(**_introspecting(auth_server)) as pdp:
        answer = await pdp.post(MAP, json={"message": message("tools/list"),
                                           "token": "opaque-1"})
    assert answer.json()["outcome"] == "evaluate"
    assert answer.json()["evaluation"]["subject"] == {"type": "identity",
                                                      "id": "alice@example.com"}
    [asked] = auth_server.requests
    assert asked.headers["Authorization"] == "Basic " + base64.b64encode(b"pdp:s3cret").decode()


@pytest.mark.parametrize(("require", "outcome"), [(True, "unauthenticated"),
                                                  (False, "evaluate")])
@pytest.mark.asyncio
async def test_an_introspection_answer_without_aud_is_accepted_only_when_configured(
        auth_server: AuthServer, require: bool, outcome: str) -> None:
    answer = {"active": True, **_claims()}
    del answer["aud"]
    auth_server.introspection = answer
    async with _pdp(**_introspecting(auth_server,
                                     token_introspection_require_audience=require)) as pdp:
        body = {"message": message("initialize", {"protocolVersion": "2025-11-25"}),
                "token": "opaque-2"}
        got = await pdp.post(MAP, json=body)
    assert got.json()["outcome"] == outcome


@pytest.mark.asyncio
async def test_a_revoked_token_is_refused_once_the_cache_lifetime_has_passed(
        auth_server: AuthServer) -> None:
    auth_server.introspection = {"active": True, **_claims()}
    body = {"message": message("tools/list"), "token": "opaque-3"}
    async with _pdp(**_introspecting(auth_server, token_cache_seconds=0.3)) as pdp:
        assert (await pdp.post(MAP, json=body)).json()["outcome"] == "evaluate"
        revoked_at = time.monotonic()
        auth_server.introspection = {"active": False}
        deadline = revoked_at + 5
        outcome = "evaluate"
        while outcome == "evaluate" and time.monotonic() < deadline:
            outcome = (await pdp.post(MAP, json=body)).json()["outcome"]
        seen_after = time.monotonic() - revoked_at
    assert outcome == "unauthenticated"
    assert seen_after < 2  # within the cache lifetime, plus slack for a loaded machine
