"""ASGI middleware authenticating PEPs and administrators (AuthZEN 1.0 section 10).

Paths under :data:`PEP_PREFIXES` (the AuthZEN evaluation and search endpoints, the COAZ
endpoints, and ``/bench/noop`` when enabled) need a PEP credential whenever one is configured;
without any the PDP is in unauthenticated mode (allowed on loopback only, see
:func:`pdp.auth.check_exposure`) and they are open. Paths under ``/admin`` need an admin
credential and answer 404 ``admin_disabled`` when none is configured. Everything else —
:data:`PUBLIC_PATHS`: metadata, health, readiness, metrics, status, the OpenAPI document and
docs — is open: probes and discovery need no secret, and none of it reveals a decision.

The principal is stored as ``scope["state"]["principal"]`` (a :class:`pdp.auth.Principal`;
absent in unauthenticated mode) for the routes, the logs and rate limiting. A refusal is a 401
(403 for a JWT without the required scope) with ``WWW-Authenticate`` and the usual JSON error
body; its reason is logged at info, never the credential.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Receive, Scope, Send

from pdp.auth import Authenticator, Credentials
from pdp.errors import AdminDisabled, PDPError
from pdp.http.access import BENCH_NOOP_PATH
from pdp.http.responses import error_response

__all__ = ["ADMIN_PREFIX", "AuthenticationMiddleware", "PEP_PREFIXES", "PUBLIC_PATHS",
           "classify", "credentials_of", "log_refusal"]

log = logging.getLogger("pdp.auth")

PEP_PREFIXES: tuple[str, ...] = ("/access/v1/", "/coaz/v1/", BENCH_NOOP_PATH)
ADMIN_PREFIX = "/admin"
#: Open to anyone (documented in docs/authentication.md).
PUBLIC_PATHS: tuple[str, ...] = (
    "/.well-known/authzen-configuration", "/.well-known/authzen-configuration/{tenant}",
    "/health", "/ready", "/metrics", "/status", "/docs",
    "/docs-assets", "/redoc", "/openapi.json")

_AUTHORIZATION = b"authorization"
_API_KEY = b"x-api-key"


def classify(path: str) -> str:
    """``"pep"``, ``"admin"`` or ``"open"``: what a path needs."""
    if path.startswith(PEP_PREFIXES):
        return "pep"
    if path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
        return "admin"
    return "open"


class AuthenticationMiddleware:
    def __init__(self, app: ASGIApp, *, pep: Authenticator, admin: Authenticator,
                 admin_prefixes: tuple[str, ...] = ()) -> None:
        self.app = app
        self.pep = pep
        self.admin = admin
        self.admin_prefixes = admin_prefixes  # more paths that need an admin credential

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        needs = classify(path)
        if needs == "open" and self.admin_prefixes and path.startswith(self.admin_prefixes):
            needs = "admin"
        if needs == "open":
            await self.app(scope, receive, send)
            return
        authenticator = self.pep if needs == "pep" else self.admin
        if not authenticator.enabled:
            if needs == "pep":  # unauthenticated mode
                await self.app(scope, receive, send)
                return
            refusal: PDPError = AdminDisabled("admin endpoints are disabled (set "
                                              "PDP_ADMIN_API_KEYS or PDP_ADMIN_TOKEN)")
            await error_response(refusal)(scope, receive, send)
            return
        try:
            principal = await authenticator.authenticate(credentials_of(scope))
        except PDPError as exc:
            log_refusal(scope, exc)
            await error_response(exc)(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


def credentials_of(scope: Scope) -> Credentials:
    """The credentials a request presents (the first of each header)."""
    authorization = api_key = None
    for name, value in scope["headers"]:
        if name == _AUTHORIZATION:
            if authorization is None:
                authorization = value.decode("latin-1")
        elif name == _API_KEY and api_key is None:
            api_key = value.decode("latin-1")
    return Credentials(authorization, api_key)


def log_refusal(scope: Scope, exc: PDPError) -> None:
    """Log why a request was refused (never the credential)."""
    client = scope.get("client")
    log.log(logging.WARNING if exc.status >= 500 else logging.INFO,
            "%s %s refused (%s): %s", scope.get("method"), scope.get("path"),
            client[0] if client else "-", getattr(exc, "reason", exc.message))
