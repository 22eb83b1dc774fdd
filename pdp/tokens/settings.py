"""Settings of access-token validation (docs/spec/coaz.md, "Both dialects: the access token").

Frozen, typed values (:class:`pdp.settings.SettingsModel`) built once at the edge from
:class:`pdp.settings.Settings` (``pdp.gateway.runtime.token_settings``, ``pdp.auth``); nothing
here reads the environment. Invalid values raise :class:`pdp.errors.InvalidSettings`.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from pdp.settings import SettingsModel

__all__ = ["ACCESS_TOKEN_TYPES", "DEFAULT_ALGORITHMS", "ID_JAG_TYPE", "SUPPORTED_ALGORITHMS",
           "IntrospectionSettings", "IssuerSettings", "TokenSettings", "check_fetch_url",
           "media_type"]

#: The JOSE ``typ`` values of an access token by default: RFC 9068's ``at+jwt`` and the generic
#: ``JWT`` many authorization servers still put there.
ACCESS_TOKEN_TYPES: tuple[str, ...] = ("at+jwt", "JWT")

#: The ``typ`` of an Identity Assertion JWT Authorization Grant (enterprise-managed
#: authorization): a grant to exchange at a token endpoint, never an access token.
ID_JAG_TYPE = "oauth-id-jag+jwt"


def media_type(value: str) -> str:
    """A ``typ`` value compared as RFC 7515 §4.1.9 says: case-insensitively, with an omitted
    ``application/`` prefix."""
    value = value.strip().lower()
    return value.removeprefix("application/")

#: Accepted signature algorithms unless configured otherwise: asymmetric only.
DEFAULT_ALGORITHMS: tuple[str, ...] = ("RS256", "PS256", "ES256", "EdDSA")

#: Every algorithm that may be configured. ``none`` and ``HS*`` are refused unless listed
#: explicitly in :attr:`TokenSettings.algorithms`.
SUPPORTED_ALGORITHMS: frozenset[str] = frozenset({
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
    "EdDSA", "Ed25519", "Ed448", "HS256", "HS384", "HS512", "none",
})


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_fetch_url(url: str, what: str) -> str:
    """``url`` if it is an absolute https URL (http only to a loopback host); else ValueError."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not host or parts.scheme not in ("https", "http"):
        raise ValueError(f"{what} must be an absolute https URL: {url!r}")
    if parts.scheme == "http" and not _is_loopback(host):
        raise ValueError(f"{what} must use https (http only for a loopback host): {url!r}")
    return url


class IntrospectionSettings(SettingsModel):
    """RFC 7662 token introspection for opaque tokens.

    The PDP authenticates to ``endpoint`` as ``client_id`` with ``client_secret``, sent as
    HTTP Basic (``client_auth="client_secret_basic"``, the default) or in the form body
    (``"client_secret_post"``). With ``require_audience`` the response must carry an ``aud``
    that names this server; without it an absent ``aud`` is accepted (a present one must still
    name this server).
    """

    endpoint: str = Field(description="The introspection endpoint (https; http only to a "
                          "loopback host).")
    client_id: str = Field(description="The client id this server authenticates to the "
                           "endpoint with.")
    client_secret: str = Field(repr=False, description="Its client secret.")
    require_audience: bool = Field(default=True, description="Refuse an answer without "
                                   "`aud` (a present `aud` must always name this server).")
    client_auth: str = Field(
        default="client_secret_basic", description="How the client authenticates: "
        "client_secret_basic (HTTP Basic) or client_secret_post (in the form body).")

    @field_validator("endpoint")
    @classmethod
    def _fetchable(cls, value: str) -> str:
        return check_fetch_url(value, "introspection endpoint")

    @field_validator("client_id")
    @classmethod
    def _named_client(cls, value: str) -> str:
        if not value:
            raise ValueError("introspection needs a client_id")
        return value

    @field_validator("client_auth")
    @classmethod
    def _known_client_auth(cls, value: str) -> str:
        if value not in ("client_secret_basic", "client_secret_post"):
            raise ValueError("introspection client_auth must be client_secret_basic or "
                             "client_secret_post")
        return value


class IssuerSettings(SettingsModel):
    """One more authorization server with its own key source: its ``issuer`` (the ``iss`` of
    its tokens) and a JWKS (URL or file) or an introspection endpoint, or both."""

    issuer: str = Field(description="The `iss` of its tokens.")
    jwks_url: str | None = Field(default=None, description="Its JWKS URL (https; http only "
                                 "to a loopback host).")
    jwks_file: Path | None = Field(default=None, description="Its JWKS file.")
    introspection: IntrospectionSettings | None = Field(
        default=None, description="Its RFC 7662 introspection endpoint, for opaque tokens.")

    @model_validator(mode="after")
    def _one_key_source(self) -> IssuerSettings:
        if not self.issuer:
            raise ValueError("an issuer needs its 'iss' value")
        if self.jwks_url is not None and self.jwks_file is not None:
            raise ValueError(f"issuer {self.issuer}: configure jwks_url or jwks_file, not both")
        if self.jwks_url is None and self.jwks_file is None and self.introspection is None:
            raise ValueError(f"issuer {self.issuer}: configure a JWKS (URL or file) or "
                             "introspection")
        if self.jwks_url is not None:
            check_fetch_url(self.jwks_url, "jwks_url")
        return self


