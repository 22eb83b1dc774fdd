"""Several authorization servers at once, the accepted token types (RFC 9068 ``at+jwt``; an
ID-JAG is never an access token) and the per-call audience, against real local servers."""

from __future__ import annotations

import time
from typing import Any

import pytest
from joserfc.jwk import ECKey, RSAKey

from pdp.errors import TokenError
from pdp.tokens import (
    ACCESS_TOKEN_TYPES,
    IntrospectionSettings,
    IssuerSettings,
    TokenSettings,
    TokenValidator,
)
from tests.tokens.helpers import AUDIENCE, ISSUER, AuthServer, claims, jwks_of, running, sign

OTHER = "https://other-as.example.com"
THIRD = "https://third-as.example.com"


def settings_for(server: AuthServer, **overrides: Any) -> TokenSettings:
    values: dict[str, Any] = {"issuers": (ISSUER,), "audience": AUDIENCE,
                              "jwks_url": server.jwks_url, "token_types": ACCESS_TOKEN_TYPES}
    values.update(overrides)
    return TokenSettings(**values)


async def refused(validator: TokenValidator, token: str) -> str:
    with pytest.raises(TokenError) as raised:
        await validator.validate(token)
    return raised.value.message


@pytest.mark.parametrize("typ", ["at+jwt", "application/at+jwt", "AT+JWT", "JWT", "jwt"])
@pytest.mark.asyncio
async def test_access_token_types_are_accepted_by_default(auth_server: AuthServer,
                                                          rsa_key: RSAKey, typ: str) -> None:
    auth_server.jwks = jwks_of(rsa_key)
    async with TokenValidator(settings_for(auth_server)) as validator:
        assert (await validator.validate(sign(rsa_key, "RS256", claims(), typ=typ)))["sub"]


@pytest.mark.parametrize("typ", ["oauth-id-jag+jwt", "application/oauth-id-jag+jwt",
                                 "secevent+jwt", "dpop+jwt"])
@pytest.mark.asyncio
async def test_an_id_jag_or_another_jwt_type_is_not_an_access_token(
        auth_server: AuthServer, rsa_key: RSAKey, typ: str) -> None:
    auth_server.jwks = jwks_of(rsa_key)
    async with TokenValidator(settings_for(auth_server)) as validator:
        # audience, issuer and signature all match: only the type is wrong
        assert "type" in await refused(validator, sign(rsa_key, "RS256", claims(), typ=typ))


def test_an_id_jag_cannot_be_configured_as_an_access_token_type() -> None:
    with pytest.raises(ValueError, match="grant"):
        TokenSettings(issuers=(ISSUER,), audience=AUDIENCE, jwks_url="https://as/jwks",
                      token_types=("at+jwt", "oauth-id-jag+jwt"))


@pytest.mark.asyncio
async def test_each_issuer_is_verified_with_its_own_keys(auth_server: AuthServer,
                                                         rsa_key: RSAKey,
                                                         ec_key: ECKey) -> None:
    auth_server.jwks = jwks_of(rsa_key)
    with running(AuthServer("")) as other:
        other.jwks = jwks_of(ec_key)
        settings = settings_for(auth_server, more_issuers=(
            IssuerSettings(issuer=OTHER, jwks_url=other.jwks_url),))
        async with TokenValidator(settings) as validator:
            assert (await validator.validate(sign(rsa_key, "RS256", claims())))["iss"] == ISSUER
            theirs = sign(ec_key, "ES256", claims(iss=OTHER))
            assert (await validator.validate(theirs))["iss"] == OTHER
            # a token naming one issuer but signed with the other's key is refused
            await refused(validator, sign(ec_key, "ES256", claims(iss=ISSUER)))
            await refused(validator, sign(rsa_key, "RS256", claims(iss=OTHER)))
        assert other.count("/jwks.json") >= 1


@pytest.mark.asyncio
async def test_an_unconfigured_issuer_fetches_no_keys(auth_server: AuthServer,
                                                      ec_key: ECKey) -> None:
    async with TokenValidator(settings_for(auth_server)) as validator:
        message = await refused(validator, sign(ec_key, "ES256", claims(iss=THIRD)))
    assert "issuer" in message
    assert auth_server.count("/jwks.json") == 0


@pytest.mark.asyncio
async def test_an_issuer_may_be_validated_by_introspection(auth_server: AuthServer,
                                                           rsa_key: RSAKey,
                                                           ec_key: ECKey) -> None:
    auth_server.jwks = jwks_of(rsa_key)
    with running(AuthServer("")) as other:
        other.introspection = {"active": True, "iss": OTHER, "sub": "bob",
                               "exp": int(time.time()) + 60}
        introspection = IntrospectionSettings(endpoint=other.introspection_url, client_id="pdp",
                                              client_secret="s",
                                              require_audience=False)
        settings = settings_for(auth_server, more_issuers=(
            IssuerSettings(issuer=OTHER, introspection=introspection),))
        async with TokenValidator(settings) as validator:
            # an opaque token goes to the (only) introspection endpoint
            assert (await validator.validate("opaque-value"))["sub"] == "bob"
            # a JWT of that issuer too (its keys are not published)
            assert (await validator.validate(sign(ec_key, "ES256", claims(iss=OTHER))))
        assert other.count("/introspect") == 2
        assert auth_server.count("/introspect") == 0


@pytest.mark.asyncio
async def test_the_audience_may_be_given_per_call(auth_server: AuthServer,
                                                  rsa_key: RSAKey) -> None:
    auth_server.jwks = jwks_of(rsa_key)
    other = "https://second.example.com/mcp"
    async with TokenValidator(settings_for(auth_server, audience=None)) as validator:
        token = sign(rsa_key, "RS256", claims(aud=other))
        assert (await validator.validate(token, audience=other))["aud"] == other
        await refused(validator, sign(rsa_key, "RS256", claims()))  # no audience to check
        with pytest.raises(TokenError):
            await validator.validate(token, audience=AUDIENCE)
    assert auth_server.count("/jwks.json") == 1


def test_an_issuer_is_configured_once() -> None:
    with pytest.raises(ValueError, match="twice"):
        TokenSettings(issuers=(ISSUER,), audience=AUDIENCE, jwks_url="https://as/jwks",
                      more_issuers=(IssuerSettings(issuer=ISSUER, jwks_url="https://as/jwks"),))
