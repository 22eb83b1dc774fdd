"""Managing API-managed entities: what the admin API and ``pdp entities`` call.

Every write is validated against the schema of the policy set in force (see
:mod:`pdp.entities.validate`) before one transaction writes all of it, so a bad entity is
refused with the entity and attribute named and nothing is half-written. Reads list the
database itself (with who manages each entity), in pages with an opaque cursor.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from pdp.entities.model import EntityUid
from pdp.entities.store import AdministeredEntityStore, EntityRecord, Source, WriteResult
from pdp.entities.validate import EntityValidator
from pdp.errors import EntityError, InvalidField, NotFound
from pdp.policies.entity_schema import describe_uid, parse_uid

__all__ = ["EntityAdmin", "EntityPage", "decode_cursor", "encode_cursor"]

MAX_PAGE = 1000


def encode_cursor(uid: EntityUid) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(uid))).decode().rstrip("=")


def decode_cursor(cursor: str) -> EntityUid:
    try:
        value = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        raise InvalidField("invalid cursor", field="cursor") from None
    if not (isinstance(value, list) and len(value) == 2
            and all(isinstance(v, str) for v in value)):
        raise InvalidField("invalid cursor", field="cursor")
    return value[0], value[1]


@dataclass(frozen=True, slots=True)
class EntityPage:
    entities: list[EntityRecord]
    next_cursor: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"entities": [r.to_dict() for r in self.entities],
                "next_cursor": self.next_cursor}


class EntityAdmin:
    """Validated writes and paged reads over an administered store (the SQL store)."""

    def __init__(self, store: AdministeredEntityStore,
                 validator: Callable[[], EntityValidator]) -> None:
        self.store = store
        self._validator = validator

    def put(self, docs: Sequence[Any], *, replace: bool = False) -> WriteResult:
        """Create or replace entities (all or nothing). With ``replace``, every other
        API-managed entity is deleted in the same transaction (an import of the full set)."""
        if not isinstance(docs, list | tuple):
            raise EntityError("expected an array of entities", field="entities")
        entities = self._validator().validate(docs)
        return self.store.put_many(entities, replace=replace)

    def delete(self, uids: Sequence[EntityUid]) -> WriteResult:
        return self.store.delete_many(uids)

    def get(self, uid: EntityUid) -> EntityRecord:
        record = self.store.describe(uid)
        if record is None:
            raise NotFound(f"no entity {describe_uid(uid)}")
        return record

    def page(self, *, entity_type: str | None = None, cursor: str | None = None,
             limit: int = 100, source: Source | None = None) -> EntityPage:
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidField(f"limit must be between 1 and {MAX_PAGE}", field="limit")
        after = decode_cursor(cursor) if cursor else None
        rows = self.store.page(entity_type=entity_type, after=after, limit=limit + 1,
                               source=source)
        more = len(rows) > limit
        rows = rows[:limit]
        return EntityPage(rows, encode_cursor(rows[-1].entity.uid) if more else None)

    @staticmethod
    def uids(values: Sequence[Any]) -> list[EntityUid]:
        """``[{"type", "id"}, ...]`` → uids, with the index of a bad one in the error."""
        if not isinstance(values, list | tuple):
            raise EntityError("expected an array of {\"type\", \"id\"}", field="uids")
        return [parse_uid(v, f"uids[{i}]") for i, v in enumerate(values)]
