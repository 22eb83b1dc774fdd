"""RFC 7662 introspection of opaque tokens against a real local HTTP server."""

from __future__ import annotations

import base64
import time
from typing import Any
from urllib.parse import parse_qs

import pytest

from pdp.errors import TokenError, UpstreamError
from pdp.tokens import CacheMiss, IntrospectionSettings, TokenSettings, TokenValidator
from tests.tokens.helpers import AUDIENCE, ISSUER, AuthServer

OPAQUE = "2YotnFZFEjr1zCsicMWpAA"


def settings_for(server: AuthServer, **overrides: Any) -> TokenSettings:
    introspection = IntrospectionSettings(endpoint=server.introspection_url,
                                          client_id="pdp", client_secret="s3cret",
                                          **overrides)
    return TokenSettings(issuers=(ISSUER,), audience=AUDIENCE, introspection=introspection)


def active(**overrides: Any) -> dict[str, Any]:
    answer: dict[str, Any] = {"active": True, "iss": ISSUER, "aud": AUDIENCE,
                              "sub": "alice@example.com", "client_id": "agent-app-1",
                              "exp": int(time.time()) + 300, "scope": "crm:read"}
    answer.update(overrides)
    return {k: v for k, v in answer.items() if v is not None}


@pytest.mark.asyncio
async def test_an_active_opaque_token_yields_its_claims(auth_server: AuthServer) -> None:
    answer = active()
    auth_server.introspection = answer
    async with TokenValidator(settings_for(auth_server)) as validator:
        claims = await validator.validate(OPAQUE)
    assert claims == {k: v for k, v in answer.items() if k != "active"}
    [request] = auth_server.requests
    assert request.method == "POST" and request.path == "/introspect"
    assert parse_qs(request.body.decode()) == {"token": [OPAQUE],
                                               "token_type_hint": ["access_token"]}
    expected = "Basic " + base64.b64encode(b"pdp:s3cret").decode()
    assert request.headers["Authorization"] == expected


@pytest.mark.parametrize("answer", [
    {"active": False},
    {"active": "true", "aud": AUDIENCE},
    {},
    active(aud="https://other.example.com"),
    active(aud=None),
    active(iss="https://evil.example.com"),
    active(exp=int(time.time()) - 600),
    active(nbf=int(time.time()) + 600),
])
@pytest.mark.asyncio
async def test_an_inactive_or_foreign_token_is_refused(auth_server: AuthServer,
                                                       answer: dict[str, Any]) -> None:
    auth_server.introspection = answer
    async with TokenValidator(settings_for(auth_server)) as validator:
        with pytest.raises(TokenError):
            await validator.validate(OPAQUE)


@pytest.mark.asyncio
async def test_an_absent_audience_can_be_waived(auth_server: AuthServer) -> None:
    auth_server.introspection = active(aud=None)
    async with TokenValidator(settings_for(auth_server, require_audience=False)) as validator:
        assert (await validator.validate(OPAQUE))["sub"] == "alice@example.com"


@pytest.mark.parametrize("status", [401, 500])
@pytest.mark.asyncio
async def test_a_failing_introspection_endpoint_is_an_upstream_error(auth_server: AuthServer,
                                                                     status: int) -> None:
    auth_server.introspection_status = status
    async with TokenValidator(settings_for(auth_server)) as validator:
        with pytest.raises(UpstreamError):
            await validator.validate(OPAQUE)


@pytest.mark.asyncio
async def test_the_sync_path_cannot_introspect(auth_server: AuthServer) -> None:
    async with TokenValidator(settings_for(auth_server)) as validator:
        with pytest.raises(CacheMiss):
            validator.validate_cached(OPAQUE)
    assert auth_server.requests == []


def test_the_client_secret_is_not_in_the_settings_repr() -> None:
    settings = IntrospectionSettings(endpoint="https://as.example.com/introspect",
                                     client_id="pdp", client_secret="s3cret")
    assert "s3cret" not in repr(settings)


@pytest.mark.asyncio
async def test_without_a_jwks_a_jwt_is_introspected_too(auth_server: AuthServer) -> None:
    auth_server.introspection = active()
    jwt_like = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
    async with TokenValidator(settings_for(auth_server)) as validator:
        assert (await validator.validate(jwt_like))["sub"] == "alice@example.com"
        with pytest.raises(CacheMiss):
            validator.validate_cached(jwt_like)
    assert auth_server.count("/introspect") == 1
