"""Authenticating PEPs and administrators (AuthZEN 1.0 section 10: the PDP SHOULD authenticate
the PEP, OAuth bearer RECOMMENDED, or an API key; a failure is a 401 with ``WWW-Authenticate``).
Framework-free: the HTTP layer hands over the presented :class:`Credentials` and gets a
:class:`Principal` or an error to answer with.

Two independent credential sets:

* **PEP** (``/access/v1/*``, ``/coaz/v1/*``): hashed API keys (``PDP_API_KEYS``,
  ``PDP_API_KEYS_FILE``; :mod:`pdp.auth.keys`) and, when a JWKS is configured
  (``PDP_PEP_JWKS_URL`` / ``PDP_PEP_JWKS_FILE``), OAuth bearer JWTs with a required scope
  (:mod:`pdp.auth.bearer`).
* **admin** (``/admin/*``): hashed admin API keys (``PDP_ADMIN_API_KEYS``) and the plain
  ``PDP_ADMIN_TOKEN``.

A PEP credential never grants admin and an admin credential is not a PEP credential; one key in
both sets is refused as a configuration error.

A key is sent as ``Authorization: Bearer <key>`` (what existing PEPs and the MCP gateway's
``PDP_GATEWAY_PDP_TOKEN`` send) or as ``X-API-Key: <key>``; with both headers, ``Authorization``
is the one checked. With ``PDP_API_KEY_ANY_SCHEME=true`` (off by default) a PEP key is also
accepted as ``Authorization: <key>`` and ``Authorization: Basic <key>``, the forms the AuthZEN
interop runners send; the key is matched exactly as a bearer key is (constant time against
every configured hash). A bearer that is not a known key, has the three parts of a JWS and meets a
configured JWKS is validated as a JWT.

**Unauthenticated mode.** Without any PEP credential the PDP answers anyone, which is
acceptable only on a loopback address: :func:`check_exposure` refuses other addresses unless
``PDP_ALLOW_UNAUTHENTICATED=true``. Configured credentials are always enforced.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from typing import Literal

from pdp.auth.bearer import JwtAuthenticator
from pdp.auth.keys import ApiKey, ApiKeySet, KeysFile, digest_of, parse_entries
from pdp.errors import (
    AuthenticationFailed,
    ConfigurationError,
    InsufficientScope,
    TokenError,
    UpstreamError,
)
from pdp.settings import Settings, check_public_url
from pdp.tokens import TokenSettings

__all__ = ["ADMIN_REALM", "PEP_REALM", "Authenticator", "Credentials", "Principal",
           "PrincipalKind", "admin_authenticator", "authenticators", "check_exposure",
           "is_loopback", "pep_authenticator"]

log = logging.getLogger("pdp.auth")

PrincipalKind = Literal["api_key", "jwt", "admin"]
PEP_REALM = "authzen"
ADMIN_REALM = "authzen-admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request was authenticated as. ``name`` is for logs, metrics and rate limiting:
    the configured key name, or the JWT's client."""

    name: str
    kind: PrincipalKind

    @property
    def is_pep(self) -> bool:
        return self.kind != "admin"


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a request presented: the ``Authorization`` and ``X-API-Key`` header values."""

    authorization: str | None = None
    api_key: str | None = None

    def presented(self, any_scheme: bool = False) -> tuple[str, bool] | None:
        """The credential and whether it came as a bearer token (None: nothing usable).
        ``any_scheme``: also a bare ``Authorization: <key>`` or ``Basic <key>`` (as a key,
        never as a bearer JWT)."""
        if self.authorization is not None:
            scheme, _, value = self.authorization.strip().partition(" ")
            if scheme.lower() == "bearer" and value.strip():
                return value.strip(), True
            if any_scheme:
                if not value.strip() and scheme:
                    return scheme, False
                if scheme.lower() == "basic" and value.strip():
                    return value.strip(), False
            return None
        if self.api_key is not None and self.api_key.strip():
            return self.api_key.strip(), False
        return None


class Authenticator:
    """One credential set: API keys, and optionally bearer JWTs.

    ``kind`` is the principal kind an API key authenticates as; ``realm`` goes into the
    ``WWW-Authenticate`` challenges.
    """

    def __init__(self, keys: ApiKeySet | KeysFile, *, jwt: JwtAuthenticator | None = None,
                 kind: Literal["api_key", "admin"] = "api_key", realm: str = PEP_REALM,
                 any_scheme: bool = False) -> None:
        self._keys = keys
        self._any_scheme = any_scheme
        # Enforced whenever configured, even if a keys file is later emptied (fail closed).
        self._enabled = isinstance(keys, KeysFile) or bool(keys) or jwt is not None
        self.jwt = jwt
        self.kind: Literal["api_key", "admin"] = kind
        self.realm = realm
        self.missing_challenge = f'Bearer realm="{realm}"'
        self.invalid_challenge = f'Bearer realm="{realm}", error="invalid_token"'

    @property
    def enabled(self) -> bool:
        """Whether any credential is configured."""
        return self._enabled

    @property
    def keys(self) -> ApiKeySet:
        """The API keys in force."""
        keys = self._keys
        return keys.current() if isinstance(keys, KeysFile) else keys

    def _refuse(self, reason: str, *, presented: bool) -> AuthenticationFailed:
        what = "an admin credential" if self.kind == "admin" else "a PEP credential"
        return AuthenticationFailed(
            f"{what} is required (Authorization: Bearer, or X-API-Key)" if not presented
            else f"the credential is not valid; {what} is required",
            challenge=self.invalid_challenge if presented else self.missing_challenge,
            reason=reason)

    def _match(self, credentials: Credentials) -> Principal | tuple[str, bytes]:
        """The principal an API key names, or the bearer token (and its digest) for the JWT
        check; raises the refusal otherwise."""
        presented = credentials.presented(self._any_scheme)
        if presented is None:
            raise self._refuse("no credential" if credentials.authorization is None
                               else "an Authorization header that is not Bearer",
                               presented=False)
        value, bearer = presented
        digest = digest_of(value)
        name = self.keys.match_digest(digest)
        if name is not None:
            return Principal(name, self.kind)
        if self.jwt is None or not bearer or value.count(".") != 2:
            raise self._refuse("an unknown key", presented=True)
        return value, digest

    def authenticate_now(self, credentials: Credentials) -> Principal | None:
        """:meth:`authenticate` where it needs no waiting: the principal of an API key, the
        refusal of a missing or unknown credential, or None for a bearer JWT (whose check
        may fetch keys: await :meth:`authenticate`)."""
        found = self._match(credentials)
        return found if isinstance(found, Principal) else None

    async def authenticate(self, credentials: Credentials) -> Principal:
        """The principal, or :class:`AuthenticationFailed` (401) / :class:`InsufficientScope`
        (403) carrying the ``WWW-Authenticate`` challenge and, in ``reason``, why (for logs;
        never the credential)."""
        found = self._match(credentials)
        if isinstance(found, Principal):
            return found
        value, digest = found
        assert self.jwt is not None
        try:
            return Principal(await self.jwt.authenticate(value, digest), "jwt")
        except TokenError as exc:
            raise self._refuse(f"a refused JWT: {exc.message}", presented=True) from None
        except InsufficientScope as exc:
            scope = self.jwt.scope or ""
            raise InsufficientScope(
                exc.message, challenge=f'Bearer realm="{self.realm}", '
                f'error="insufficient_scope", scope="{scope}"') from None

    async def aclose(self) -> None:
        if self.jwt is not None:
            await self.jwt.aclose()


# -- from the settings ---------------------------------------------------------------------------


def _pep_jwt(settings: Settings) -> JwtAuthenticator | None:
    if not settings.pep_jwks_url and settings.pep_jwks_file is None:
        return None
    if not settings.pep_jwt_issuers:
        raise ConfigurationError("PEP JWTs need PDP_PEP_JWT_ISSUERS (the accepted `iss`)")
    audience = settings.pep_jwt_audience or settings.public_url
    if not audience:
        raise ConfigurationError("PEP JWTs need PDP_PEP_JWT_AUDIENCE (or PDP_PUBLIC_URL): the "
                                 "`aud` they must carry")
    try:
        tokens = TokenSettings(issuers=tuple(settings.pep_jwt_issuers), audience=audience,
                               jwks_url=settings.pep_jwks_url or None,
                               jwks_file=settings.pep_jwks_file,
                               algorithms=tuple(settings.token_algorithms),
                               leeway=settings.token_leeway)
        return JwtAuthenticator(tokens, scope=settings.pep_jwt_scope.strip() or None)
    except (ValueError, UpstreamError) as exc:  # UpstreamError: an unreadable JWKS file
        raise ConfigurationError(f"PEP JWT settings: {exc}") from None


def pep_authenticator(settings: Settings, admin_keys: ApiKeySet | None = None) -> Authenticator:
    """The PEP credentials of ``settings``; :class:`ConfigurationError` if they are malformed.
    A keys file is followed as it changes (:class:`~pdp.auth.keys.KeysFile`); ``admin_keys``
    are the keys it must never contain."""
    keys: ApiKeySet | KeysFile
    try:
        fixed = parse_entries(settings.api_keys, source="PDP_API_KEYS")
        if settings.api_keys_file is not None:
            keys = KeysFile(fixed, settings.api_keys_file, interval=settings.poll_interval,
                            conflicts=admin_keys)
        else:
            keys = ApiKeySet(fixed)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None
    return Authenticator(keys, jwt=_pep_jwt(settings), any_scheme=settings.api_key_any_scheme)


def admin_authenticator(settings: Settings) -> Authenticator:
    """The admin credentials: ``PDP_ADMIN_API_KEYS`` and ``PDP_ADMIN_TOKEN`` (kept in memory
    only as its hash, under the name ``admin-token``)."""
    try:
        keys = parse_entries(settings.admin_api_keys, source="PDP_ADMIN_API_KEYS")
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None
    if settings.admin_token is not None and settings.admin_token.get_secret_value():
        keys += (ApiKey("admin-token", digest_of(settings.admin_token.get_secret_value())),)
    return Authenticator(ApiKeySet(keys), kind="admin", realm=ADMIN_REALM)


def authenticators(settings: Settings) -> tuple[Authenticator, Authenticator]:
    """(PEP, admin), refusing a key configured in both."""
    admin = admin_authenticator(settings)
    pep = pep_authenticator(settings, admin.keys)
    if pep.keys.overlaps(admin.keys):
        raise ConfigurationError("a key is both a PEP key and an admin key: give the admin "
                                 "its own key (`pdp keys new --admin`)")
    return pep, admin


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a bind address) is loopback only: 127.0.0.0/8, ::1, localhost."""
    host = host.strip().strip("[]").lower()
    if host in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(settings: Settings) -> None:
    """Refuse (:class:`ConfigurationError`) to serve without PEP credentials on an address
    other than loopback unless ``PDP_ALLOW_UNAUTHENTICATED=true``. Mutual TLS (a client CA:
    only PEPs holding a certificate it signed can connect) counts as PEP authentication. Also
    checks that the credentials configured are well-formed."""
    pep, _ = authenticators(settings)
    if settings.public_url is not None:
        try:
            check_public_url(settings.public_url)
        except ValueError as exc:
            raise ConfigurationError(f"PDP_PUBLIC_URL: {exc}") from None
    loopback = is_loopback(settings.host)
    if not loopback and settings.public_url is None:
        log.warning("serving on %s without PDP_PUBLIC_URL: the metadata advertises %s, which "
                    "clients elsewhere cannot use; set PDP_PUBLIC_URL", settings.host,
                    settings.base_url())
    if pep.enabled and not loopback and settings.tls_certfile is None:
        if settings.require_tls:
            raise ConfigurationError(
                f"PEP credentials on {settings.host!r} without TLS (PDP_REQUIRE_TLS=true): set "
                "PDP_TLS_CERTFILE / PDP_TLS_KEYFILE, or terminate TLS in front and bind "
                "loopback")
        log.warning("!!! PEP credentials will cross the network IN CLEAR: %s is not a loopback "
                    "address and no TLS is configured (PDP_TLS_CERTFILE). Terminate TLS in "
                    "front of the PDP, or set PDP_REQUIRE_TLS=true to refuse this !!!",
                    settings.host)
    if pep.enabled or settings.tls_client_ca is not None or loopback:
        return
    if settings.allow_unauthenticated:
        log.warning("serving WITHOUT PEP authentication on %s (PDP_ALLOW_UNAUTHENTICATED): "
                    "anyone who can reach it may ask for decisions", settings.host)
        return
    raise ConfigurationError(
        f"no PEP credentials are configured and {settings.host!r} is not a loopback address: "
        "set PDP_API_KEYS (see `pdp keys new`), PDP_PEP_JWKS_URL / PDP_PEP_JWKS_FILE or "
        "PDP_TLS_CLIENT_CA (mutual TLS), or "
        "PDP_ALLOW_UNAUTHENTICATED=true to answer anyone who can reach the port")
