"""COAZ mapping endpoints for Policy Enforcement Points that do not map MCP messages themselves
(docs/spec/coaz.md, both dialects, the default mappings and "Both dialects: the access token";
AuthZEN 1.0 section 10: authenticating the PEP).

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
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pdp.auth import Principal
from pdp.authzen import parse_evaluation, parse_json_body
from pdp.coaz import Deny, Evaluate, Outcome, Pass, ToolCatalog, map_message
from pdp.errors import (
    AuthenticationFailed,
    InvalidField,
    MappingError,
    MissingField,
    PDPError,
    TokenError,
)
from pdp.gateway.decide import EVALUATION_PATH, verdict
from pdp.gateway.denial import client_decisions
from pdp.gateway.runtime import mapping_options, method_table, token_settings
from pdp.http.access import NO_STORE, read_body, wants_explanation
from pdp.http.openapi import DocumentedRoute
from pdp.http.responses import error_response, json_response
from pdp.http.schemas import DecisionModel
from pdp.service import PDPService
from pdp.tokens import TokenValidator, resource_metadata_url, www_authenticate

__all__ = ["MAP_PATH", "AUTHORIZE_PATH", "CoazEndpoints", "coaz_docs", "coaz_routes"]

log = logging.getLogger("pdp.http")

MAP_PATH = "/coaz/v1/map"
AUTHORIZE_PATH = "/coaz/v1/authorize"
_DENIED = "Access denied"


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


@dataclass(frozen=True, slots=True)
class _Unauthenticated:
    www_authenticate: str


class _CatalogCache:
    """Compiled catalogs by a hash of (server, tools), least recently used dropped first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[bytes, ToolCatalog] = OrderedDict()
        self.compiled = 0

    def get(self, tools: list[Any], server: str | None) -> ToolCatalog:
        key = hashlib.sha256(orjson.dumps([server, tools], option=orjson.OPT_SORT_KEYS)).digest()
        catalog = self._items.get(key)
        if catalog is not None:
            self._items.move_to_end(key)
            return catalog
        catalog = ToolCatalog.from_tools_list(tools, server_id=server)
        self.compiled += 1
        self._items[key] = catalog
        if len(self._items) > self.capacity:
            self._items.popitem(last=False)
        return catalog


