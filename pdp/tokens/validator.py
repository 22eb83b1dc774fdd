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
4. Any other token is opaque: it is introspected (RFC 7662) at the first configured
   introspection endpoint (the main one, else the first of ``more_issuers`` that has one), else
   refused. Without any JWKS every token, JWT or not, is introspected there.

Several authorization servers may be configured (:attr:`TokenSettings.more_issuers`), each with
its own JWKS or introspection endpoint: a JWT goes to the key source of the issuer its
(not yet verified) ``iss`` names, and a JWT whose ``iss`` is not configured is refused before
any key is fetched. Key sources are built once from the settings: nothing a request carries
(a token, an audience) creates one or makes one fetch keys for an issuer not configured.
The audience may differ per call (``validate(token, audience=...)``). Active introspection
answers are remembered for :attr:`TokenSettings.cache_seconds` (never past the token's
``exp``), so a revoked token is refused at most that long after its revocation.

Failures raise :class:`pdp.errors.TokenError` whose message is for logs only; the client gets
:func:`pdp.tokens.metadata.www_authenticate`. An unreachable authorization server raises
:class:`pdp.errors.UpstreamError`. :meth:`TokenValidator.validate` is the async entry point;
:meth:`TokenValidator.validate_cached` is a synchronous path that uses only keys already held
and raises :class:`pdp.tokens.errors.CacheMiss` when it would need the network.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx
from joserfc import jws
from joserfc.errors import ClaimError, JoseError
from joserfc.jwk import Key
from joserfc.jwt import ClaimsOption, JWTClaimsRegistry

from pdp.caches import ExpiringLRU, sooner
from pdp.errors import TokenError, UpstreamError
from pdp.tokens.errors import CacheMiss
from pdp.tokens.introspection import check_answer, fetch_answer
from pdp.tokens.jwks import JWKSCache
from pdp.tokens.settings import IntrospectionSettings, TokenSettings, media_type

__all__ = ["TokenValidator"]

log = logging.getLogger(__name__)

_MAX_TOKEN_CHARS = 16_384
_MAX_REMEMBERED = 10_000


class _Jwt:
    """A token split and its header decoded, nothing verified yet."""

    __slots__ = ("compact", "header", "kid", "alg", "claims")

    def __init__(self, compact: jws.CompactSignature, header: dict[str, Any]) -> None:
        self.compact = compact
        self.header = header
        kid = header.get("kid")
        self.kid: str | None = kid if isinstance(kid, str) else None
        self.alg: str = header["alg"]
        self.claims: dict[str, Any] | None = None

    def unverified_claims(self) -> dict[str, Any]:
        if self.claims is None:
            try:
                assert self.compact.payload is not None
                claims = json.loads(self.compact.payload)
            except ValueError:
                raise TokenError("the token payload is not JSON") from None
            if not isinstance(claims, dict):
                raise TokenError("the token payload is not a JSON object")
            self.claims = claims
        return self.claims


