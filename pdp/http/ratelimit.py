"""ASGI middleware: the optional per-client rate limit (``PDP_RATE_LIMIT``) on the decision
endpoints (``/access/v1/``, ``/coaz/v1/``); other paths (health, metrics, admin) pass.

The client is the principal an authentication middleware put in ``scope["state"]["principal"]``
(its ``name``), else the client address: the authentication middleware must therefore run
before this one (be added after it in :func:`pdp.http.app.create_app`). A refused request is a
429 ``rate_limited`` with ``Retry-After`` (whole seconds, at least 1). The buckets are
:class:`pdp.ratelimit.RateLimiter`'s, one set per process.
"""

from __future__ import annotations

import math
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from pdp.errors import PDPError, RateLimited
from pdp.http.responses import error_response
from pdp.ratelimit import RateLimiter

__all__ = ["LIMITED_PREFIXES", "RateLimitMiddleware", "client_key", "rate_refusal"]

LIMITED_PREFIXES = ("/access/v1/", "/coaz/v1/")


def client_key(scope: Scope) -> str:
    """``principal:<name>`` when authenticated, else ``ip:<address>``."""
    state: dict[str, Any] | None = scope.get("state")
    if state is not None:
        principal = state.get("principal")
        name = getattr(principal, "name", None)
        if name:
            return f"principal:{name}"
    client = scope.get("client")
    return f"ip:{client[0] if client else 'unknown'}"


def rate_refusal(limiter: RateLimiter, scope: Scope) -> PDPError | None:
    """The 429 to answer ``scope`` with when its client is over the limit, else None (a
    token is taken)."""
    if not scope["path"].startswith(LIMITED_PREFIXES):
        return None
    wait = limiter.take(client_key(scope))
    if not wait:
        return None
    seconds = max(1, math.ceil(wait))
    return RateLimited(f"more than {limiter.rate:g} requests per second (burst "
                       f"{limiter.burst}); retry after {seconds} s", retry_after=seconds)


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = rate_refusal(self.limiter, scope)
            if refusal is not None:
                await error_response(refusal)(scope, receive, send)
                return
        await self.app(scope, receive, send)
