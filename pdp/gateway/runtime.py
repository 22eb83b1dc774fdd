"""The gateway's parts, wired once from :class:`~pdp.settings.Settings` (docs/spec/coaz.md; MCP
"Authorization"; RFC 9728).

:class:`GatewayConfig` is the resolved configuration (URLs, resource identifier, limits);
:class:`Gateway` holds what the ASGI application uses: the authenticator (token validation),
the authorizer (mapping + decider), the upstream, the tool store and the session bindings.
Network clients are created here and closed by :meth:`Gateway.lifespan`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from pydantic import Field
from starlette.requests import Request

from pdp.coaz import DenialStyle, MappingOptions
from pdp.coaz_service import (
    CoazCore,
    Decider,
    LocalDecider,
    mapping_options,
    method_table,
    token_settings,
)
from pdp.errors import BodyTooLarge
from pdp.gateway.auth import Authenticator, ClaimsValidator
from pdp.gateway.authorize import Authorizer, Rejection
from pdp.gateway.catalog import ToolStore, load_tools_file
from pdp.gateway.http1 import Http1Client
from pdp.gateway.jsonrpc import error_status
from pdp.gateway.origin import origin_of
from pdp.gateway.remote import RemoteDecider
from pdp.gateway.sessions import SessionBindings, principal_of
from pdp.gateway.upstream import HttpxTransport, Transport, Upstream
from pdp.settings import Settings, SettingsModel
from pdp.tokens import (
    TokenValidator,
    protected_resource_metadata,
    resource_metadata_url,
    www_authenticate,
)

__all__ = ["GatewayConfig", "Gateway"]

log = logging.getLogger("pdp.gateway")


class GatewayConfig(SettingsModel):
    """What the gateway takes from :class:`pdp.settings.Settings` (built by
    :meth:`from_settings`, which derives the public URL and resource)."""

    upstream: str = Field(description="The upstream MCP server's URL (PDP_GATEWAY_UPSTREAM).")
    public_url: str = Field(description="The gateway's public origin.")
    path: str = Field(description="The MCP endpoint's path.")
    resource: str = Field(description="The protected resource identifier (RFC 9728).")
    authorization_servers: tuple[str, ...] = Field(description="Authorization servers "
                                                   "advertised in the resource metadata.")
    max_body_bytes: int = Field(ge=1, description="Largest request body accepted.")
    max_batch: int = Field(ge=1, description="Most messages in one JSON-RPC batch.")
    upstream_timeout: float = Field(gt=0, description="Seconds an upstream call may take.")
    tools_file: Path | None = Field(description="A tools/list answer read from a file "
                                    "instead of the upstream.")
    tools_ttl: float = Field(default=300.0, description="Seconds a fetched tool list is kept.")
    allowed_origins: tuple[str, ...] = Field(default=(), description="Origins allowed to call "
                                             "the gateway from a browser.")
    cors: bool = Field(default=False, description="Answer CORS preflight requests.")
    filter_tools: bool = Field(default=False, description="Hide from tools/list the tools "
                               "the caller may not call.")

    @classmethod
    def from_settings(cls, settings: Settings) -> GatewayConfig:
        if not settings.gateway_upstream:
            raise ValueError("the upstream MCP server is not set (PDP_GATEWAY_UPSTREAM / "
                             "--upstream)")
        path = "/" + settings.gateway_path.strip("/")
        if settings.gateway_public_url:
            public = settings.gateway_public_url.rstrip("/")
        else:
            host = settings.gateway_host
            host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
            public = f"http://{host}:{settings.gateway_port}"
        resource = settings.resource_id or public + path
        resource_metadata_url(resource)  # ValueError unless https (http only on loopback)
        return cls(upstream=settings.gateway_upstream, public_url=public, path=path,
                   resource=resource,
                   authorization_servers=tuple(settings.authorization_servers),
                   max_body_bytes=settings.gateway_max_body_bytes,
                   max_batch=settings.gateway_max_batch,
                   upstream_timeout=settings.gateway_upstream_timeout,
                   tools_file=settings.gateway_tools_file,
                   tools_ttl=settings.gateway_tools_ttl,
                   allowed_origins=tuple(
                       o if o == "null" else origin_of(o)
                       for o in settings.gateway_allowed_origins or [public]),
                   cors=settings.gateway_cors,
                   filter_tools=settings.gateway_filter_tools)

    @property
    def resource_metadata_url(self) -> str:
        return resource_metadata_url(self.resource)


class Gateway:
    def __init__(self, config: GatewayConfig, *, validator: ClaimsValidator,
                 decider: Decider, upstream: Upstream, options: MappingOptions,
                 closers: tuple[Any, ...] = (), token_cache_seconds: float = 10.0,
                 denial_style: DenialStyle | None = None,
                 scopes_supported: tuple[str, ...] | None = None) -> None:
        self.config = config
        self.options = options
        metadata_url = config.resource_metadata_url
        self.authenticator = Authenticator(
            validator, missing_header=www_authenticate(metadata_url, error=None),
            invalid_header=www_authenticate(metadata_url), cache_seconds=token_cache_seconds)
        self.tools = ToolStore(config.resource, tools_file=config.tools_file,
                               ttl=config.tools_ttl)
        self.authorizer = Authorizer(CoazCore(decider, options, style=denial_style),
                                     self.tools)
        self.upstream = upstream
        self.sessions = SessionBindings()
        self.resource_metadata = protected_resource_metadata(
            config.resource, config.authorization_servers, scopes_supported=scopes_supported)
        self._closers = (upstream, decider, *closers)

    @classmethod
    def from_settings(cls, settings: Settings, *, decider: Decider | None = None,
                      upstream_client: httpx.AsyncClient | None = None,
                      pdp_client: httpx.AsyncClient | None = None) -> Gateway:
        """Everything from settings: the in-process engine unless ``gateway_pdp_url``.
        ``decider`` and the HTTP clients may be given instead (tests, embedding)."""
        config = GatewayConfig.from_settings(settings)
        # everything that can be refused is checked before anything is opened
        tokens = token_settings(settings, config.resource)
        methods = method_table(settings)
        protected_resource_metadata(config.resource, config.authorization_servers)
        if config.tools_file is not None:
            load_tools_file(config.tools_file)
        t = config.upstream_timeout
        transport: Transport = (HttpxTransport(upstream_client, config.upstream)
                                if upstream_client is not None
                                else Http1Client(config.upstream, connect_timeout=t))
        if decider is not None:
            pass
        elif settings.gateway_pdp_url:
            timeout = settings.gateway_pdp_timeout
            decider = RemoteDecider(
                pdp_client or httpx.AsyncClient(
                    timeout=httpx.Timeout(timeout),
                    limits=httpx.Limits(max_keepalive_connections=64)),
                settings.gateway_pdp_url,
                token=(settings.gateway_pdp_token.get_secret_value()
                       if settings.gateway_pdp_token else None))
        else:
            from pdp.service import PDPService

            decider = LocalDecider(PDPService.from_settings(settings))
        upstream = Upstream(
            config.upstream, transport,
            token=(settings.gateway_upstream_token.get_secret_value()
                   if settings.gateway_upstream_token else None),
            timeout=t)
        validator = TokenValidator(tokens)
        return cls(config, validator=validator, decider=decider, upstream=upstream,
                   options=mapping_options(settings, config.resource, methods),
                   closers=(validator,),
                   token_cache_seconds=settings.token_cache_seconds,
                   denial_style=DenialStyle(explain=settings.explain,
                                            as_tool_result=settings.gateway_deny_as_tool_result),
                   scopes_supported=(tuple(settings.scopes_supported)
                                     if settings.scopes_supported is not None else None))

    def rejection_status(self, rejection: Rejection, answer: Mapping[str, Any],
                         version: str | None) -> tuple[int, dict[str, str] | None]:
        """HTTP status and headers of a lone rejected message: 403 ``insufficient_scope`` when
        the policy named missing scopes; 200 for a denial answered as a tool result; else the
        transport's status for the error code."""
        if rejection.scopes:
            challenge = www_authenticate(self.config.resource_metadata_url,
                                         error="insufficient_scope",
                                         scope=" ".join(rejection.scopes))
            return 403, {"WWW-Authenticate": challenge}
        if "result" in answer:
            return 200, None
        return error_status(rejection.code, version), None

    def principal(self, claims: Mapping[str, Any]) -> str:
        return principal_of(claims, self.options.identity_claim)

    async def read_body(self, request: Request, declared: str | None) -> bytes:
        """The body, at most ``max_body_bytes`` (``declared``: its Content-Length)."""
        limit = self.config.max_body_bytes
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise BodyTooLarge(f"the body is larger than {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(f"the body is larger than {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def start(self) -> None:
        """Start background work of the parts that have some (the in-process engine's)."""
        for part in self._closers:
            start = getattr(part, "start", None)
            if start is not None:
                start()

    @asynccontextmanager
    async def lifespan(self, _: Any) -> AsyncIterator[None]:
        self.start()
        refresh = getattr(self.authenticator.validator, "refresh_keys", None)
        if refresh is not None:
            try:
                await refresh()
            except Exception as exc:  # keys are fetched again on the first token
                log.warning("could not load the token signing keys at start: %s", exc)
        log.info("MCP gateway for %s at %s%s (resource %s)", self.config.upstream,
                 self.config.public_url, self.config.path, self.config.resource)
        try:
            yield
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        for closer in self._closers:
            close = getattr(closer, "aclose", None)
            if close is not None:
                try:
                    await close()
                except Exception:  # closing is best effort
                    log.debug("closing %r failed", closer, exc_info=True)
