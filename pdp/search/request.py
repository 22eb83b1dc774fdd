"""Search API requests (AuthZEN 1.0 section 8): parsing and the request fingerprint.

* Subject search: ``subject`` carries ``type`` only (an ``id`` is ignored); ``action`` and
  ``resource`` are complete.
* Resource search: ``resource`` carries ``type`` only; ``subject`` and ``action`` complete.
* Action search: ``subject`` and ``resource`` complete; no ``action`` (ignored if sent).
* ``context`` is optional; ``page`` is optional: ``{token?, limit?, properties?}``.

A missing or malformed required field is a :class:`~pdp.errors.RequestError` (400) naming it.
The fingerprint is a digest of everything that defines the result set (all but the page
token, the page size and the ignored searched id); a page token is bound to it, so a
follow-up request that changes anything else is refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from pdp.authzen.evaluation import parse_action, parse_context, parse_entity
from pdp.authzen.model import Action, Entity
from pdp.errors import InvalidField

__all__ = ["SearchKind", "SearchRequest", "parse_search"]


class SearchKind(StrEnum):
    SUBJECT = "subject"
    RESOURCE = "resource"
    ACTION = "action"


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """A parsed search. The searched part is ``None`` (action) or carries ``type`` only."""

    kind: SearchKind
    subject: Entity
    action: Action | None
    resource: Entity
    context: Mapping[str, Any] | None
    limit: int | None
    token: str | None
    paged: bool  # the request carried a ``page`` object
    fingerprint: bytes

    @property
    def searched_type(self) -> str | None:
        if self.kind is SearchKind.SUBJECT:
            return self.subject.type
        if self.kind is SearchKind.RESOURCE:
            return self.resource.type
        return None


def parse_search(kind: SearchKind, body: Any, *, max_limit: int) -> SearchRequest:
    if not isinstance(body, dict):
        raise InvalidField("the request body must be a JSON object", field="$")
    subject = parse_entity(body.get("subject"), "subject",
                           require_id=kind is not SearchKind.SUBJECT)
    resource = parse_entity(body.get("resource"), "resource",
                            require_id=kind is not SearchKind.RESOURCE)
    action = None if kind is SearchKind.ACTION else parse_action(body.get("action"))
    context = parse_context(body.get("context"))
    limit, token, page_properties, paged = _parse_page(body.get("page"), max_limit)
    if kind is SearchKind.SUBJECT:
        subject = Entity(subject.type, "")
    elif kind is SearchKind.RESOURCE:
        resource = Entity(resource.type, "")
    canonical = [
        kind.value,
        [subject.type, subject.id, subject.properties],
        None if action is None else [action.name, action.properties],
        [resource.type, resource.id, resource.properties],
        context,
        page_properties,
    ]
    fingerprint = hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).digest()
    return SearchRequest(kind, subject, action, resource, context, limit, token, paged,
                         fingerprint[:16])


def _parse_page(page: Any, max_limit: int) -> tuple[int | None, str | None, Any, bool]:
    if page is None:
        return None, None, None, False
    if not isinstance(page, dict):
        raise InvalidField("'page' must be an object", field="page")
    limit = page.get("limit")
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise InvalidField("'page.limit' must be a non-negative integer",
                               field="page.limit")
        # 0 means "the server's default"; a PDP may return fewer results than asked for
        limit = min(limit, max_limit) if limit else None
    token = page.get("token")
    if token is not None and not isinstance(token, str):
        raise InvalidField("'page.token' must be a string", field="page.token")
    properties = page.get("properties")
    if properties is not None and not isinstance(properties, dict):
        raise InvalidField("'page.properties' must be an object", field="page.properties")
    return limit, token or None, properties, True
