"""Who may reach the served PDP, checked on every request (outermost middleware of
:func:`pdp.http.app.app_from_environment`, however the server was started: ``pdp serve``,
``uvicorn --factory``, gunicorn with uvicorn workers).

* **Host allow-list** (``PDP_ALLOWED_HOSTS``): a request whose ``Host`` names no allowed host
  gets 400 ``host_not_allowed``. Unset, any host is answered when PEP credentials are
  configured, and only the loopback names (plus ``PDP_PUBLIC_URL``'s host) when they are not:
  a web page cannot then reach an unauthenticated loopback PDP by DNS rebinding (its requests
  carry the attacker's host name).
* **The address actually bound**: without PEP credentials (and without
  ``PDP_ALLOW_UNAUTHENTICATED``) a request that arrived on a non-loopback local address (the
  ASGI scope's ``server``: the socket the connection was accepted on) gets 403 ``not_exposed``
  and an error is logged, whatever ``PDP_HOST`` says: a server bound to ``0.0.0.0`` by
  other means answers only what arrives through loopback.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from pdp.auth import is_loopback
from pdp.errors import HostNotAllowed, NotExposed, PDPError
from pdp.http.responses import error_response
from pdp.settings import Settings

__all__ = ["Exposure", "ExposureMiddleware", "allowed_hosts", "host_of"]

log = logging.getLogger("pdp.http")

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
_MAX_ANSWERED = 256


def allowed_hosts(settings: Settings, authenticated: bool) -> tuple[str, ...]:
    """The ``Host`` names answered (lowercase; ``*`` and ``*.domain`` patterns)."""
    if settings.allowed_hosts:  # unset or empty: the defaults below
        return tuple(h.strip().lower().strip("[]") for h in settings.allowed_hosts)
    if authenticated:
        return ("*",)
    hosts = list(LOOPBACK_HOSTS)
    if settings.public_url:
        hostname = urlsplit(settings.public_url).hostname
        if hostname:
            hosts.append(hostname.lower())
    if not is_loopback(settings.host) and settings.host not in ("0.0.0.0", "::", ""):
        hosts.append(settings.host.lower().strip("[]"))
    return tuple(dict.fromkeys(hosts))


def host_of(value: str) -> str:
    """The host name of a ``Host`` header value (port and IPv6 brackets removed)."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].partition("]")[0]
    return value.rpartition(":")[0] if value.count(":") == 1 else value


def _matches(host: str, patterns: Sequence[str]) -> bool:
    for pattern in patterns:
        if pattern == "*" or pattern == host:
            return True
        if pattern.startswith("*.") and host.endswith(pattern[1:]):
            return True
    return host.startswith("127.") and "127.0.0.1" in patterns


class Exposure:
    """The two checks above, for one served application: :meth:`refusal` says whether a
    request (its ASGI scope: ``server`` and ``headers``) is refused."""

    def __init__(self, settings: Settings, *, authenticated: bool) -> None:
        self.hosts = allowed_hosts(settings, authenticated)
        self.open = authenticated or settings.allow_unauthenticated
        self._everyone = self.open and self.hosts == ("*",)
        self._warned: set[str] = set()
        self._loopback: dict[str, bool] = {}  # per local address (few): no parse per request
        # (local address, Host header) pairs answered: the checks depend on nothing else, and
        # only refusals log (at most _MAX_ANSWERED: beyond, each is checked afresh)
        self._answered: set[tuple[tuple[Any, ...], bytes]] = set()

    def refusal(self, scope: Scope) -> PDPError | None:
        """The error to answer ``scope`` with (logged), or None: it may be answered."""
        if self._everyone:
            return None
        host = b""
        for name, value in scope["headers"]:
            if name == b"host":
                host = value
                break
        server = scope.get("server")
        key = None
        if type(server) is tuple:
            key = (server, host)
            if key in self._answered:
                return None
        refusal = self._refusal(server, host)
        if refusal is None and key is not None and len(self._answered) < _MAX_ANSWERED:
            self._answered.add(key)
        return refusal

    def _refusal(self, server: Any, host_header: bytes) -> PDPError | None:
        if not self.open:
            if server and server[1] is not None and not self._is_loopback(str(server[0])):
                address = str(server[0])
                if address not in self._warned:
                    self._warned.add(address)
                    log.error("refusing requests on %s: no PEP credentials are configured and "
                              "it is not a loopback address (set PDP_API_KEYS, a PEP JWKS or "
                              "PDP_TLS_CLIENT_CA, or PDP_ALLOW_UNAUTHENTICATED=true)", address)
                return NotExposed(
                    "this PDP answers without credentials on loopback addresses only")
        if self.hosts != ("*",):
            host = host_header.decode("latin-1")
            if not _matches(host_of(host), self.hosts):
                log.info("refused a request for host %r (PDP_ALLOWED_HOSTS)", host)
                return HostNotAllowed("the Host header names a host this PDP does not serve "
                                      "(PDP_ALLOWED_HOSTS)")
        return None

    def _is_loopback(self, address: str) -> bool:
        known = self._loopback.get(address)
        if known is None:
            known = is_loopback(address)
            if len(self._loopback) < 64:
                self._loopback[address] = known
        return known


class ExposureMiddleware:
    """:class:`Exposure`'s checks on every HTTP request through the application."""

    def __init__(self, app: ASGIApp, *, exposure: Exposure) -> None:
        self.app = app
        self.exposure = exposure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self.exposure.refusal(scope)
            if refusal is not None:
                await error_response(refusal)(scope, receive, send)
                return
        await self.app(scope, receive, send)
