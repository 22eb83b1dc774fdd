"""The access-token flags ``pdp serve`` (for ``/coaz/v1/*``) and ``pdp gateway`` share: which
tokens are accepted, how they are validated and how long an accepted one is remembered. Each
flag sets one ``PDP_*`` setting and wins over it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["add_token_flags", "token_environment", "token_overrides"]

# flag → (setting name, whether the value is a comma-separated list)
_FLAGS: dict[str, tuple[str, bool]] = {
    "resource": ("resource_id", False),
    "authorization_server": ("authorization_servers", True),
    "issuer": ("token_issuers", True),
    "jwks_url": ("token_jwks_url", False),
    "jwks_file": ("token_jwks_file", False),
    "algorithms": ("token_algorithms", True),
    "token_types": ("token_types", True),
    "introspection_url": ("token_introspection_url", False),
    "introspection_client_id": ("token_introspection_client_id", False),
    "introspection_client_secret": ("token_introspection_client_secret", False),
    "introspection_client_auth": ("token_introspection_client_auth", False),
    "introspection_audience": ("token_introspection_require_audience", False),
    "token_cache_seconds": ("token_cache_seconds", False),
}


def add_token_flags(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("access tokens (see docs/coaz-deployment.md)")
    g.add_argument("--resource", help="resource identifier tokens must be issued for "
                   "(PDP_RESOURCE_ID)")
    g.add_argument("--authorization-server", action="append",
                   help="authorization server issuer URL, repeatable (PDP_AUTHORIZATION_SERVERS)")
    g.add_argument("--issuer", action="append",
                   help="accepted token issuer, repeatable (PDP_TOKEN_ISSUERS, default the "
                   "authorization servers)")
    g.add_argument("--jwks-url", help="issuer JWKS URL (PDP_TOKEN_JWKS_URL)")
    g.add_argument("--jwks-file", type=Path, help="issuer JWKS file (PDP_TOKEN_JWKS_FILE)")
    g.add_argument("--algorithms", help="accepted JWS algorithms, comma-separated "
                   "(PDP_TOKEN_ALGORITHMS, default RS256,PS256,ES256,EdDSA)")
    g.add_argument("--token-types", help="accepted JWT typ values, comma-separated "
                   "(PDP_TOKEN_TYPES, default at+jwt,JWT)")
    g.add_argument("--introspection-url", help="RFC 7662 introspection endpoint for opaque "
                   "tokens (PDP_TOKEN_INTROSPECTION_URL)")
    g.add_argument("--introspection-client-id",
                   help="client id at the introspection endpoint "
                   "(PDP_TOKEN_INTROSPECTION_CLIENT_ID)")
    g.add_argument("--introspection-client-secret",
                   help="its secret (prefer PDP_TOKEN_INTROSPECTION_CLIENT_SECRET)")
    g.add_argument("--introspection-client-auth",
                   choices=["client_secret_basic", "client_secret_post"],
                   help="how to authenticate to the introspection endpoint "
                   "(PDP_TOKEN_INTROSPECTION_CLIENT_AUTH, default client_secret_basic)")
    g.add_argument("--introspection-audience", choices=["required", "optional"],
                   help="whether an introspection answer must carry aud "
                   "(PDP_TOKEN_INTROSPECTION_REQUIRE_AUDIENCE, default required)")
    g.add_argument("--token-cache-seconds", type=float,
                   help="seconds an accepted token is remembered: revocation is seen within "
                   "it (PDP_TOKEN_CACHE_SECONDS, default 10)")


def _value(flag: str, raw: Any) -> Any:
    if flag == "introspection_audience":
        return raw == "required"
    return raw


def token_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings the token flags given set (lists split at commas)."""
    out: dict[str, Any] = {}
    for flag, (name, is_list) in _FLAGS.items():
        raw = getattr(args, flag, None)
        if raw is None:
            continue
        if is_list:
            parts = raw if isinstance(raw, list) else [raw]
            raw = [p.strip() for part in parts for p in str(part).split(",") if p.strip()]
        out[name] = _value(flag, raw)
    return out


def token_environment(args: argparse.Namespace) -> dict[str, str]:
    """The same as ``PDP_*`` environment values (for worker processes)."""
    out: dict[str, str] = {}
    for name, value in token_overrides(args).items():
        if isinstance(value, list):
            value = ",".join(value)
        elif isinstance(value, bool):
            value = "true" if value else "false"
        out[f"PDP_{name.upper()}"] = str(value)
    return out
