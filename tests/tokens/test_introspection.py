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
    assert auth_server.count("/introspect") == 1


def _with_cache(server: AuthServer, seconds: float, **overrides: Any) -> TokenSettings:
    base = settings_for(server, **overrides)
    return TokenSettings(issuers=base.issuers, audience=base.audience,
                         introspection=base.introspection, cache_seconds=seconds)


@pytest.mark.asyncio
async def test_an_active_answer_is_remembered_for_the_cache_lifetime_only(
        auth_server: AuthServer) -> None:
    now = [1_000_000.0]
    auth_server.introspection = active(exp=None)
    async with TokenValidator(_with_cache(auth_server, 10), clock=lambda: now[0]) as validator:
        await validator.validate(OPAQUE)
        assert validator.validate_cached(OPAQUE)["sub"] == "alice@example.com"
        auth_server.introspection = {"active": False}  # revoked
        now[0] += 9.5
        assert (await validator.validate(OPAQUE))["sub"] == "alice@example.com"
        assert auth_server.count("/introspect") == 1
        now[0] += 1.0  # past the cache lifetime: the revocation is seen
        with pytest.raises(TokenError):
            await validator.validate(OPAQUE)
    assert auth_server.count("/introspect") == 2


@pytest.mark.asyncio
async def test_a_zero_cache_lifetime_introspects_every_time(auth_server: AuthServer) -> None:
    auth_server.introspection = active()
    async with TokenValidator(_with_cache(auth_server, 0)) as validator:
        await validator.validate(OPAQUE)
        await validator.validate(OPAQUE)
        with pytest.raises(CacheMiss):
            validator.validate_cached(OPAQUE)
    assert auth_server.count("/introspect") == 2


@pytest.mark.asyncio
async def test_an_answer_is_never_remembered_past_the_tokens_expiry(
        auth_server: AuthServer) -> None:
    now = [1_000_000.0]
    auth_server.introspection = active(exp=1_000_003)
    async with TokenValidator(_with_cache(auth_server, 60), clock=lambda: now[0]) as validator:
        await validator.validate(OPAQUE)
        now[0] += 4
        with pytest.raises(CacheMiss):
            validator.validate_cached(OPAQUE)


@pytest.mark.asyncio
async def test_a_remembered_answer_is_checked_again_for_each_audience(
        auth_server: AuthServer) -> None:
    auth_server.introspection = active()
    async with TokenValidator(settings_for(auth_server)) as validator:
        await validator.validate(OPAQUE)
        with pytest.raises(TokenError):
            await validator.validate(OPAQUE, audience="https://other.example.com/mcp")


@pytest.mark.asyncio
async def test_the_client_may_authenticate_in_the_form_body(auth_server: AuthServer) -> None:
    auth_server.introspection = active()
    settings = settings_for(auth_server, client_auth="client_secret_post")
    async with TokenValidator(settings) as validator:
        await validator.validate(OPAQUE)
    [request] = auth_server.requests
    assert "Authorization" not in request.headers
    assert parse_qs(request.body.decode()) == {
        "token": [OPAQUE], "token_type_hint": ["access_token"], "client_id": ["pdp"],
        "client_secret": ["s3cret"]}


def test_an_unknown_client_authentication_method_is_refused() -> None:
    with pytest.raises(ValueError):
        IntrospectionSettings(endpoint="https://as.example.com/introspect", client_id="pdp",
                              client_secret="s", client_auth="private_key_jwt")
