"""RFC 9728 protected-resource metadata and the WWW-Authenticate challenge."""

from __future__ import annotations

import pytest

from pdp.errors import TokenError
from pdp.tokens import protected_resource_metadata, resource_metadata_url, www_authenticate

RESOURCE = "https://mcp.example.com/mcp"
METADATA = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"


def test_the_metadata_document_has_the_rfc_9728_members() -> None:
    assert protected_resource_metadata(RESOURCE, ["https://as.example.com"],
                                       scopes_supported=["crm:read", "crm:write"]) == {
        "resource": RESOURCE,
        "authorization_servers": ["https://as.example.com"],
        "bearer_methods_supported": ["header"],
        "scopes_supported": ["crm:read", "crm:write"],
    }


def test_scopes_are_omitted_unless_given() -> None:
    document = protected_resource_metadata(RESOURCE, ["https://as.example.com"])
    assert "scopes_supported" not in document
    assert document["bearer_methods_supported"] == ["header"]


def test_optional_human_readable_members_are_included_when_given() -> None:
    document = protected_resource_metadata(RESOURCE, [], resource_name="CRM tools",
                                           resource_documentation="https://docs.example.com/")
    assert document["resource_name"] == "CRM tools"
    assert document["resource_documentation"] == "https://docs.example.com/"
    assert "authorization_servers" not in document


@pytest.mark.parametrize("resource", ["http://mcp.example.com/mcp", "https://mcp.example.com#x",
                                      "mcp.example.com", "ftp://mcp.example.com/"])
def test_a_resource_that_is_not_an_https_url_without_fragment_is_refused(resource: str) -> None:
    with pytest.raises(ValueError):
        protected_resource_metadata(resource, ["https://as.example.com"])


def test_a_loopback_resource_may_use_http() -> None:
    assert protected_resource_metadata("http://127.0.0.1:8080/mcp", [])["resource"] == \
        "http://127.0.0.1:8080/mcp"


def test_one_string_is_not_a_list_of_authorization_servers() -> None:
    with pytest.raises(TypeError):
        protected_resource_metadata(RESOURCE, "https://as.example.com")


def test_unknown_bearer_methods_are_refused() -> None:
    with pytest.raises(ValueError):
        protected_resource_metadata(RESOURCE, [], bearer_methods_supported=["cookie"])


@pytest.mark.parametrize(("resource", "url"), [
    (RESOURCE, METADATA),
    ("https://mcp.example.com", "https://mcp.example.com/.well-known/oauth-protected-resource"),
    ("https://mcp.example.com/", "https://mcp.example.com/.well-known/oauth-protected-resource"),
    ("https://mcp.example.com:8443/a/b?t=1",
     "https://mcp.example.com:8443/.well-known/oauth-protected-resource/a/b?t=1"),
])
def test_the_metadata_url_inserts_the_well_known_path(resource: str, url: str) -> None:
    assert resource_metadata_url(resource) == url


def test_the_challenge_for_an_invalid_token_names_only_the_error_and_the_metadata() -> None:
    assert www_authenticate(METADATA) == \
        f'Bearer error="invalid_token", resource_metadata="{METADATA}"'


def test_the_challenge_never_carries_the_reason_a_token_failed() -> None:
    reason = TokenError("no RS256 signing key with kid 'rsa-9'").message
    header = www_authenticate(METADATA)
    assert "error_description" not in header and reason not in header and "kid" not in header


def test_the_challenge_for_a_missing_token_has_no_error() -> None:
    assert www_authenticate(METADATA, error=None) == f'Bearer resource_metadata="{METADATA}"'


def test_the_challenge_for_insufficient_scope_names_the_scope() -> None:
    assert www_authenticate(METADATA, error="insufficient_scope", scope="crm:write") == \
        f'Bearer error="insufficient_scope", scope="crm:write", resource_metadata="{METADATA}"'


@pytest.mark.parametrize("url", ['https://x/"', "https://x/\\", "https://x/\r\nSet-Cookie: a"])
def test_values_that_would_break_the_header_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        www_authenticate(url)
