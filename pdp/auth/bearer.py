"""OAuth 2.0 bearer JWTs for PEPs (AuthZEN 1.0 section 10: OAuth bearer authentication of the
PEP is RECOMMENDED; RFC 6750; RFC 9068).

A PEP (a gateway, a service) obtains a token from its authorization server, typically with the
client-credentials grant, and sends it as ``Authorization: Bearer``. The token is validated by
:class:`pdp.tokens.TokenValidator` against the configured JWKS (URL or file): signature, an
accepted ``iss``, this PDP in ``aud``, ``exp``/``nbf``/``iat`` with the leeway. Then, if a scope
is required, the ``scope`` claim (space-separated) or ``scp`` (a list, or a string) must hold it:
a valid token without it is a 403 ``insufficient_scope``, not a 401.

The hot path stays cheap: a token that was accepted is remembered by its SHA-256 (never the
token itself) with its principal, until its ``exp`` and at most :data:`RESULT_TTL` seconds,
so a PEP that sends the same token on every request costs one dictionary lookup after the
first. On a miss :meth:`TokenValidator.validate_cached` verifies with the keys already held
(no I/O); only an unknown ``kid`` or a stale key set goes to the network
(:meth:`TokenValidator.validate`). Refusals are never remembered.

The principal's name is the token's ``client_id`` (RFC 9068), else ``azp``, else ``sub``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from typing import Any

from pdp.caches import ExpiringLRU, sooner
from pdp.errors import InsufficientScope, TokenError
from pdp.tokens import CacheMiss, TokenSettings, TokenValidator

__all__ = ["JwtAuthenticator", "RESULT_TTL", "scopes_of"]

#: At most this many seconds between two full validations of one token (keys may be revoked).
RESULT_TTL = 60.0
_CACHE_SIZE = 4096


def scopes_of(claims: Mapping[str, Any]) -> frozenset[str]:
    """The token's scopes: ``scope`` (space-separated, RFC 8693/9068) and ``scp`` (list)."""
    found: set[str] = set()
    scope = claims.get("scope")
    if isinstance(scope, str):
        found.update(scope.split())
    scp = claims.get("scp")
    if isinstance(scp, str):
        found.update(scp.split())
    elif isinstance(scp, list):
        found.update(s for s in scp if isinstance(s, str))
    return frozenset(found)


def _name_of(claims: Mapping[str, Any]) -> str:
    for claim in ("client_id", "azp", "sub"):
        value = claims.get(claim)
        if isinstance(value, str) and value:
            return value
    raise TokenError("the token names no client (client_id, azp or sub)")


class JwtAuthenticator:
    """Validates PEP bearer JWTs; :meth:`authenticate` answers the principal's name.

    ``scope`` is the required scope (None or '': none). ``clock`` is Unix seconds (tests).
    """

    def __init__(self, settings: TokenSettings, *, scope: str | None,
                 validator: TokenValidator | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.scope = scope or None
        self.validator = validator or TokenValidator(settings, clock=clock)
        self._clock = clock
        # the event loop's thread only
        self._accepted: ExpiringLRU[bytes, str] = ExpiringLRU(_CACHE_SIZE, RESULT_TTL,
                                                              clock=clock)

    async def authenticate(self, token: str, digest: bytes | None = None) -> str:
        """The name of the token's client. Raises :class:`TokenError` (invalid: 401),
        :class:`InsufficientScope` (valid, scope missing: 403) or ``UpstreamError`` (no keys
        can be had). ``digest`` is the token's SHA-256 if the caller has it already."""
        key = digest if digest is not None else hashlib.sha256(token.encode()).digest()
        hit = self._accepted.get(key)
        if hit is not None:
            return hit
        now = self._clock()
        try:
            claims = self.validator.validate_cached(token)
        except CacheMiss:
            claims = await self.validator.validate(token)
        if self.scope is not None and self.scope not in scopes_of(claims):
            raise InsufficientScope(f"the token lacks the scope {self.scope!r}")
        name = _name_of(claims)
        self._accepted.put(key, name, sooner(now + RESULT_TTL, claims.get("exp")))
        return name

    async def aclose(self) -> None:
        await self.validator.aclose()