@dataclass(frozen=True, slots=True)
class _Source:
    """One authorization server's key source: its ``iss`` values, its keys (if it has a
    JWKS) and its introspection endpoint (if any)."""

    issuers: tuple[str, ...]
    keys: JWKSCache | None
    introspection: IntrospectionSettings | None


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
        self._sources: list[_Source] = []

        def keys_of(config: TokenSettings) -> JWKSCache | None:
            if config.jwks_url is None and config.jwks_file is None:
                return None
            return JWKSCache(config, client=self._http, clock=monotonic)

        self._sources.append(_Source(settings.issuers, keys_of(settings),
                                     settings.introspection))
        for extra in settings.more_issuers:
            config = settings.model_copy(update={
                "issuers": (extra.issuer,), "jwks_url": extra.jwks_url,
                "jwks_file": extra.jwks_file, "introspection": extra.introspection,
                "more_issuers": ()})
            self._sources.append(_Source((extra.issuer,), keys_of(config), extra.introspection))
        self._by_issuer = {iss: source for source in self._sources for iss in source.issuers}
        self._opaque = next((s for s in self._sources if s.introspection is not None), None)
        self._any_keys = any(s.keys is not None for s in self._sources)
        # active introspection answers; the event loop's thread only
        self._answers: ExpiringLRU[bytes, dict[str, Any]] = ExpiringLRU(
            _MAX_REMEMBERED, settings.cache_seconds, clock=self._clock)

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
        """Load every configured JWKS now (for example at start-up); rate-bounded like every
        refresh. Raises the first :class:`UpstreamError` after trying them all."""
        loaded, failure = False, None
        for source in self._sources:
            if source.keys is None:
                continue
            try:
                loaded = await source.keys.refresh() or loaded
            except UpstreamError as error:
                failure = failure or error
        if failure is not None:
            raise failure
        return loaded

    # -- validation ------------------------------------------------------------------------

    def _audience(self, audience: str | None) -> str:
        audience = audience or self.settings.audience
        if not audience:
            raise TokenError("no audience to check the token against")
        return audience

    async def validate(self, token: str, audience: str | None = None) -> dict[str, Any]:
        """The claims of a valid token for ``audience`` (the settings' audience if ``None``);
        raises :class:`TokenError` (or ``UpstreamError``)."""
        aud = self._audience(audience)
        if not self._any_keys:
            self._check_size(token)
            return await self._introspect(token, self._opaque, aud)
        parsed = self._parse(token)
        if parsed is None:
            return await self._introspect(token, self._opaque, aud)
        source = self._source_of(parsed)
        if parsed.alg == "none":
            return self._verify(parsed, None, source, aud)
        keys = source.keys
        if keys is None:
            return await self._introspect(token, source, aud)
        if not keys.is_fresh():
            await keys.refresh()
        key = keys.snapshot.find(parsed.kid, parsed.alg)
        if key is None and await keys.refresh():
            key = keys.snapshot.find(parsed.kid, parsed.alg)
        if key is None:
            raise TokenError(self._no_key(parsed))
        return self._verify(parsed, key, source, aud)

    def validate_cached(self, token: str, audience: str | None = None) -> dict[str, Any]:
        """Like :meth:`validate`, without I/O: raises :class:`CacheMiss` when the token needs
        introspection that is not remembered, or its key is not held in a fresh key set."""
        aud = self._audience(audience)
        if not self._any_keys:
            self._check_size(token)
            return self._remembered(token, self._opaque, aud)
        parsed = self._parse(token)
        if parsed is None:
            return self._remembered(token, self._opaque, aud)
        source = self._source_of(parsed)
        if parsed.alg == "none":
            return self._verify(parsed, None, source, aud)
        keys = source.keys
        if keys is None:
            return self._remembered(token, source, aud)
        if not keys.is_fresh():
            raise CacheMiss("no fresh signing keys are held")
        key = keys.snapshot.find(parsed.kid, parsed.alg)
        if key is None:
            raise CacheMiss(self._no_key(parsed))
        return self._verify(parsed, key, source, aud)

    # -- introspection ---------------------------------------------------------------------

    def _answer_key(self, token: str, source: _Source) -> bytes:
        return hashlib.sha256(f"{source.issuers[0]}\n{token}".encode()).digest()

    def _recall(self, token: str, source: _Source) -> dict[str, Any] | None:
        return self._answers.get(self._answer_key(token, source))

    def _remembered(self, token: str, source: _Source | None, audience: str) -> dict[str, Any]:
        if source is None or source.introspection is None:
            raise TokenError("the token is not a JWT and no introspection is configured")
        answer = self._recall(token, source)
        if answer is None:
            raise CacheMiss("the token needs introspection")
        return check_answer(answer, source.introspection, source.issuers, audience,
                            self.settings.leeway, self._now)

    async def _introspect(self, token: str, source: _Source | None,
                          audience: str) -> dict[str, Any]:
        if source is None or source.introspection is None:
            raise TokenError("the token is not a JWT and no introspection is configured")
        config = source.introspection
        answer = self._recall(token, source)
        if answer is None:
            answer = await fetch_answer(token, config, self._http(), self.settings.http_timeout)
            self._remember(token, source, answer)
        return check_answer(answer, config, source.issuers, audience, self.settings.leeway,
                            self._now)

    def _remember(self, token: str, source: _Source, answer: dict[str, Any]) -> None:
        seconds = self.settings.cache_seconds
        if seconds <= 0 or answer.get("active") is not True:
            return
        self._answers.put(self._answer_key(token, source), answer,
                          sooner(self._clock() + seconds, answer.get("exp")))

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
        if types is not None:
            typ = header.get("typ")
            if not isinstance(typ, str) or media_type(typ) not in types:
                raise TokenError(f"the token type {typ!r} is not accepted")
        return _Jwt(compact, header)

    def _source_of(self, parsed: _Jwt) -> _Source:
        """The key source of the issuer the token names (not verified yet: the signature and
        ``iss`` are checked against that source's keys and issuers)."""
        iss = parsed.unverified_claims().get("iss")
        source = self._by_issuer.get(iss) if isinstance(iss, str) else None
        if source is None:
            raise TokenError(f"the token issuer {iss!r} is not accepted")
        return source

    def _no_key(self, parsed: _Jwt) -> str:
        if parsed.kid is None:
            return f"the token has no 'kid' and no single {parsed.alg} key fits"
        return f"no {parsed.alg} signing key with kid {parsed.kid!r}"

    def _verify(self, parsed: _Jwt, key: Key | None, source: _Source,
                audience: str) -> dict[str, Any]:
        try:
            if not jws.validate_compact(parsed.compact, key, registry=self._registry):
                raise TokenError("the token signature is invalid")
        except JoseError as error:
            raise TokenError(f"the token cannot be verified: {error}") from None
        claims = parsed.unverified_claims()  # the signature now vouches for them
        options: dict[str, ClaimsOption] = {
            "iss": {"essential": True, "values": list(source.issuers)},
            "aud": {"essential": True, "value": audience},
            "exp": {"essential": True},
        }
        try:
            JWTClaimsRegistry(now=self._now, leeway=self.settings.leeway,
                              **options).validate(claims)
        except ClaimError as error:
            raise TokenError(f"the token claim {error.claim!r} is invalid: "
                             f"{error.description}") from None
        except JoseError as error:
            raise TokenError(f"the token claims are invalid: {error}") from None
        return claims
