"""Errors of token validation beyond :mod:`pdp.errors` (docs/spec/coaz.md, "Both dialects: the
access token").

An invalid token raises :class:`pdp.errors.TokenError`; an authorization server that cannot be
reached (JWKS or introspection) raises :class:`pdp.errors.UpstreamError`. This module adds the
one case neither covers.
"""

from __future__ import annotations

from pdp.errors import PDPError

__all__ = ["CacheMiss"]


class CacheMiss(PDPError):
    """The synchronous path cannot decide without network I/O (no fresh key for the token's
    ``kid``, or an opaque token that needs introspection). Not a verdict on the token: use
    ``await TokenValidator.validate(token)``."""

    code = "token_cache_miss"
    status = 503