class TokenSettings(SettingsModel):
    """How access tokens for this server are validated (each field's description says what
    it is). A JWKS URL is fetched with httpx, cached for ``jwks_cache_ttl`` seconds and
    fetched again when a token names an unknown ``kid``; fetches are at least
    ``jwks_min_refresh_interval`` seconds apart. A JWKS file is read at start and read again
    on an unknown ``kid`` (same rate bound). A JWT is verified with the key source of the
    issuer its (not yet verified) ``iss`` names; a JWT whose ``iss`` no configured issuer has
    is refused before any key is fetched.
    """

    issuers: tuple[str, ...] = Field(description="Accepted `iss` values (one or more "
                                     "authorization servers); one may be given as a string.")
    audience: str | None = Field(description="This server's resource identifier: `aud` must "
                                 "contain it (RFC 8707). None: every validation names its "
                                 "audience.")
    jwks_url: str | None = Field(default=None, description="The issuers' JWKS URL (https; "
                                 "http only to a loopback host).")
    jwks_file: Path | None = Field(default=None, description="The issuers' JWKS file.")
    algorithms: tuple[str, ...] = Field(
        default=DEFAULT_ALGORITHMS, description="Accepted `alg` values; `none` and `HS*` are "
        "accepted only when listed here.")
    leeway: int = Field(default=30, description="Seconds of clock skew tolerated for `exp`, "
                        "`nbf` and `iat` (0 to 300).")
    token_types: tuple[str, ...] | None = Field(
        default=None, description="If set, the accepted JOSE `typ` values (e.g. at+jwt, JWT; "
        "RFC 9068), compared as media types; a token without `typ` is then refused. None: "
        "any. An ID-JAG's type can never be listed.")
    introspection: IntrospectionSettings | None = Field(
        default=None, description="RFC 7662 introspection for tokens that are not JWTs (for "
        "every token when no JWKS is configured).")
    jwks_cache_ttl: float = Field(default=600.0, description="Seconds a fetched JWKS is "
                                  "used before it is fetched again.")
    jwks_min_refresh_interval: float = Field(
        default=30.0, description="Least seconds between two fetches of a JWKS.")
    http_timeout: float = Field(default=5.0, description="Seconds a JWKS fetch or an "
                                "introspection may take.")
    max_jwks_bytes: int = Field(default=1_048_576, description="Largest JWKS document "
                                "accepted, in bytes.")
    more_issuers: tuple[IssuerSettings, ...] = Field(
        default=(), description="Further authorization servers, each with its own key source.")
    cache_seconds: float = Field(
        default=10.0, description="How long an accepted token's validation is remembered "
        "(introspection answers here, validated claims by callers that cache): a revoked "
        "token is refused at most this many seconds later. 0: not remembered (0 to 3600).")

    @field_validator("issuers", mode="before")
    @classmethod
    def _one_issuer_as_a_string(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value

    @field_validator("token_types")
    @classmethod
    def _media_types(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        types = tuple(media_type(t) for t in value)
        if not types or not all(types):
            raise ValueError("token_types must list at least one type (or be None: any)")
        if media_type(ID_JAG_TYPE) in types:
            raise ValueError(f"{ID_JAG_TYPE} is an authorization grant, never an access "
                             "token: it cannot be an accepted token type")
        return types

    @model_validator(mode="after")
    def _consistent(self) -> TokenSettings:
        if not self.issuers or not all(self.issuers):
            raise ValueError("at least one issuer is required")
        if self.audience is not None and not self.audience:
            raise ValueError("the audience (this server's resource identifier) is required")
        if self.jwks_url is not None and self.jwks_file is not None:
            raise ValueError("configure jwks_url or jwks_file, not both")
        if self.jwks_url is None and self.jwks_file is None and self.introspection is None:
            raise ValueError("configure a JWKS (URL or file) or introspection")
        if self.jwks_url is not None:
            check_fetch_url(self.jwks_url, "jwks_url")
        if not self.algorithms:
            raise ValueError("at least one algorithm is required")
        unknown = sorted(set(self.algorithms) - SUPPORTED_ALGORITHMS)
        if unknown:
            raise ValueError(f"unsupported algorithms: {', '.join(unknown)}")
        if self.leeway < 0 or self.leeway > 300:
            raise ValueError("leeway must be between 0 and 300 seconds")
        if self.jwks_cache_ttl <= 0 or self.jwks_min_refresh_interval < 0:
            raise ValueError("jwks_cache_ttl must be positive, jwks_min_refresh_interval >= 0")
        if self.http_timeout <= 0:
            raise ValueError("http_timeout must be positive")
        if not 0 <= self.cache_seconds <= 3600:
            raise ValueError("cache_seconds must be between 0 and 3600")
        seen = set(self.issuers)
        for extra in self.more_issuers:
            if extra.issuer in seen:
                raise ValueError(f"issuer {extra.issuer} is configured twice")
            seen.add(extra.issuer)
        return self
