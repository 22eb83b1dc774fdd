"""COAZ mapping endpoints for Policy Enforcement Points that do not map MCP messages themselves
(docs/spec/coaz.md, both dialects, the default mappings and "Both dialects: the access token";
AuthZEN 1.0 section 10: authenticating the PEP).

The flow itself is :class:`~pdp.coaz_service.CoazCore`'s, the same the MCP gateway and
``pdp eval`` run; this module adapts HTTP to it (the body, the PEP's credential, the
``X-Request-ID`` recorded with the decisions, ``X-PDP-Explain``).

``POST /coaz/v1/map`` turns one MCP JSON-RPC message into what the PEP must do: ``pass``,
``evaluate`` (with the AuthZEN request to send), ``deny`` (with the JSON-RPC error to answer)
or ``unauthenticated`` (answer HTTP 401 with the ``WWW-Authenticate`` value given).
``POST /coaz/v1/authorize`` does the same and, for ``evaluate``, also asks this PDP: it answers
``allow`` (every decision ``true``), the decisions, the request, and the JSON-RPC ``error`` to
return whenever ``allow`` is false.

Body: ``{"message": {...}, "tools": [...]?, "token": "<JWT>"? | "claims": {...}?,
"server": "<resource id>"?}``. A ``token`` is validated here (``PDP_TOKEN_*``, audience
``server`` or ``PDP_RESOURCE_ID``) by one validator built from the settings: its key sources
are the configured issuers', so no value of ``server`` (or of the token) creates another or
makes the PDP fetch keys it would not fetch otherwise. ``claims`` are trusted as already
validated, so they are accepted only from a caller authenticated with a PEP credential (an
API key or a PEP JWT, see :mod:`pdp.auth` and :mod:`pdp.http.auth`), or in unauthenticated
mode (no PEP credential configured, loopback only), where any caller could ask
``/access/v1/evaluation`` directly anyway. Compiled tool catalogs are cached by a hash of
the ``tools`` array (bounded LRU).
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.routing import Route

from pdp.auth import Principal
from pdp.authzen import parse_json_body
from pdp.caches import LRU
from pdp.coaz import DenialStyle, ToolCatalog
from pdp.coaz_service import (
    CoazCall,
    CoazCore,
    CoazResult,
    LocalDecider,
    authorize_body,
    map_body,
    mapping_options,
    method_table,
    parse_call,
)
from pdp.errors import AuthenticationFailed, InvalidField, MappingError
from pdp.http.access import read_body, request_id, wants_explanation
from pdp.http.openapi import DocumentedRoute
from pdp.http.responses import json_endpoint
from pdp.http.schemas import DecisionModel
from pdp.service import PDPService

__all__ = ["MAP_PATH", "AUTHORIZE_PATH", "CoazEndpoints", "coaz_docs", "coaz_routes"]

MAP_PATH = "/coaz/v1/map"
AUTHORIZE_PATH = "/coaz/v1/authorize"


# -- OpenAPI models -------------------------------------------------------------------------


class CoazRequestModel(BaseModel):
    model_config = ConfigDict(extra="allow")

    message: dict[str, Any] = Field(
        description="The client-to-server MCP JSON-RPC message (request, notification or "
        "response).")
    tools: list[dict[str, Any]] | None = Field(
        default=None, description="The server's tools (the tools/list result's `tools`) with "
        "their x-coaz-mapping / x-authzen-mapping declarations. Without them a tools/call "
        "names an unknown tool: a mapping error.")
    token: str | None = Field(
        default=None, description="The client's access token (JWT), validated by the PDP.")
    claims: dict[str, Any] | None = Field(
        default=None, description="Already validated token claims; only from a caller "
        "authenticated with a PEP credential (or when the PDP runs unauthenticated).")
    server: str | None = Field(
        default=None, description="The MCP server's resource identifier (token audience, "
        "$token.aud); PDP_RESOURCE_ID if absent.")


class JsonRpcErrorModel(BaseModel):
    code: int
    message: str
    data: dict[str, Any] | None = Field(
        default=None, description="With explanation on: the reason and the decisions (no "
        "reason_admin), as the gateway sends them.")


Kind = Literal["pass", "evaluate", "deny", "unauthenticated"]


class CoazMapResponseModel(BaseModel):
    outcome: Kind
    evaluation: dict[str, Any] | None = Field(
        default=None, description="outcome evaluate: the /access/v1/evaluation body.")
    evaluations: dict[str, Any] | None = Field(
        default=None, description="outcome evaluate: the /access/v1/evaluations body.")
    dialect: Literal["sep", "binding", "default"] | None = None
    warnings: list[str] | None = Field(default=None, description="For the decision log.")
    error: JsonRpcErrorModel | None = Field(
        default=None, description="outcome deny: the JSON-RPC error to answer.")
    www_authenticate: str | None = Field(
        default=None, description="outcome unauthenticated: answer HTTP 401 with this "
        "WWW-Authenticate value.")


class CoazAuthorizeResponseModel(BaseModel):
    allow: bool = Field(description="Forward the message: every decision is true (or pass).")
    outcome: Kind
    decisions: list[DecisionModel]
    request: dict[str, Any] | None = Field(
        default=None, description="The AuthZEN request that was evaluated.")
    endpoint: str | None = Field(default=None, description="Which endpoint `request` is for.")
    dialect: Literal["sep", "binding", "default"] | None = None
    warnings: list[str] | None = None
    error: JsonRpcErrorModel | None = Field(
        default=None, description="Whenever allow is false: the JSON-RPC error to answer.")
    www_authenticate: str | None = None


def coaz_docs() -> list[DocumentedRoute]:
    return [
        DocumentedRoute(MAP_PATH, "Map an MCP message to AuthZEN (COAZ)", CoazRequestModel,
                        CoazMapResponseModel, tag="COAZ"),
        DocumentedRoute(AUTHORIZE_PATH, "Map and decide an MCP message (COAZ)",
                        CoazRequestModel, CoazAuthorizeResponseModel, tag="COAZ"),
    ]


# -- the endpoints --------------------------------------------------------------------------


class _CatalogCache:
    """Compiled catalogs by a hash of (server, tools), least recently used dropped first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: LRU[bytes, ToolCatalog] = LRU(capacity)
        self._lock = threading.Lock()  # the endpoints may run on worker threads
        self.compiled = 0

    def get(self, tools: list[Any], server: str | None) -> ToolCatalog:
        key = hashlib.sha256(orjson.dumps([server, tools], option=orjson.OPT_SORT_KEYS)).digest()
        with self._lock:
            catalog = self._items.get(key)
        if catalog is not None:
            return catalog
        catalog = ToolCatalog.from_tools_list(tools, server_id=server)
        with self._lock:
            self.compiled += 1
            self._items.put(key, catalog)
        return catalog


