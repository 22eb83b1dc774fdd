"""The Search API endpoints as lean Starlette routes (AuthZEN 1.0 section 8).

``POST /access/v1/search/{subject,resource,action}``: the body is read and parsed like the
evaluation endpoints' (content type, size, JSON, nesting), the service searches, and the
response is one orjson call. The pydantic models here only document the routes in OpenAPI.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pdp.authzen.metadata import SEARCH_ACTION_PATH, SEARCH_RESOURCE_PATH, SEARCH_SUBJECT_PATH
from pdp.http.access import BodyRequest, body_endpoint
from pdp.http.openapi import DocumentedRoute
from pdp.http.schemas import ActionModel, ResourceModel, SubjectModel
from pdp.search import SearchKind
from pdp.service import PDPService

__all__ = ["search_docs", "search_routes"]

log = logging.getLogger("pdp.http")


def _endpoint(service: PDPService, kind: SearchKind) -> Callable[[Request], Awaitable[Response]]:
    def handle(body: Any, request: BodyRequest) -> dict[str, Any]:
        return service.search(kind, body, request_id=request.request_id)

    # a search decides up to PDP_MAX_SEARCH_SCAN candidates: not on the event loop
    return body_endpoint(service, handle, failure="the search could not be made", off_loop=True)


def search_routes(service: PDPService) -> list[Route]:
    return [
        Route(SEARCH_SUBJECT_PATH, _endpoint(service, SearchKind.SUBJECT), methods=["POST"],
              name="search_subject"),
        Route(SEARCH_RESOURCE_PATH, _endpoint(service, SearchKind.RESOURCE), methods=["POST"],
              name="search_resource"),
        Route(SEARCH_ACTION_PATH, _endpoint(service, SearchKind.ACTION), methods=["POST"],
              name="search_action"),
    ]


# -- OpenAPI documentation ---------------------------------------------------------------------


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class SearchedEntityModel(_Open):
    type: str = Field(description="The type searched for; an `id` is ignored.")


class PageRequestModel(_Open):
    token: str | None = Field(default=None, description="`next_token` of the previous page; "
                              "the rest of the request must be unchanged.")
    limit: int | None = Field(default=None, ge=1, description="Maximum results per page.")
    properties: dict[str, Any] | None = None


class PageResponseModel(BaseModel):
    next_token: str = Field(description="Token of the next page; empty on the last page.")
    count: int | None = None


class SubjectSearchModel(_Open):
    subject: SearchedEntityModel
    action: ActionModel
    resource: ResourceModel
    context: dict[str, Any] | None = None
    page: PageRequestModel | None = None


class ResourceSearchModel(_Open):
    subject: SubjectModel
    action: ActionModel
    resource: SearchedEntityModel
    context: dict[str, Any] | None = None
    page: PageRequestModel | None = None


class ActionSearchModel(_Open):
    subject: SubjectModel
    resource: ResourceModel
    context: dict[str, Any] | None = None
    page: PageRequestModel | None = None


class EntityResultModel(BaseModel):
    type: str
    id: str


class ActionResultModel(BaseModel):
    name: str


class EntitySearchResponseModel(BaseModel):
    page: PageResponseModel | None = Field(
        default=None, description="Present when the request was paged or more results follow.")
    results: list[EntityResultModel]


class ActionSearchResponseModel(BaseModel):
    page: PageResponseModel | None = None
    results: list[ActionResultModel]


def search_docs() -> list[DocumentedRoute]:
    return [
        DocumentedRoute(SEARCH_SUBJECT_PATH, "Subject search", SubjectSearchModel,
                        EntitySearchResponseModel),
        DocumentedRoute(SEARCH_RESOURCE_PATH, "Resource search", ResourceSearchModel,
                        EntitySearchResponseModel),
        DocumentedRoute(SEARCH_ACTION_PATH, "Action search", ActionSearchModel,
                        ActionSearchResponseModel),
    ]
