"""Validating JWT access tokens against a JWKS served by a real local HTTP server."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import ECKey, OKPKey, RSAKey

from pdp.errors import TokenError, UpstreamError
from pdp.tokens import CacheMiss, TokenSettings, TokenValidator
from tests.tokens.helpers import (
    AUDIENCE,
    ISSUER,
    AuthServer,
    b64,
    claims,
    jwks_of,
    sign,
    unsigned,
)


class Ticker:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def settings_for(server: AuthServer, **overrides: Any) -> TokenSettings:
    values: dict[str, Any] = {"issuers": (ISSUER,), "audience": AUDIENCE,
                              "jwks_url": server.jwks_url}
    values.update(overrides)
    return TokenSettings(**values)


async def refused(validator: TokenValidator, token: str) -> str:
    with pytest.raises(TokenError) as raised:
        await validator.validate(token)
    return raised.value.message


# -- accepted -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_valid_rsa_token_is_accepted(auth_server: AuthServer, rsa_key: RSAKey) -> None:
    auth_server.jwks = jwks_of(rsa_key)
    payload = claims()
    async with TokenValidator(settings_for(auth_server)) as validator:
        assert await validator.validate(sign(rsa_key, "RS256", payload)) == payload


@pytest.mark.asyncio
async def test_a_valid_ps256_token_is_accepted(auth_server: AuthServer, rsa_key: RSAKey) -> None:
    auth_server.jwks = jwks_of(rsa_key)
    async with TokenValidator(settings_for(auth_server)) as validator:
        assert (await validator.validate(sign(rsa_key, "PS256", claims())))["sub"]


@pytest.mark.asyncio
async def test_a_valid_ec_token_is_accepted(auth_server: AuthServer, rsa_key: RSAKey,
                                            ec_key: ECKey) -> None:
    auth_server.jwks = jwks_of(rsa_key, ec_key)
    async with TokenValidator(settings_for(auth_server)) as validator:
        result = await validator.validate(sign(ec_key, "ES256", claims(sub="bob")))
    assert result["sub"] == "bob"


# joserfc flags the "EdDSA" name as deprecated by RFC 9864 (in favour of "Ed25519"); the spec
# still lists it among the default algorithms.
@pytest.mark.filterwarnings("ignore:EdDSA is deprecated via RFC 9864")
@pytest.mark.asyncio
async def test_a_valid_eddsa_token_is_accepted(auth_server: AuthServer, ed_key: OKPKey) -> None:
    auth_server.jwks = jwks_of(ed_key)
    async with TokenValidator(settings_for(auth_server)) as validator:
        assert (await validator.validate(sign(ed_key, "EdDSA", claims())))["sub"]


@pytest.mark.asyncio
async def test_a_token_with_an_audience_list_that_names_this_server_is_accepted(
        auth_server: AuthServer, rsa_key: RSAKey) -> None:
    auth_server.jwks = jwks_of(rsa_key)
    token = sign(rsa_key, "RS256", claims(aud=["https://other.example.com", AUDIENCE]))
    async with TokenValidator(settings_for(auth_server)) as validator:
        assert (await validator.validate(token))["aud"][1] == AUDIENCE


@pytest.mark.asyncio
async def test_any_configured_issuer_is_accepted(auth_server: AuthServer,
                                                 rsa_key: RSAKey) -> None:
    auth_server.jwks = jwks_of(rsa_key)
    settings = settings_for(auth_server, issuers=(ISSUER, "https://as2.example.com"))
    async with TokenValidator(settings) as validator:
        await validator.validate(sign(rsa_key, "RS256", claims(iss="https://as2.example.com")))


@pytest.mark.asyncio
async def test_an_expiry_within_the_leeway_is_accepted(auth_server: AuthServer,
                                                       rsa_key: RSAKey) -> None:
    auth_server.jwks = jwks_of(rsa_key)
    token = sign(rsa_key, "RS256", claims(exp=int(time.time()) - 10))
    async with TokenValidator(settings_for(auth_server, leeway=30)) as validator:
        await validator.validate(token)


@pytest.mark.asyncio
async def test_a_token_without_kid_uses_the_only_fitting_key(auth_server: AuthServer,
                                                             rsa_key: RSAKey,
                                                             ec_key: ECKey) -> None:
    auth_server.jwks = jwks_of(rsa_key, ec_key)
    token = sign(rsa_key, "RS256", claims(), kid=None)
    async with TokenValidator(settings_for(auth_server)) as validator:
        await validator.validate(token)


# -- refused --------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_an_expired_token_is_refused(auth_server: AuthServer, rsa_key: RSAKey) -> None:
    auth_server.jwks = jwks_of(rsa_key)
    token = sign(rsa_key, "RS256", claims(exp=int(time.time()) - 120))
    async with TokenValidator(settings_for(auth_server, leeway=30)) as validator:
        assert "expired" in await refused(validator, token)


@pytest.mark.asyncio
async def test_a_token_that_is_not_yet_valid_is_refused(auth_server: AuthServer,
                                                        rsa_key: RSAKey) -> None:
    auth_server.jwks = jwks_of(rsa_key)
    token = sign(rsa_key, "RS256", claims(nbf=int(time.time()) + 600))
    async with TokenValidator(settings_for(auth_server)) as validator:
        assert "nbf" in await refused(validator, token)


@pytest.mark.asyncio
async def test_a_token_issued_in_the_future_is_refused(auth_server: AuthServer,
                                                       rsa_key: RSAKey) -> None:
    auth_server.jwks = jwks_of(rsa_key)
    token = sign(rsa_key, "RS256", claims(iat=int(time.time()) + 600))
    async with TokenValidator(settings_for(auth_server)) as validator:
        assert "iat" in await refused(validator, token)


@pytest.mark.parametrize("aud", ["https://other.example.com", ["https://other.example.com"],
                                 None, ""])
@pytest.mark.asyncio
async def test_a_token_for_another_audience_is_refused(auth_server: AuthServer, rsa_key: RSAKey,
                                                       aud: Any) -> None:
    auth_server.jwks = jwks_of(rsa_key)
    token = sign(rsa_key, "RS256", claims(aud=aud))
    async with TokenValidator(settings_for(auth_server)) as validator:
        assert "aud" in await refused(validator, token)


@pytest.mark.parametrize("iss", ["https://evil.example.com", None, 5])
@pytest.mark.asyncio
async def test_a_token_from_another_issuer_is_refused(auth_server: AuthServer, rsa_key: RSAKey,
                                                      iss: Any) -> None:
    auth_server.jwks = jwks_of(rsa_key)
    token = sign(rsa_key, "RS256", claims(iss=iss))
    async with TokenValidator(settings_for(auth_server)) as validator:
        assert "iss" in await refused(validator, token)


@pytest.mark.asyncio
async def test_a_token_without_exp_is_refused(auth_server: AuthServer, rsa_key: RSAKey) -> None:
    auth_server.jwks = jwks_of(rsa_key)
    token = sign(rsa_key, "RS256", claims(exp=None))
    async with TokenValidator(settings_for(auth_server)) as validator:
        assert "exp" in await refused(validator, token)


@pytest.mark.asyncio
async def test_an_unsigned_alg_none_token_is_refused(auth_server: AuthServer,
                                                     rsa_key: RSAKey) -> None:
    auth_server.jwks = jwks_of(rsa_key)
    token = unsigned({"alg": "none", "typ": "JWT"}, claims())
    async with TokenValidator(settings_for(auth_server)) as validator:
        assert "'none' is not allowed" in await refused(validator, token)
    assert auth_server.count("/jwks.json") == 0


@pytest.mark.parametrize("alg", ["None", "NONE", "nOnE"])
@pytest.mark.asyncio
async def test_spellings_of_none_are_refused(auth_server: AuthServer, alg: str) -> None:
    token = unsigned({"alg": alg}, claims())
    async with TokenValidator(settings_for(auth_server)) as validator:
        await refused(validator, token)


def hs256_with_public_key(key: RSAKey, payload: dict[str, Any]) -> str:
    """The key-confusion attack: HMAC-SHA256 keyed with the RSA public key (PEM)."""
    header = b64(json.dumps({"alg": "HS256", "kid": key.kid, "typ": "JWT"}).encode())
    body = b64(json.dumps(payload).encode())
    mac = hmac.new(key.as_pem(private=False), f"{header}.{body}".encode(), hashlib.sha256)
    return f"{header}.{body}.{b64(mac.digest())}"


@pytest.mark.asyncio
async def test_hs256_signed_with_the_rsa_public_key_is_refused(auth_server: AuthServer,
                                                               rsa_key: RSAKey) -> None:
    auth_server.jwks = jwks_of(rsa_key)
    async with TokenValidator(settings_for(auth_server)) as validator:
        message = await refused(validator, hs256_with_public_key(rsa_key, claims()))
    assert "'HS256' is not allowed" in message


@pytest.mark.asyncio
async def test_hs256_with_the_rsa_public_key_is_refused_even_when_hs256_is_allowed(
        auth_server: AuthServer, rsa_key: RSAKey) -> None:
    auth_server.jwks = jwks_of(rsa_key)
    settings = settings_for(auth_server, algorithms=("RS256", "HS256"))
    async with TokenValidator(settings) as validator:
        message = await refused(validator, hs256_with_public_key(rsa_key, claims()))
    assert "no HS256 signing key" in message


@pytest.mark.asyncio
async def test_a_token_with_a_tampered_signature_is_refused(auth_server: AuthServer,
                                                            rsa_key: RSAKey) -> None:
    auth_server.jwks = jwks_of(rsa_key)
    header, payload, signature = sign(rsa_key, "RS256", claims()).split(".")
    middle = len(signature) // 2
    flipped = "A" if signature[middle] != "A" else "B"
    tampered = f"{header}.{payload}.{signature[:middle]}{flipped}{signature[middle + 1:]}"
    async with TokenValidator(settings_for(auth_server)) as validator:
        assert "signature" in await refused(validator, tampered)


@pytest.mark.asyncio
async def test_a_token_with_a_tampered_payload_is_refused(auth_server: AuthServer,
                                                          rsa_key: RSAKey) -> None:
    auth_server.jwks = jwks_of(rsa_key)
    header, _, signature = sign(rsa_key, "RS256", claims()).split(".")
    forged = b64(json.dumps(claims(sub="mallory")).encode())
    async with TokenValidator(settings_for(auth_server)) as validator:
        assert "signature" in await refused(validator, f"{header}.{forged}.{signature}")


@pytest.mark.asyncio
async def test_a_token_signed_by_another_key_with_the_same_kid_is_refused(
        auth_server: AuthServer, rsa_key: RSAKey, other_rsa_key: RSAKey) -> None:
    auth_server.jwks = jwks_of(rsa_key)
    token = sign(other_rsa_key, "RS256", claims(), kid=rsa_key.kid)
    async with TokenValidator(settings_for(auth_server)) as validator:
        assert "signature" in await refused(validator, token)


@pytest.mark.asyncio
async def test_an_unknown_kid_triggers_exactly_one_jwks_refresh_then_fails(
        auth_server: AuthServer, rsa_key: RSAKey, other_rsa_key: RSAKey) -> None:
    auth_server.jwks = jwks_of(rsa_key)
    ticker = Ticker()
    async with TokenValidator(settings_for(auth_server), monotonic=ticker) as validator:
        assert await validator.refresh_keys()
        await validator.validate(sign(rsa_key, "RS256", claims()))
        assert auth_server.count("/jwks.json") == 1

        ticker.now += 60  # past the minimum refresh interval
        stranger = sign(other_rsa_key, "RS256", claims())
        assert "kid 'rsa-2'" in await refused(validator, stranger)
        assert auth_server.count("/jwks.json") == 2

        # Rate-bounded: another unknown kid right away does not fetch again.
        assert "kid 'rsa-2'" in await refused(validator, stranger)
        assert auth_server.count("/jwks.json") == 2


@pytest.mark.asyncio
async def test_a_rotated_key_is_picked_up_by_the_refresh(auth_server: AuthServer,
                                                         rsa_key: RSAKey,
                                                         other_rsa_key: RSAKey) -> None:
    auth_server.jwks = jwks_of(rsa_key)
    ticker = Ticker()
    async with TokenValidator(settings_for(auth_server), monotonic=ticker) as validator:
        await validator.refresh_keys()
        auth_server.jwks = jwks_of(rsa_key, other_rsa_key)
        ticker.now += 60
        assert (await validator.validate(sign(other_rsa_key, "RS256", claims())))["sub"]
    assert auth_server.count("/jwks.json") == 2


@pytest.mark.asyncio
async def test_a_stale_key_set_is_fetched_again(auth_server: AuthServer, rsa_key: RSAKey) -> None:
    auth_server.jwks = jwks_of(rsa_key)
    ticker = Ticker()
    settings = settings_for(auth_server, jwks_cache_ttl=300)
    async with TokenValidator(settings, monotonic=ticker) as validator:
        await validator.validate(sign(rsa_key, "RS256", claims()))
        ticker.now += 301
        await validator.validate(sign(rsa_key, "RS256", claims()))
    assert auth_server.count("/jwks.json") == 2


@pytest.mark.asyncio
async def test_an_unreachable_jwks_with_no_keys_held_is_an_upstream_error(
        auth_server: AuthServer, rsa_key: RSAKey) -> None:
    auth_server.jwks_status = 503
    async with TokenValidator(settings_for(auth_server)) as validator:
        with pytest.raises(UpstreamError):
            await validator.validate(sign(rsa_key, "RS256", claims()))


@pytest.mark.asyncio
async def test_keys_already_held_survive_a_failed_refresh(auth_server: AuthServer,
                                                          rsa_key: RSAKey) -> None:
    auth_server.jwks = jwks_of(rsa_key)
    ticker = Ticker()
    settings = settings_for(auth_server, jwks_cache_ttl=300)
    async with TokenValidator(settings, monotonic=ticker) as validator:
        await validator.refresh_keys()
        auth_server.jwks_status = 500
        ticker.now += 301
        await validator.validate(sign(rsa_key, "RS256", claims()))
    assert auth_server.count("/jwks.json") == 2


@pytest.mark.asyncio
async def test_symmetric_keys_from_a_jwks_url_are_ignored(auth_server: AuthServer) -> None:
    auth_server.jwks = {"keys": [{"kty": "oct", "kid": "s", "k": b64(b"0" * 32)}]}
    header = b64(json.dumps({"alg": "HS256", "kid": "s"}).encode())
    body = b64(json.dumps(claims()).encode())
    mac = hmac.new(b"0" * 32, f"{header}.{body}".encode(), hashlib.sha256).digest()
    settings = settings_for(auth_server, algorithms=("HS256",))
    async with TokenValidator(settings) as validator:
        assert "no HS256 signing key" in await refused(validator, f"{header}.{body}.{b64(mac)}")


@pytest.mark.parametrize("header", [
    {"alg": "RS256", "kid": "rsa-1", "crit": ["exp"], "exp": 1},
    {"alg": "RS256", "kid": "rsa-1", "b64": False, "crit": ["b64"]},
])
@pytest.mark.asyncio
async def test_a_token_with_critical_header_parameters_is_refused(
        auth_server: AuthServer, header: dict[str, Any]) -> None:
    async with TokenValidator(settings_for(auth_server)) as validator:
        assert "crit" in await refused(validator, unsigned(header, claims(), b"sig"))


@pytest.mark.asyncio
async def test_the_token_type_is_checked_when_configured(auth_server: AuthServer,
                                                         rsa_key: RSAKey) -> None:
    auth_server.jwks = jwks_of(rsa_key)
    settings = settings_for(auth_server, token_types=("at+jwt",))
    async with TokenValidator(settings) as validator:
        await validator.validate(sign(rsa_key, "RS256", claims(), typ="at+jwt"))
        assert "type" in await refused(validator, sign(rsa_key, "RS256", claims()))


@pytest.mark.parametrize("token", ["", "a.b", "a.b.c", "x" * 20_000, "e30.e30.", "W10.e30.AA"])
@pytest.mark.asyncio
async def test_garbage_is_refused(auth_server: AuthServer, token: str) -> None:
    async with TokenValidator(settings_for(auth_server)) as validator:
        await refused(validator, token)


@pytest.mark.asyncio
async def test_an_opaque_token_without_introspection_is_refused(auth_server: AuthServer) -> None:
    async with TokenValidator(settings_for(auth_server)) as validator:
        assert "introspection" in await refused(validator, "opaque-token-value")


# -- explicitly configured insecure algorithms ----------------------------------------------


# joserfc warns about "none" whenever it is used; here it is configured on purpose.
@pytest.mark.filterwarnings("ignore:JWS algorithm \"none\" is deprecated")
@pytest.mark.asyncio
async def test_alg_none_is_accepted_only_when_configured_explicitly(
        auth_server: AuthServer) -> None:
    token = unsigned({"alg": "none"}, claims())
    async with TokenValidator(settings_for(auth_server, algorithms=("none",))) as validator:
        assert (await validator.validate(token))["sub"] == "alice@example.com"
        await refused(validator, unsigned({"alg": "none"}, claims(), b"x"))


# -- the synchronous path -------------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_sync_path_validates_with_cached_keys(auth_server: AuthServer,
                                                        rsa_key: RSAKey) -> None:
    auth_server.jwks = jwks_of(rsa_key)
    token = sign(rsa_key, "RS256", claims())
    async with TokenValidator(settings_for(auth_server)) as validator:
        with pytest.raises(CacheMiss):
            validator.validate_cached(token)
        await validator.refresh_keys()
        assert validator.validate_cached(token)["sub"] == "alice@example.com"
        with pytest.raises(TokenError):
            validator.validate_cached(sign(rsa_key, "RS256", claims(aud="x")))
        with pytest.raises(CacheMiss):
            validator.validate_cached(sign(rsa_key, "RS256", claims(), kid="unknown"))
    assert auth_server.count("/jwks.json") == 1


def test_a_jwks_file_serves_the_sync_path_at_once(tmp_path: Path, rsa_key: RSAKey,
                                                  ec_key: ECKey) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks_of(rsa_key, ec_key)))
    validator = TokenValidator(TokenSettings(issuers=(ISSUER,), audience=AUDIENCE,
                                             jwks_file=path))
    assert validator.validate_cached(sign(ec_key, "ES256", claims()))["sub"]
    with pytest.raises(TokenError):
        validator.validate_cached(sign(ec_key, "ES256", claims(exp=int(time.time()) - 600)))


@pytest.mark.asyncio
async def test_a_jwks_file_is_read_again_for_an_unknown_kid(tmp_path: Path, rsa_key: RSAKey,
                                                            other_rsa_key: RSAKey) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks_of(rsa_key)))
    ticker = Ticker()
    settings = TokenSettings(issuers=(ISSUER,), audience=AUDIENCE, jwks_file=path)
    async with TokenValidator(settings, monotonic=ticker) as validator:
        path.write_text(json.dumps(jwks_of(rsa_key, other_rsa_key)))
        ticker.now += 60
        assert (await validator.validate(sign(other_rsa_key, "RS256", claims())))["sub"]
