"""Access-token validation (docs/spec/coaz.md, "Both dialects: the access token"; RFC 7519,
RFC 8707, RFC 9068, RFC 7662).

A token is validated before any claim reaches a mapping:

1. A JWS compact token (three dot-separated parts) is a JWT. Its header must name an allowed
   ``alg`` (``none`` and ``HS*`` only if configured), an accepted ``typ`` if ``token_types`` is
   set, and no ``crit`` or ``b64`` parameters (none is understood).
2. The key is the JWKS key with the header's ``kid`` and a key type that fits ``alg`` (without
   ``kid``: the only such key). An unknown ``kid`` triggers one rate-bounded JWKS refresh
   (:mod:`pdp.tokens.jwks`), then fails.
3. joserfc verifies the signature (and that the key suits the algorithm: an RSA public key is
   never used as an HMAC secret) and the claims: ``iss`` is an accepted issuer, ``aud``
   contains this server's resource identifier, ``exp`` is required, ``exp``/``nbf``/``iat`` are
   checked with the leeway.
4. Any other token is opaque: it is introspected (RFC 7662) if configured, else refused.
   Without a JWKS every token, JWT or not, is introspected.

Failures raise :class:`pdp.errors.TokenError` whose message is for logs only; the client gets
:func:`pdp.tokens.metadata.www_authenticate`. An unreachable authorization server raises
:class:`pdp.errors.UpstreamError`. :meth:`TokenValidator.validate` is the async entry point;
:meth:`TokenValidator.validate_cached` is a synchronous path that uses only keys already held
and raises :class:`pdp.tokens.errors.CacheMiss` when it would need the network.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import httpx
from joserfc import jws
from joserfc.errors import ClaimError, JoseError
from joserfc.jwk import Key
from joserfc.jwt import ClaimsOption, JWTClaimsRegistry

from pdp.errors import TokenError
from pdp.tokens.errors import CacheMiss
from pdp.tokens.introspection import introspect
from pdp.tokens.jwks import JWKSCache
from pdp.tokens.settings import TokenSettings

__all__ = ["TokenValidator"]

log = logging.getLogger(__name__)

_MAX_TOKEN_CHARS = 16_384


class _Jwt:
    """A token split and its header decoded, nothing verified yet."""

    __slots__ = ("compact", "header", "kid", "alg")

    def __init__(self, compact: jws.CompactSignature, header: dict[str, Any]) -> None:
        self.compact = compact
        self.header = header
        kid = header.get("kid")
        self.kid: str | None = kid if isinstance(kid, str) else None
        self.alg: str = header["alg"]


class TokenValidator:
    """Validates access tokens for one protected resource (see the module docstring).

    ``http_client`` is used for JWKS and introspection requests; without one the validator
    creates its own and closes it in :meth:`aclose`. ``clock`` (Unix seconds) and
    ``monotonic`` are for tests.
    """

    def __init__(self, settings: TokenSettings, *, http_client: httpx.AsyncClient | None = None,
                 clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._client = http_client
        self._owns_client = http_client is None
        self._clock = clock
        self._registry = jws.JWSRegistry(algorithms=list(settings.algorithms),
                                         strict_check_header=False)
        self._keys = JWKSCache(settings, client=self._http, clock=monotonic)
        self._claim_options: dict[str, ClaimsOption] = {
            "iss": {"essential": True, "values": list(settings.issuers)},
            "aud": {"essential": True, "value": settings.audience},
            "exp": {"essential": True},
        }

    # -- lifecycle -------------------------------------------------------------------------

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.settings.http_timeout,
                                             follow_redirects=False)
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP client if the validator created it."""
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> TokenValidator:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    async def refresh_keys(self) -> bool:
        """Load the JWKS now (for example at start-up); rate-bounded like every refresh."""
        return await self._keys.refresh()

    # -- validation ------------------------------------------------------------------------

    async def validate(self, token: str) -> dict[str, Any]:
        """The claims of a valid token; raises :class:`TokenError` (or ``UpstreamError``)."""
        if not self._keys.configured:
            self._check_size(token)
            return await introspect(token, self.settings, self._http(), self._now)
        parsed = self._parse(token)
        if parsed is None:
            if self.settings.introspection is None:
                raise TokenError("the token is not a JWT and no introspection is configured")
            return await introspect(token, self.settings, self._http(), self._now)
        if parsed.alg == "none":
            return self._verify(parsed, None)
        if self._keys.configured and not self._keys.is_fresh():
            await self._keys.refresh()
        key = self._keys.snapshot.find(parsed.kid, parsed.alg)
        if key is None and await self._keys.refresh():
            key = self._keys.snapshot.find(parsed.kid, parsed.alg)
        if key is None:
            raise TokenError(self._no_key(parsed))
        return self._verify(parsed, key)

    def validate_cached(self, token: str) -> dict[str, Any]:
        """Like :meth:`validate`, without I/O: raises :class:`CacheMiss` when the token is
        opaque (or only introspection is configured) or its key is not held in a fresh key
        set."""
        if not self._keys.configured:
            self._check_size(token)
            raise CacheMiss("the token needs introspection")
        parsed = self._parse(token)
        if parsed is None:
            if self.settings.introspection is None:
                raise TokenError("the token is not a JWT and no introspection is configured")
            raise CacheMiss("an opaque token needs introspection")
        if parsed.alg == "none":
            return self._verify(parsed, None)
        if not self._keys.is_fresh():
            raise CacheMiss("no fresh signing keys are held")
        key = self._keys.snapshot.find(parsed.kid, parsed.alg)
        if key is None:
            raise CacheMiss(self._no_key(parsed))
        return self._verify(parsed, key)

    # -- steps -----------------------------------------------------------------------------

    def _now(self) -> int:
        return int(self._clock())

    def _check_size(self, token: str) -> None:
        if not isinstance(token, str) or not token:
            raise TokenError("no token")
        if len(token) > _MAX_TOKEN_CHARS:
            raise TokenError(f"the token is longer than {_MAX_TOKEN_CHARS} characters")

    def _parse(self, token: str) -> _Jwt | None:
        self._check_size(token)
        if token.count(".") != 2:
            return None
        try:
            compact = jws.extract_compact(token.encode("ascii"), registry=self._registry)
            header = compact.headers()
        except (JoseError, ValueError, TypeError, AttributeError) as error:
            raise TokenError(f"the token cannot be decoded: {error}") from None
        if not isinstance(header, dict) or not isinstance(header.get("alg"), str):
            raise TokenError("the token header has no 'alg'")
        alg = header["alg"]
        if alg not in self.settings.algorithms:
            raise TokenError(f"the token algorithm {alg!r} is not allowed")
        if "crit" in header or "b64" in header:
            raise TokenError("the token header has 'crit' or 'b64' parameters")
        types = self.settings.token_types
        if types is not None and header.get("typ") not in types:
            raise TokenError(f"the token type {header.get('typ')!r} is not accepted")
        return _Jwt(compact, header)

    def _no_key(self, parsed: _Jwt) -> str:
        if parsed.kid is None:
            return f"the token has no 'kid' and no single {parsed.alg} key fits"
        return f"no {parsed.alg} signing key with kid {parsed.kid!r}"

    def _verify(self, parsed: _Jwt, key: Key | None) -> dict[str, Any]:
        try:
            if not jws.validate_compact(parsed.compact, key, registry=self._registry):
                raise TokenError("the token signature is invalid")
            assert parsed.compact.payload is not None
            claims = json.loads(parsed.compact.payload)
        except JoseError as error:
            raise TokenError(f"the token cannot be verified: {error}") from None
        except ValueError:
            raise TokenError("the token payload is not JSON") from None
        if not isinstance(claims, dict):
            raise TokenError("the token payload is not a JSON object")
        try:
            JWTClaimsRegistry(now=self._now, leeway=self.settings.leeway,
                              **self._claim_options).validate(claims)
        except ClaimError as error:
            raise TokenError(f"the token claim {error.claim!r} is invalid: "
                             f"{error.description}") from None
        except JoseError as error:
            raise TokenError(f"the token claims are invalid: {error}") from None
        return claims
