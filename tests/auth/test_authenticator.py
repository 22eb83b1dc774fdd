"""The authentication core (pdp.auth; AuthZEN 1.0 section 10; RFC 6750): credentials, API keys
and JWTs, the challenges, the admin set, and the loopback rule of unauthenticated mode."""

from __future__ import annotations

import time
from typing import Any

import pytest

from pdp.auth import (
    Authenticator,
    Credentials,
    Principal,
    admin_authenticator,
    authenticators,
    check_exposure,
    is_loopback,
    pep_authenticator,
)
from pdp.auth.bearer import RESULT_TTL, JwtAuthenticator, scopes_of
from pdp.auth.keys import entry_for, new_key
from pdp.errors import AuthenticationFailed, ConfigurationError, InsufficientScope
from pdp.settings import Settings
from tests.auth.conftest import PDP_AUDIENCE, PepTokens

KEY, ADMIN = new_key(), new_key()


def _settings(**values: Any) -> Settings:
    return Settings(**values)


def _pep(pep_tokens: PepTokens | None = None, **values: Any) -> Authenticator:
    if pep_tokens is not None:
        values.update(pep_tokens.settings())
    return pep_authenticator(_settings(api_keys=[entry_for("gw", KEY)], **values))


@pytest.mark.parametrize(("credentials", "expected"), [
    (Credentials(authorization="Bearer abc"), ("abc", True)),
    (Credentials(authorization="bearer  abc "), ("abc", True)),
    (Credentials(api_key="abc"), ("abc", False)),
    (Credentials(authorization="Bearer abc", api_key="xyz"), ("abc", True)),
    (Credentials(authorization="Basic abc"), None),
    (Credentials(authorization="Bearer "), None),
    (Credentials(), None),
])
def test_the_presented_credential(credentials: Credentials,
                                  expected: tuple[str, bool] | None) -> None:
    assert credentials.presented() == expected


@pytest.mark.asyncio
async def test_an_api_key_authenticates_as_its_name_by_either_header() -> None:
    pep = _pep()
    for credentials in (Credentials(authorization=f"Bearer {KEY}"), Credentials(api_key=KEY)):
        assert await pep.authenticate(credentials) == Principal("gw", "api_key")


@pytest.mark.asyncio
async def test_no_credential_and_a_wrong_one_get_different_challenges() -> None:
    pep = _pep()
    with pytest.raises(AuthenticationFailed) as missing:
        await pep.authenticate(Credentials())
    assert missing.value.challenge == 'Bearer realm="authzen"'
    with pytest.raises(AuthenticationFailed) as wrong:
        await pep.authenticate(Credentials(authorization=f"Bearer {KEY}x"))
    assert wrong.value.challenge == 'Bearer realm="authzen", error="invalid_token"'
    assert KEY not in wrong.value.message and KEY not in (wrong.value.reason or "")


@pytest.mark.asyncio
async def test_a_valid_jwt_authenticates_as_its_client(pep_tokens: PepTokens) -> None:
    pep = _pep(pep_tokens)
    principal = await pep.authenticate(Credentials(authorization=f"Bearer {pep_tokens.token()}"))
    assert principal == Principal("mcp-gateway", "jwt")


@pytest.mark.asyncio
@pytest.mark.parametrize("overrides", [
    {"exp": int(time.time()) - 120},
    {"aud": "https://other.example.com"},
    {"iss": "https://evil.example.com"},
])
async def test_an_expired_or_foreign_jwt_is_refused(pep_tokens: PepTokens,
                                                    overrides: dict[str, Any]) -> None:
    pep = _pep(pep_tokens)
    with pytest.raises(AuthenticationFailed) as refused:
        await pep.authenticate(Credentials(authorization=f"Bearer {pep_tokens.token(**overrides)}"))
    assert 'error="invalid_token"' in (refused.value.challenge or "")
    assert "JWT" in (refused.value.reason or "")


@pytest.mark.asyncio
async def test_a_jwt_without_the_scope_is_insufficient_scope(pep_tokens: PepTokens) -> None:
    pep = _pep(pep_tokens)
    with pytest.raises(InsufficientScope) as refused:
        await pep.authenticate(Credentials(
            authorization=f"Bearer {pep_tokens.token(scope='openid')}"))
    assert refused.value.status == 403
    assert refused.value.challenge == ('Bearer realm="authzen", error="insufficient_scope", '
                                       'scope="authzen:evaluate"')
    scp = pep_tokens.token(scope=None, scp=["authzen:evaluate"])
    assert (await pep.authenticate(Credentials(authorization=f"Bearer {scp}"))).kind == "jwt"
    relaxed = _pep(pep_tokens, pep_jwt_scope="")
    assert (await relaxed.authenticate(Credentials(
        authorization=f"Bearer {pep_tokens.token(scope='openid')}"))).kind == "jwt"


