"""OpenAPI documentation for routes that are not FastAPI routes (the lean AuthZEN routes)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from pdp.http.schemas import ErrorModel

__all__ = ["DocumentedRoute", "install_openapi"]


@dataclass(frozen=True)
class DocumentedRoute:
    path: str
    summary: str
    request: type[BaseModel]
    response: type[BaseModel] | tuple[type[BaseModel], ...]
    tag: str = "AuthZEN"


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def install_openapi(app: FastAPI, routes: Callable[[], Sequence[DocumentedRoute]]) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version,
                             description=app.description, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for route in routes():
            responses: tuple[type[BaseModel], ...] = (
                route.response if isinstance(route.response, tuple) else (route.response,))
            models: list[type[BaseModel]] = [route.request, *responses, ErrorModel]
            for model in models:
                for name, sub in model.model_json_schema(
                        ref_template="#/components/schemas/{model}").get("$defs", {}).items():
                    components.setdefault(name, sub)
                body = model.model_json_schema(ref_template="#/components/schemas/{model}")
                body.pop("$defs", None)
                components.setdefault(model.__name__, body)
            ok = _ref(responses[0]) if len(responses) == 1 else {
                "oneOf": [_ref(m) for m in responses]}
            error = {"content": {"application/json": {"schema": _ref(ErrorModel)}}}
            schema.setdefault("paths", {})[route.path] = {"post": {
                "tags": [route.tag],
                "security": [{"pepBearer": []}, {"pepApiKey": []}],
                "summary": route.summary,
                "operationId": route.path.strip("/").replace("/", "_"),
                "parameters": [
                    {"name": "X-Request-ID", "in": "header", "required": False,
                     "schema": {"type": "string"}, "description": "Echoed on the response."},
                    {"name": "X-PDP-Explain", "in": "header", "required": False,
                     "schema": {"type": "string"},
                     "description": "'true' adds reasons to each decision's context."},
                ],
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": _ref(route.request)}}},
                "responses": {
                    "200": {"description": "Decision(s)",
                            "content": {"application/json": {"schema": ok}}},
                    "400": {"description": "Invalid request", **error},
                    "401": {"description": "No valid PEP credential (when PEP credentials "
                            "are configured)", **error},
                    "403": {"description": "A PEP JWT without the required scope", **error},
                    "408": {"description": "The body did not arrive within "
                            "PDP_REQUEST_TIMEOUT", **error},
                    "413": {"description": "Body too large", **error},
                    "429": {"description": "Rate limited (PDP_RATE_LIMIT); see Retry-After",
                            **error},
                    "500": {"description": "The PDP failed; the PEP must deny", **error},
                    "503": {"description": "Entity store unavailable or timed out; see "
                            "Retry-After (the PEP denies)", **error},
                },
            }}
        schema["components"].setdefault("securitySchemes", {}).update({
            "pepBearer": {"type": "http", "scheme": "bearer", "description": "A PEP API key "
                          "(PDP_API_KEYS) or an OAuth bearer JWT (PDP_PEP_JWKS_*)."},
            "pepApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                          "description": "A PEP API key (PDP_API_KEYS)."},
            "adminBearer": {"type": "http", "scheme": "bearer", "description": "An admin "
                            "API key (PDP_ADMIN_API_KEYS) or PDP_ADMIN_TOKEN."},
        })
        _complete(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


_ERROR = {"content": {"application/json": {"schema": _ref(ErrorModel)}}}
_ENTITIES = {"required": True, "content": {"application/json": {"schema": {
    "type": "array", "description": "Cedar entity JSON: {uid, attrs, parents}",
    "items": {"type": "object"}}}}}


def _object(description: str, **properties: Any) -> dict[str, Any]:
    return {"type": "object", "description": description, "properties": properties,
            "additionalProperties": True}


_STRING: dict[str, Any] = {"type": "string"}
_CURSOR: dict[str, Any] = {"type": ["string", "null"], "description": "Pass back as `cursor` "
                           "for the next page; null on the last page."}
_ENTITY = _object("A stored entity: Cedar entity JSON plus where it came from",
                  uid=_object("type and id", type=_STRING, id=_STRING),
                  attrs={"type": "object"}, parents={"type": "array", "items": {}},
                  managed_by={"enum": ["file", "api"]}, revision={"type": "integer"},
                  updated_at={"type": "string", "format": "date-time"})
_LINK = _object("A template link (Cedar CLI template-linked format) and where it is held",
                template_id=_STRING, link_id=_STRING, args={"type": "object"},
                managed_by={"enum": ["file", "api"]}, template={"type": "object"})
_LINKS = {"required": True, "content": {"application/json": {"schema": {
    "description": "One link or an array: {template_id, link_id, args}",
    "oneOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}}]}}}}
_WRITE = _object("What a write changed", written={"type": "integer"},
                 deleted={"type": "integer"}, version={"type": "integer"})
_CHECKS = {"type": "object", "additionalProperties": _object(
    "One part of the PDP", ready={"type": "boolean"}, message=_STRING)}
_OK_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("/ready", "get"): _object("Readiness", status={"enum": ["ready", "not_ready"]},
                               checks=_CHECKS),
    ("/status", "get"): _object(
        "The active policy set, the last reload error and the counters",
        policy_set=_object("version, directory, loaded_at, policies, files"),
        entities=_object("entity store"), decision_log=_object("decision log"),
        last_reload_error={"type": ["object", "null"]}, reload=_object("reloads"),
        decision_cache=_object("decision cache")),
    ("/admin/entities", "get"): _object("A page of entities",
                                        entities={"type": "array", "items": _ENTITY},
                                        next_cursor=_CURSOR),
    ("/admin/entities", "put"): _WRITE,
    ("/admin/entities", "delete"): _WRITE,
    ("/admin/entities/import", "post"): _WRITE,
    ("/admin/entities/{type}/{id}", "get"): _ENTITY,
    ("/admin/decisions", "get"): _object(
        "A page of decision-log records, newest first",
        decisions={"type": "array", "items": {"type": "object"}}, next_cursor=_CURSOR),
    ("/admin/reload", "post"): _object("The policy set now served", version=_STRING,
                                       policies={"type": "integer"}),
    ("/admin/links", "get"): _object("Every template link in force", links={
        "type": "array", "items": _LINK}),
    ("/admin/links", "post"): _WRITE,
    ("/admin/links/{link_id}", "delete"): _WRITE,
}


def _complete(schema: dict[str, Any]) -> None:
    """What FastAPI cannot infer from the framework routes: admin security and bodies, the
    project's error shape instead of FastAPI's 422 body, and non-JSON responses."""
    schema["components"]["schemas"].setdefault("ErrorModel", ErrorModel.model_json_schema())
    for path, operations in schema.get("paths", {}).items():
        for method, op in operations.items():
            responses = op.setdefault("responses", {})
            if "422" in responses:  # request validation answers 400 in the error shape
                del responses["422"]
                responses["400"] = {"description": "Invalid request", **_ERROR}
            if path.startswith("/admin/"):
                op["security"] = [{"adminBearer": []}]
                responses.setdefault("401", {"description": "No valid admin credential",
                                             **_ERROR})
                responses.setdefault("404", {"description": "Admin endpoints disabled (no "
                                             "admin credential configured), or not found",
                                             **_ERROR})
                responses.setdefault("408", {"description": "The body did not arrive in "
                                             "time", **_ERROR})
            body = _OK_BODIES.get((path, method))
            if body is not None:
                responses["200"]["content"] = {"application/json": {"schema": body}}
            if (path, method) in (("/admin/entities", "put"),
                                  ("/admin/entities/import", "post")):
                op["requestBody"] = _ENTITIES
            if (path, method) == ("/admin/links", "post"):
                op["requestBody"] = _LINKS
    schema["paths"]["/metrics"]["get"]["responses"]["200"] = {
        "description": "Prometheus text exposition",
        "content": {"text/plain": {"schema": {"type": "string"}}}}
    schema["paths"]["/ready"]["get"]["responses"]["503"] = {
        "description": "Not ready: the checks say which part is not",
        "content": {"application/json": {"schema": _OK_BODIES[("/ready", "get")]}}}
    schema["paths"]["/admin/reload"]["post"]["responses"]["422"] = {
        "description": "The new policy set is invalid; the last good one keeps serving",
        **_ERROR}
