"""Bearer-token authentication of MCP clients (MCP "Authorization": access-token usage and
validation, RFC 6750 section 3, RFC 9728 section 5.1; docs/spec/coaz.md, "Both dialects: the access
token").

Every request to the gateway must carry ``Authorization: Bearer <token>``. The token is
validated (signature against the issuer's keys, ``iss``, ``aud`` = this server's resource
identifier, ``exp`` / ``nbf``) before anything else happens; a missing or invalid token is
answered 401 with ``WWW-Authenticate: Bearer`` naming this server's protected-resource metadata
and nothing else — no reason a client could learn from.

Validated tokens are remembered (by their exact text) for at most ``cache_seconds``
(``PDP_TOKEN_CACHE_SECONDS``, 10 by default) and never past their ``exp``, so a client reusing
one token is not re-verified on every message; a token revoked at its authorization server
(seen by introspection) is therefore refused at most ``cache_seconds`` later.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, Protocol

from pdp.caches import ExpiringLRU, sooner
from pdp.errors import TokenError, UpstreamError

__all__ = ["Authenticator", "AuthUnavailable", "ClaimsValidator", "Unauthenticated",
           "bearer_token"]

log = logging.getLogger("pdp.gateway")


class ClaimsValidator(Protocol):
    async def validate(self, token: str) -> Mapping[str, Any]: ...


class Unauthenticated(Exception):
    """Answer 401 with ``www_authenticate``."""

    def __init__(self, www_authenticate: str) -> None:
        super().__init__("unauthenticated")
        self.www_authenticate = www_authenticate


class AuthUnavailable(Exception):
    """The token cannot be checked now (the issuer's keys cannot be fetched): answer 503."""


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer`` header (scheme case-insensitive)."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return token


class Authenticator:
    def __init__(self, validator: ClaimsValidator, *, missing_header: str, invalid_header: str,
                 cache_size: int = 10_000, cache_seconds: float = 10.0) -> None:
        self.validator = validator
        self.missing_header = missing_header
        self.invalid_header = invalid_header
        self.cache_size = cache_size
        self.cache_seconds = cache_seconds
        # the event loop's thread only; wall-clock seconds, as ``exp`` is
        self._cache: ExpiringLRU[str, Mapping[str, Any]] = ExpiringLRU(
            cache_size, cache_seconds, clock=time.time)

    async def authenticate(self, authorization: str | None) -> Mapping[str, Any]:
        token = bearer_token(authorization)
        if token is None:
            raise Unauthenticated(self.missing_header)
        hit = self._cache.get(token)
        if hit is not None:
            return hit
        now = time.time()
        try:
            claims = await self.validator.validate(token)
        except TokenError as exc:
            log.info("rejected an access token: %s", exc.message)
            raise Unauthenticated(self.invalid_header) from None
        except UpstreamError as exc:
            log.warning("cannot validate access tokens: %s", exc.message)
            raise AuthUnavailable() from None
        self._cache.put(token, claims, sooner(now + self.cache_seconds, claims.get("exp")))
        return claims