class CoazEndpoints:
    """The two endpoints. ``pep_authentication``: whether PEP credentials are configured; then
    ``claims`` need a PEP principal on the request."""

    def __init__(self, service: PDPService, *, pep_authentication: bool) -> None:
        self.service = service
        self.settings = settings = service.settings
        self.catalogs = _CatalogCache(settings.coaz_catalog_cache)
        self._no_tools = ToolCatalog.from_tools_list([])
        # the decisions explained only when asked (X-PDP-Explain, PDP_EXPLAIN)
        self.core = CoazCore(
            LocalDecider(service),
            mapping_options(settings, settings.resource_id, method_table(settings)),
            style=DenialStyle(explain=settings.explain), ask_policies=False,
            settings=settings)
        self._pep_authentication = pep_authentication

    def _claims_trusted(self, request: Request) -> bool:
        """Whether ``claims`` may be taken as validated: the request was authenticated with a
        PEP credential (by the middleware), or the PDP runs unauthenticated."""
        if not self._pep_authentication:
            return True
        state = request.scope.get("state") or {}
        principal = state.get("principal")
        return isinstance(principal, Principal) and principal.is_pep

    async def _call(self, request: Request) -> tuple[CoazCall, ToolCatalog]:
        settings = self.settings
        raw = await read_body(request, settings.max_body_bytes)
        body = parse_json_body(request.headers.get("content-type"), raw,
                               max_bytes=settings.max_body_bytes, max_depth=settings.max_depth)
        call = parse_call(body, settings.resource_id)
        if call.claims is not None and not self._claims_trusted(request):
            raise AuthenticationFailed("claims are accepted only from an authenticated PEP",
                                       challenge='Bearer realm="authzen"')
        if call.tools is None:
            return call, self._no_tools
        try:
            return call, self.catalogs.get(call.tools, call.server)
        except MappingError as exc:  # the tools array itself is unusable
            raise InvalidField(exc.message, field=exc.field or "tools") from None

    async def map(self, request: Request) -> dict[str, Any]:
        call, catalog = await self._call(request)
        result = await self.core.map(call.message, catalog, claims=call.claims,
                                     token=call.token, server=call.server)
        return map_body(result)

    async def authorize(self, request: Request) -> dict[str, Any]:
        call, catalog = await self._call(request)
        result: CoazResult = await self.core.authorize(
            call.message, catalog, claims=call.claims, token=call.token, server=call.server,
            request_id=request_id(request),
            explain=wants_explanation(request, self.settings.explain))
        return authorize_body(result)

    async def aclose(self) -> None:
        await self.core.aclose()


def coaz_routes(endpoints: CoazEndpoints) -> list[Route]:
    failure = "the request could not be mapped"
    return [
        Route(MAP_PATH, json_endpoint(endpoints.map, failure=failure), methods=["POST"],
              name="coaz_map"),
        Route(AUTHORIZE_PATH, json_endpoint(endpoints.authorize, failure=failure),
              methods=["POST"], name="coaz_authorize"),
    ]