class CoazEndpoints:
    """The two endpoints. ``pep_authentication``: whether PEP credentials are configured; then
    ``claims`` need a PEP principal on the request."""

    def __init__(self, service: PDPService, *, pep_authentication: bool) -> None:
        self.service = service
        self.settings = settings = service.settings
        self.catalogs = _CatalogCache(settings.coaz_catalog_cache)
        self._no_tools = ToolCatalog.from_tools_list([])
        self._token_validator: TokenValidator | None = None
        self._methods = method_table(settings)
        self._pep_authentication = pep_authentication

    # -- steps --------------------------------------------------------------------------------

    def _claims_trusted(self, request: Request) -> bool:
        """Whether ``claims`` may be taken as validated: the request was authenticated with a
        PEP credential (by the middleware), or the PDP runs unauthenticated."""
        if not self._pep_authentication:
            return True
        state = request.scope.get("state") or {}
        principal = state.get("principal")
        return isinstance(principal, Principal) and principal.is_pep

    def _validator(self) -> TokenValidator:
        """The one token validator, built from the settings on first use."""
        if self._token_validator is None:
            try:
                self._token_validator = TokenValidator(
                    token_settings(self.settings, self.settings.resource_id))
            except ValueError as exc:
                raise InvalidField(f"this PDP cannot validate tokens: {exc}",
                                   field="token") from None
        return self._token_validator

    @staticmethod
    def _challenge(server: str | None, error: Literal["invalid_token"] | None) -> str:
        if server is not None:
            try:
                return www_authenticate(resource_metadata_url(server), error=error)
            except ValueError:
                pass
        return 'Bearer error="invalid_token"' if error else "Bearer"

    async def _prepare(self, request: Request) -> Outcome | _Unauthenticated:
        settings = self.settings
        raw = await read_body(request, settings.max_body_bytes)
        body = parse_json_body(request.headers.get("content-type"), raw,
                               max_bytes=settings.max_body_bytes, max_depth=settings.max_depth)
        if not isinstance(body, dict):
            raise InvalidField("the body must be a JSON object", field="body")
        if "message" not in body:
            raise MissingField("message is required", field="message")
        server = body.get("server", settings.resource_id)
        if server is not None and (not isinstance(server, str) or not server):
            raise InvalidField("server must be a non-empty string", field="server")
        tools = body.get("tools")
        if tools is not None and not isinstance(tools, list):
            raise InvalidField("tools must be an array of tool definitions", field="tools")
        if "token" in body and "claims" in body:
            raise InvalidField("send either token or claims, not both", field="claims")
        claims: Mapping[str, Any]
        if "claims" in body:
            if not self._claims_trusted(request):
                raise AuthenticationFailed("claims are accepted only from an authenticated PEP",
                                           challenge='Bearer realm="authzen"')
            if not isinstance(body["claims"], dict):
                raise InvalidField("claims must be an object", field="claims")
            claims = body["claims"]
        elif "token" in body:
            token = body["token"]
            if not isinstance(token, str) or not token:
                raise InvalidField("token must be a non-empty string", field="token")
            if server is None:
                raise MissingField("server (or PDP_RESOURCE_ID) is required to validate a "
                                   "token: it is the audience", field="server")
            try:
                claims = await self._validator().validate(token, audience=server)
            except TokenError as exc:
                log.info("COAZ: rejected an access token: %s", exc.message)
                return _Unauthenticated(self._challenge(server, "invalid_token"))
        else:
            return _Unauthenticated(self._challenge(server, None))
        catalog = self._no_tools if tools is None else self.catalogs.get(tools, server)
        return map_message(body["message"], claims, catalog,
                           mapping_options(self.settings, server, self._methods))

    # -- responses ------------------------------------------------------------------------------

    @staticmethod
    def _map_body(outcome: Outcome | _Unauthenticated) -> dict[str, Any]:
        if isinstance(outcome, _Unauthenticated):
            return {"outcome": "unauthenticated", "www_authenticate": outcome.www_authenticate}
        if isinstance(outcome, Pass):
            return {"outcome": "pass"}
        if isinstance(outcome, Deny):
            return {"outcome": "deny", "error": {"code": outcome.code, "message": outcome.message}}
        assert isinstance(outcome, Evaluate)
        out: dict[str, Any] = {"outcome": "evaluate"}
        if outcome.evaluation is not None:
            out["evaluation"] = outcome.evaluation
        else:
            out["evaluations"] = outcome.evaluations
        out["dialect"] = outcome.dialect
        if outcome.warnings:
            out["warnings"] = list(outcome.warnings)
        return out

    async def map(self, request: Request) -> dict[str, Any]:
        return self._map_body(await self._prepare(request))

    async def authorize(self, request: Request) -> dict[str, Any]:
        outcome = await self._prepare(request)
        if isinstance(outcome, _Unauthenticated):
            return {"allow": False, "outcome": "unauthenticated", "decisions": [],
                    "www_authenticate": outcome.www_authenticate,
                    "error": {"code": self.settings.coaz_deny_code_binding,
                              "message": "a valid access token is required"}}
        if isinstance(outcome, Pass):
            return {"allow": True, "outcome": "pass", "decisions": []}
        if isinstance(outcome, Deny):
            return {"allow": False, "outcome": "deny", "decisions": [],
                    "error": {"code": outcome.code, "message": outcome.message}}
        assert isinstance(outcome, Evaluate)
        out = self._map_body(outcome)
        endpoint, body = outcome.endpoint, outcome.body
        explain = wants_explanation(request, self.settings.explain)
        result: dict[str, Any] = {"allow": False, "outcome": "evaluate", "decisions": [],
                                  "request": body, "endpoint": endpoint,
                                  "dialect": outcome.dialect}
        if "warnings" in out:
            result["warnings"] = out["warnings"]
        try:
            if endpoint == EVALUATION_PATH:
                answer: Any = self.service.evaluation(parse_evaluation(body), explain=explain)
            else:
                answer = self.service.evaluations(body, explain=explain)
            checked = verdict(endpoint, body, answer)
        except PDPError as exc:
            log.warning("COAZ: the mapped request could not be decided: %s", exc.message)
            result["error"] = {"code": -32603, "message": "the authorization decision is "
                               "unavailable"}
            return result
        result["decisions"] = [dict(d) for d in checked.decisions]
        result["allow"] = checked.allowed
        if not checked.allowed:
            reason = checked.reason or _DENIED
            result["error"] = {"code": outcome.deny_code, "message": reason}
            if explain:
                result["error"]["data"] = {"reason": reason,
                                           "decisions": client_decisions(checked)}
        return result

    async def aclose(self) -> None:
        if self._token_validator is not None:
            await self._token_validator.aclose()
            self._token_validator = None


Handler = Callable[[Request], Awaitable[dict[str, Any]]]


def _route(handle: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            return json_response(await handle(request), headers=NO_STORE)
        except MappingError as exc:  # the tools array itself is unusable
            return error_response(InvalidField(exc.message, field=exc.field or "tools"))
        except PDPError as exc:
            if exc.status >= 500:
                log.error("%s failed: %s", request.url.path, exc.message)
            return error_response(exc)
        except Exception:
            log.exception("%s failed", request.url.path)
            return json_response({"error": "internal_error",
                                  "message": "the request could not be mapped"}, 500)

    return endpoint


def coaz_routes(endpoints: CoazEndpoints) -> list[Route]:
    return [
        Route(MAP_PATH, _route(endpoints.map), methods=["POST"], name="coaz_map"),
        Route(AUTHORIZE_PATH, _route(endpoints.authorize), methods=["POST"],
              name="coaz_authorize"),
    ]