def test_scopes_come_from_scope_and_scp() -> None:
    assert scopes_of({"scope": "a b", "scp": ["c", 1]}) == {"a", "b", "c"}
    assert scopes_of({"scp": "d e"}) == {"d", "e"}
    assert scopes_of({}) == frozenset()


@pytest.mark.asyncio
async def test_an_accepted_jwt_is_remembered_until_its_expiry_at_most_a_minute(
        pep_tokens: PepTokens) -> None:
    now = [time.time()]
    jwt = pep_authenticator(_settings(**pep_tokens.settings())).jwt
    assert jwt is not None
    remembered = JwtAuthenticator(jwt.settings, scope="authzen:evaluate", clock=lambda: now[0])
    token = pep_tokens.token(lifetime=3600)
    assert await remembered.authenticate(token) == "mcp-gateway"
    assert len(remembered._accepted) == 1
    now[0] += RESULT_TTL / 2
    assert await remembered.authenticate(token) == "mcp-gateway"  # from memory
    short = pep_tokens.token(lifetime=10)
    assert await remembered.authenticate(short) == "mcp-gateway"
    now[0] += 3600  # past both expiries: validated again, and refused
    with pytest.raises(Exception, match="exp"):
        await remembered.authenticate(short)


@pytest.mark.asyncio
async def test_admin_and_pep_credentials_never_stand_in_for_each_other() -> None:
    settings = _settings(api_keys=[entry_for("gw", KEY)],
                         admin_api_keys=[entry_for("ops", ADMIN)], admin_token="legacy")
    pep, admin = authenticators(settings)
    assert await admin.authenticate(Credentials(api_key=ADMIN)) == Principal("ops", "admin")
    assert (await admin.authenticate(Credentials(authorization="Bearer legacy"))).is_pep is False
    for authenticator, foreign in ((pep, ADMIN), (pep, "legacy"), (admin, KEY)):
        with pytest.raises(AuthenticationFailed):
            await authenticator.authenticate(Credentials(authorization=f"Bearer {foreign}"))
    with pytest.raises(ConfigurationError, match="both a PEP key and an admin key"):
        authenticators(_settings(api_keys=[entry_for("gw", KEY)],
                                 admin_api_keys=[entry_for("ops", KEY)]))
    assert not admin_authenticator(_settings()).enabled


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("0.0.0.0", False), ("::", False), ("10.0.0.5", False),
    ("pdp.example.com", False), ("", False),
])
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_without_pep_credentials_only_loopback_serves_unless_explicitly_allowed(
        pep_tokens: PepTokens) -> None:
    check_exposure(_settings(host="127.0.0.1"))
    with pytest.raises(ConfigurationError) as refused:
        check_exposure(_settings(host="0.0.0.0"))
    for name in ("PDP_API_KEYS", "PDP_PEP_JWKS_", "PDP_TLS_CLIENT_CA",
                 "PDP_ALLOW_UNAUTHENTICATED"):
        assert name in refused.value.message
    check_exposure(_settings(host="0.0.0.0", allow_unauthenticated=True))
    check_exposure(_settings(host="0.0.0.0", api_keys=[entry_for("gw", KEY)]))
    check_exposure(_settings(host="0.0.0.0", **pep_tokens.settings()))
    check_exposure(_settings(host="0.0.0.0", tls_client_ca="/etc/pdp/pep-ca.pem"))  # mTLS


@pytest.mark.parametrize("values", [
    {"api_keys": ["gw=not-a-hash"]},
    {"admin_api_keys": [f"ops={KEY}"]},
    {"pep_jwks_file": "/nonexistent/jwks.json", "pep_jwt_issuers": ["https://as.example.com"],
     "pep_jwt_audience": PDP_AUDIENCE},
    {"pep_jwks_url": "https://as.example.com/jwks", "pep_jwt_audience": PDP_AUDIENCE},
    {"pep_jwks_url": "https://as.example.com/jwks",
     "pep_jwt_issuers": ["https://as.example.com"]},
])
def test_malformed_credential_settings_refuse_to_start(values: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        check_exposure(_settings(**values))
