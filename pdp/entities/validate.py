"""Reading and checking entity documents written by people (admin API, CLI, import files).

A document is one entity in Cedar's entity JSON format (the format of ``entities.json``)::

    {"uid": {"type": "user", "id": "alice"},
     "attrs": {"department": "Sales", "manager": {"__entity": {"type": "user", "id": "dan"}}},
     "parents": [{"type": "group", "id": "staff"}]}

When the policy set has a schema, every entity must conform to it: its type declared, each
required attribute present, no undeclared attribute, every value of its declared type, parents
of types the schema allows (:mod:`pdp.policies.entity_schema`, beside the schema types).
Problems are reported as :class:`~pdp.errors.EntityError` naming the entity and the attribute
at fault; Cedar itself has the last word (it also checks parent types), and a batch is
accepted only if every entity in it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from pdp.cedar._cedarpy import entities_to_json, parse_entities
from pdp.entities.model import EntityUid, StoredEntity
from pdp.errors import CedarInputError, EntityError
from pdp.policies.entity_schema import (
    ParsedDocument,
    check_conformance,
    describe_uid,
    parse_document,
)
from pdp.policies.schema_types import SchemaTypes

__all__ = ["EntityValidator"]


@dataclass(frozen=True)
class EntityValidator:
    """Checks documents against one schema (or only their shape when there is none)."""

    schema: Any | None = None  # cedarpy.Schema
    types: SchemaTypes | None = None

    def validate(self, docs: Iterable[Any]) -> list[StoredEntity]:
        """Parse and check every document; return them normalised, or raise for the first bad
        one. Nothing is returned unless all of them are valid."""
        parsed: list[ParsedDocument] = []
        seen: set[EntityUid] = set()
        for i, doc in enumerate(docs):
            uid, attrs, parents, tags = parse_document(doc, f"entities[{i}]")
            if uid in seen:
                raise EntityError(f"entity {describe_uid(uid)} appears twice",
                                  field=f"entities[{i}]")
            seen.add(uid)
            if self.types is not None:
                check_conformance(uid, attrs, parents, self.types)
            parsed.append((uid, attrs, parents, tags))
        if not parsed:
            return []
        return self._normalise(parsed)

    # -- Cedar's own check and normal form ---------------------------------------------------

    def _normalise(self, parsed: Sequence[ParsedDocument]) -> list[StoredEntity]:
        docs = [_cedar_doc(*p) for p in parsed]
        try:
            entities = parse_entities(orjson.dumps(docs).decode(), self.schema)
        except CedarInputError as exc:
            self._find_rejected(parsed, docs)
            raise EntityError(f"the entities were rejected by Cedar: {exc}") from None
        wanted = {p[0] for p in parsed}
        out: dict[EntityUid, StoredEntity] = {}
        for doc in orjson.loads(entities_to_json(entities)):
            ent = StoredEntity.from_cedar_json(doc)
            if ent.uid in wanted:
                out[ent.uid] = ent
        return [out[p[0]] for p in parsed]

    def _find_rejected(self, parsed: Sequence[ParsedDocument],
                       docs: Sequence[Mapping[str, Any]]) -> None:
        for (uid, _, _, _), doc in zip(parsed, docs, strict=True):
            try:
                parse_entities(orjson.dumps([doc]).decode(), self.schema)
            except CedarInputError as exc:
                hint = " (check its parents' types)" if self.types is not None else ""
                raise EntityError(f"entity {describe_uid(uid)}: {exc}{hint}") from None


def _cedar_doc(uid: EntityUid, attrs: Mapping[str, Any], parents: Sequence[EntityUid],
               tags: Mapping[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {"uid": {"type": uid[0], "id": uid[1]}, "attrs": dict(attrs),
                           "parents": [{"type": t, "id": i} for t, i in parents]}
    if tags:
        doc["tags"] = dict(tags)
    return doc
