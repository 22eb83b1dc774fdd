"""The COAZ parts the settings configure (docs/settings.md: ``PDP_COAZ_*``, ``PDP_TOKEN_*``):
the method table, the mapping options of one MCP server and the token validation settings.
Each call reads the :class:`~pdp.settings.Settings` it is given; nothing reads the
environment."""

from __future__ import annotations

from pydantic import SecretStr

from pdp.coaz import MappingOptions
from pdp.coaz.methods import MethodTable
from pdp.errors import MappingError
from pdp.settings import Settings
from pdp.tokens import IntrospectionSettings, IssuerSettings, TokenSettings

__all__ = ["mapping_options", "method_table", "token_settings"]


def method_table(settings: Settings) -> MethodTable | None:
    """The deployment's method table (``PDP_COAZ_METHODS``), compiled; ValueError if an entry
    cannot be used."""
    if not settings.coaz_methods:
        return None
    try:
        return MethodTable.compile(settings.coaz_methods)
    except MappingError as exc:
        raise ValueError(f"PDP_COAZ_METHODS: {exc.message}") from None


def mapping_options(settings: Settings, resource: str | None,
                    methods: MethodTable | None = None) -> MappingOptions:
    return MappingOptions(server_resource=resource, methods=methods,
                          identity_claim=settings.coaz_identity_claim,
                          client_subject_type=settings.coaz_client_subject_type,
                          client_claims=tuple(settings.coaz_client_claims),
                          sub_is_client=settings.coaz_sub_is_client,
                          deny_code_binding=settings.coaz_deny_code_binding,
                          deny_code_sep=settings.coaz_deny_code_sep)


def _introspection(url: str | None, client_id: str | None, secret: SecretStr | None,
                   client_auth: str, require_audience: bool) -> IntrospectionSettings | None:
    if url is None:
        return None
    if not client_id or secret is None:
        raise ValueError(f"introspection at {url} needs a client id and secret")
    return IntrospectionSettings(endpoint=url, client_id=client_id,
                                 client_secret=secret.get_secret_value(),
                                 require_audience=require_audience, client_auth=client_auth)


def token_settings(settings: Settings, audience: str | None) -> TokenSettings:
    """Token validation from the ``PDP_TOKEN_*`` settings (ValueError if they are incomplete).
    ``audience`` ``None``: each validation names its audience."""
    issuers = tuple(settings.token_issuers or settings.authorization_servers)
    more = tuple(
        IssuerSettings(issuer=i.issuer, jwks_url=i.jwks_url, jwks_file=i.jwks_file,
                       introspection=_introspection(
                           i.introspection_url, i.introspection_client_id,
                           i.introspection_client_secret, i.introspection_client_auth,
                           i.introspection_require_audience))
        for i in settings.token_more_issuers)
    return TokenSettings(
        issuers=issuers, audience=audience, jwks_url=settings.token_jwks_url,
        jwks_file=settings.token_jwks_file, algorithms=tuple(settings.token_algorithms),
        leeway=settings.token_leeway, token_types=tuple(settings.token_types),
        introspection=_introspection(
            settings.token_introspection_url, settings.token_introspection_client_id,
            settings.token_introspection_client_secret,
            settings.token_introspection_client_auth,
            settings.token_introspection_require_audience),
        more_issuers=more, cache_seconds=settings.token_cache_seconds)
