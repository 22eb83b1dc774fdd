"""OAuth 2.0 Protected Resource Metadata (RFC 9728) and the ``WWW-Authenticate`` challenge
(RFC 6750 §3, RFC 9728 §5.1) an MCP server answers a missing or invalid token with
(docs/spec/coaz.md, "Both dialects: the access token": 401 with ``WWW-Authenticate: Bearer``, no
detail that helps an attacker).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pdp.tokens.settings import check_fetch_url

__all__ = ["WELL_KNOWN_PATH", "protected_resource_metadata", "resource_metadata_url",
           "www_authenticate"]

#: RFC 9728 §3: the well-known path segment of the metadata document.
WELL_KNOWN_PATH = "/.well-known/oauth-protected-resource"

_BEARER_METHODS = frozenset({"header", "body", "query"})


def _resource_identifier(resource: str) -> str:
    check_fetch_url(resource, "resource")
    if urlsplit(resource).fragment or "#" in resource:
        raise ValueError(f"resource must not have a fragment: {resource!r}")
    return resource


def resource_metadata_url(resource: str) -> str:
    """Where the metadata of ``resource`` lives (RFC 9728 §3.1): the well-known path inserted
    between the host and the resource's path, e.g. ``https://h/mcp`` →
    ``https://h/.well-known/oauth-protected-resource/mcp``."""
    parts = urlsplit(_resource_identifier(resource))
    path = parts.path if parts.path != "/" else ""
    return urlunsplit((parts.scheme, parts.netloc, WELL_KNOWN_PATH + path, parts.query, ""))


def protected_resource_metadata(resource: str, authorization_servers: Sequence[str], *,
                                scopes_supported: Sequence[str] | None = None,
                                bearer_methods_supported: Sequence[str] = ("header",),
                                resource_name: str | None = None,
                                resource_documentation: str | None = None) -> dict[str, Any]:
    """The RFC 9728 metadata document of ``resource`` (an https URL without fragment).

    ``authorization_servers`` are issuer identifiers; ``bearer_methods_supported`` defaults to
    ``["header"]`` (the only method MCP allows); ``scopes_supported`` is omitted when ``None``.
    """
    if isinstance(authorization_servers, str):
        raise TypeError("authorization_servers is a sequence of issuer URLs, not one string")
    document: dict[str, Any] = {"resource": _resource_identifier(resource)}
    servers = [check_fetch_url(s, "authorization server") for s in authorization_servers]
    if servers:
        document["authorization_servers"] = servers
    methods = list(bearer_methods_supported)
    unknown = sorted(set(methods) - _BEARER_METHODS)
    if unknown:
        raise ValueError(f"unknown bearer methods: {', '.join(unknown)}")
    document["bearer_methods_supported"] = methods
    if scopes_supported is not None:
        document["scopes_supported"] = list(scopes_supported)
    if resource_name is not None:
        document["resource_name"] = resource_name
    if resource_documentation is not None:
        document["resource_documentation"] = check_fetch_url(resource_documentation,
                                                             "resource_documentation")
    return document


def _quoted(value: str, what: str) -> str:
    if any(c in value for c in '"\\') or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError(f"{what} cannot be put in a quoted string: {value!r}")
    return f'"{value}"'


def www_authenticate(resource_metadata: str, *,
                     error: Literal["invalid_token", "insufficient_scope"] | None = "invalid_token",
                     scope: str | None = None) -> str:
    """The ``WWW-Authenticate`` value of a 401 (or, with ``insufficient_scope``, a 403).

    ``resource_metadata`` is the metadata URL (:func:`resource_metadata_url`). ``error`` is
    ``None`` when the request carried no token at all (RFC 6750 §3.1). No
    ``error_description`` is ever included: why a token failed is for the logs only.
    """
    params = []
    if error is not None:
        if error not in ("invalid_token", "insufficient_scope"):
            raise ValueError(f"unexpected error code {error!r}")
        params.append(f"error={_quoted(error, 'error')}")
    if scope is not None:
        params.append(f"scope={_quoted(scope, 'scope')}")
    params.append(f"resource_metadata={_quoted(resource_metadata, 'resource_metadata')}")
    return "Bearer " + ", ".join(params)
