"""Token settings: what may and may not be configured."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pdp.errors import InvalidSettings
from pdp.tokens import DEFAULT_ALGORITHMS, IntrospectionSettings, TokenSettings

BASE: dict[str, Any] = {"issuers": ("https://as.example.com",),
                        "audience": "https://mcp.example.com/mcp",
                        "jwks_url": "https://as.example.com/jwks.json"}


def test_the_default_algorithms_are_asymmetric_only() -> None:
    settings = TokenSettings(**BASE)
    assert settings.algorithms == DEFAULT_ALGORITHMS == ("RS256", "PS256", "ES256", "EdDSA")
    assert not any(a == "none" or a.startswith("HS") for a in settings.algorithms)


def test_one_issuer_may_be_given_as_a_string() -> None:
    assert TokenSettings(**{**BASE, "issuers": "https://as.example.com"}).issuers == (
        "https://as.example.com",)


@pytest.mark.parametrize("overrides", [
    {"issuers": ()},
    {"audience": ""},
    {"jwks_url": None},
    {"jwks_url": "http://as.example.com/jwks.json"},
    {"jwks_url": "file:///etc/jwks.json"},
    {"jwks_file": Path("jwks.json")},
    {"algorithms": ()},
    {"algorithms": ("RS256", "XX999")},
    {"leeway": -1},
    {"leeway": 3600},
    {"jwks_cache_ttl": 0},
    {"http_timeout": 0},
])
def test_invalid_settings_are_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(InvalidSettings, match="^TokenSettings: "):
        TokenSettings(**{**BASE, **overrides})


def test_a_refusal_says_what_is_wrong() -> None:
    with pytest.raises(InvalidSettings) as refused:
        TokenSettings(**{**BASE, "leeway": 3600})
    assert refused.value.message == "TokenSettings: leeway must be between 0 and 300 seconds"
    with pytest.raises(InvalidSettings, match="introspection client_auth must be"):
        IntrospectionSettings(endpoint="https://as.example.com/introspect", client_id="pdp",
                              client_secret="s", client_auth="private_key_jwt")


def test_the_client_secret_is_not_shown() -> None:
    introspection = IntrospectionSettings(endpoint="https://as.example.com/introspect",
                                          client_id="pdp", client_secret="hunter2")
    assert "hunter2" not in repr(introspection)


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/jwks", "http://localhost/jwks",
                                 "http://[::1]:8/jwks"])
def test_plain_http_is_allowed_only_to_a_loopback_host(url: str) -> None:
    assert TokenSettings(**{**BASE, "jwks_url": url}).jwks_url == url


def test_introspection_alone_is_enough() -> None:
    introspection = IntrospectionSettings(endpoint="https://as.example.com/introspect",
                                          client_id="pdp", client_secret="s")
    settings = TokenSettings(issuers=BASE["issuers"], audience=BASE["audience"],
                             introspection=introspection)
    assert settings.jwks_url is None and settings.jwks_file is None


def test_an_introspection_endpoint_must_be_https() -> None:
    with pytest.raises(InvalidSettings, match="must use https"):
        IntrospectionSettings(endpoint="http://as.example.com/introspect", client_id="pdp",
                              client_secret="s")
