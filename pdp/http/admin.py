"""Admin routes for entities and the decision log (authenticated with ``PDP_ADMIN_TOKEN``).

| route | does |
|---|---|
| ``GET /admin/entities?type=&managed_by=&limit=&cursor=`` | list stored entities, paged |
| ``GET /admin/entities/{type}/{id}`` | one entity, with who manages it |
| ``PUT /admin/entities`` | create or replace API-managed entities (one or an array) |
| ``DELETE /admin/entities?type=&id=`` | delete an API-managed entity |
| ``POST /admin/entities/import?replace=`` | bulk upsert (``replace=true``: the full set) |
| ``GET /admin/links`` | list template links (the files' and the stored ones) |
| ``POST /admin/links`` | add template links (one or an array, Cedar CLI format) |
| ``DELETE /admin/links/{link_id}`` | remove a stored template link |
| ``GET /admin/decisions?...`` | query the decision log, newest first, paged |

Entity bodies are Cedar entity JSON (``{"uid", "attrs", "parents"}``, types as Cedar sees
them, with the namespace if one is configured). Writes are validated against the schema and
are all-or-nothing; they are visible to this process's decisions at once and to every
replica on the same database within its poll interval. Database work runs in the thread
pool, never on the event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from pdp.authzen import parse_json_body
from pdp.decision_log import DecisionFilter, DecisionReader, parse_time
from pdp.entities.manage import EntityAdmin
from pdp.entities.manage_links import LinkAdmin
from pdp.entities.setup import validator_for
from pdp.errors import EntityError, NotFound
from pdp.http.access import read_body
from pdp.http.responses import json_response
from pdp.service import PDPService

__all__ = ["admin_router"]

T = TypeVar("T")


def admin_router(service: PDPService) -> APIRouter:
    """The routes; mount them with the ``require_admin`` dependency."""
    router = APIRouter(prefix="/admin", tags=["admin"])
    store = service.store.administered()
    entities = EntityAdmin(store, validator_for(service.policies)) if store is not None else None
    links = LinkAdmin(store, lambda: service.policies.current) if store is not None else None
    reader = (DecisionReader(service.decision_log.database)
              if service.decision_log is not None else None)
    settings = service.settings

    def entity_admin() -> EntityAdmin:
        if entities is None:
            raise NotFound("entity administration needs the SQL entity store "
                           "(PDP_ENTITY_STORE=sql)")
        return entities

    def link_admin() -> LinkAdmin:
        if links is None:
            raise NotFound("stored template links need the SQL entity store "
                           "(PDP_ENTITY_STORE=sql)")
        return links

    def decisions() -> DecisionReader:
        if reader is None:
            raise NotFound("the decision log is off (PDP_DECISION_LOG=off)")
        return reader

    async def body(request: Request) -> Any:
        raw = await read_body(request, settings.max_body_bytes)
        return parse_json_body(request.headers.get("content-type"), raw,
                               max_bytes=settings.max_body_bytes, max_depth=settings.max_depth)

    async def run(fn: Callable[[], T]) -> T:
        return await run_in_threadpool(fn)

    @router.get("/entities", summary="List stored entities")
    async def list_entities(
            type: Annotated[str | None, Query(description="Only this (Cedar) type.")] = None,
            managed_by: Annotated[Literal["file", "api"] | None, Query()] = None,
            limit: Annotated[int, Query(ge=1, le=1000)] = 100,
            cursor: Annotated[str | None, Query(description="next_cursor of a page.")] = None,
    ) -> Response:
        admin = entity_admin()
        page = await run(lambda: admin.page(entity_type=type, cursor=cursor, limit=limit,
                                            source=managed_by))
        return json_response(page.to_dict())

    @router.get("/entities/{type}/{id:path}", summary="One stored entity")
    async def get_entity(type: str, id: str) -> Response:
        admin = entity_admin()
        record = await run(lambda: admin.get((type, id)))
        return json_response(record.to_dict())

    @router.put("/entities", summary="Create or replace API-managed entities")
    async def put_entities(request: Request) -> Response:
        admin = entity_admin()
        doc = await body(request)
        docs = doc if isinstance(doc, list) else [doc]
        result = await run(lambda: admin.put(docs))
        return json_response(result.to_dict())

    @router.delete("/entities", summary="Delete an API-managed entity")
    async def delete_entity(type: Annotated[str, Query()],
                            id: Annotated[str, Query()]) -> Response:
        admin = entity_admin()
        result = await run(lambda: admin.delete([(type, id)]))
        if not result.changed:
            raise NotFound(f"no API-managed entity {type}::{id!r}")
        return json_response(result.to_dict())

    @router.post("/entities/import", summary="Import entities in one transaction")
    async def import_entities(
            request: Request,
            replace: Annotated[bool, Query(description="Delete API-managed entities that "
                                           "are not in the import.")] = False,
    ) -> Response:
        admin = entity_admin()
        doc = await body(request)
        docs = doc.get("entities") if isinstance(doc, dict) else doc
        if not isinstance(docs, list):
            raise EntityError("expected an array of entities (or {\"entities\": [...]})",
                              field="entities")
        result = await run(lambda: admin.put(docs, replace=replace))
        return json_response(result.to_dict())

    @router.get("/links", summary="List template links")
    async def list_links() -> Response:
        admin = link_admin()
        return json_response({"links": await run(admin.list)})

    @router.post("/links", summary="Add template links (Cedar CLI template-linked format)")
    async def add_links(request: Request) -> Response:
        admin = link_admin()
        doc = await body(request)
        docs = doc if isinstance(doc, list) else [doc]
        result = await run(lambda: admin.add(docs))
        return json_response(result.to_dict())

    @router.delete("/links/{link_id:path}", summary="Remove a stored template link")
    async def remove_link(link_id: str) -> Response:
        admin = link_admin()
        result = await run(lambda: admin.remove([link_id]))
        return json_response(result.to_dict())

    @router.get("/decisions", summary="Query the decision log (newest first)")
    async def query_decisions(
            subject_type: str | None = None, subject: str | None = None,
            action: str | None = None, resource_type: str | None = None,
            resource: str | None = None, decision: bool | None = None,
            endpoint: str | None = None, request_id: str | None = None,
            since: Annotated[str | None, Query(description="ISO 8601, inclusive")] = None,
            until: Annotated[str | None, Query(description="ISO 8601, exclusive")] = None,
            limit: Annotated[int, Query(ge=1, le=1000)] = 100,
            cursor: str | None = None,
    ) -> Response:
        log = decisions()
        filters = DecisionFilter(
            subject_type=subject_type, subject_id=subject, action=action,
            resource_type=resource_type, resource_id=resource, decision=decision,
            endpoint=endpoint, request_id=request_id, since=parse_time(since, "since"),
            until=parse_time(until, "until"))
        page = await run(lambda: log.query(filters, limit=limit, cursor=cursor))
        return json_response(page.to_dict())

    return router
