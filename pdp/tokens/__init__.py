"""Access-token validation for COAZ (docs/spec/coaz.md, "Both dialects: the access token") and the
RFC 9728 / RFC 6750 pieces an MCP server needs to ask for one. Framework-free::

    settings = TokenSettings(issuers=("https://as.example.com",),
                             audience="https://mcp.example.com/mcp",
                             jwks_url="https://as.example.com/jwks.json")
    async with TokenValidator(settings) as validator:
        try:
            claims = await validator.validate(token)
        except TokenError as error:
            log.info("token refused: %s", error.message)           # details: logs only
            header = www_authenticate(resource_metadata_url(settings.audience))  # 401
"""

from pdp.tokens.errors import CacheMiss
from pdp.tokens.jwks import JWKSCache, KeySnapshot, parse_jwks
from pdp.tokens.metadata import (
    WELL_KNOWN_PATH,
    protected_resource_metadata,
    resource_metadata_url,
    www_authenticate,
)
from pdp.tokens.settings import (
    ACCESS_TOKEN_TYPES,
    DEFAULT_ALGORITHMS,
    ID_JAG_TYPE,
    SUPPORTED_ALGORITHMS,
    IntrospectionSettings,
    IssuerSettings,
    TokenSettings,
)
from pdp.tokens.validator import TokenValidator

__all__ = [
    "ACCESS_TOKEN_TYPES",
    "CacheMiss",
    "DEFAULT_ALGORITHMS",
    "ID_JAG_TYPE",
    "IntrospectionSettings",
    "IssuerSettings",
    "JWKSCache",
    "KeySnapshot",
    "SUPPORTED_ALGORITHMS",
    "TokenSettings",
    "TokenValidator",
    "WELL_KNOWN_PATH",
    "parse_jwks",
    "protected_resource_metadata",
    "resource_metadata_url",
    "www_authenticate",
]
