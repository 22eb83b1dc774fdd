"""Reading and checking entity documents written by people (admin API, CLI, import files).

A document is one entity in Cedar's entity JSON format (the format of ``entities.json``)::

    {"uid": {"type": "user", "id": "alice"},
     "attrs": {"department": "Sales", "manager": {"__entity": {"type": "user", "id": "dan"}}},
     "parents": [{"type": "group", "id": "staff"}]}

When the policy set has a schema, every entity must conform to it: its type declared, each
required attribute present, no undeclared attribute, every value of its declared type, parents
of types the schema allows. Problems are reported as :class:`~pdp.errors.EntityError` naming
the entity and the attribute at fault; Cedar itself has the last word (it also checks parent
types), and a batch is accepted only if every entity in it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from pdp.cedar._cedarpy import entities_to_json, parse_entities
from pdp.entities.model import EntityUid, StoredEntity
from pdp.errors import CedarInputError, EntityError
from pdp.policies.schema_types import Attribute, AttrType, SchemaTypes

__all__ = ["EntityValidator", "describe_uid", "parse_document", "parse_uid"]

_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1


def describe_uid(uid: EntityUid) -> str:
    return f"{uid[0]}::{orjson.dumps(uid[1]).decode()}"


def parse_uid(value: Any, where: str) -> EntityUid:
    """``{"type", "id"}`` or ``{"__entity": {"type", "id"}}`` → ``(type, id)``."""
    if isinstance(value, Mapping) and "__entity" in value:
        value = value["__entity"]
    if not isinstance(value, Mapping):
        raise EntityError(f"{where} must be an object {{\"type\", \"id\"}}", field=where)
    type_, id_ = value.get("type"), value.get("id")
    if not isinstance(type_, str) or not type_:
        raise EntityError(f"{where}.type must be a non-empty string", field=f"{where}.type")
    if not isinstance(id_, str):
        raise EntityError(f"{where}.id must be a string", field=f"{where}.id")
    return type_, id_


_Parsed = tuple[EntityUid, dict[str, Any], tuple[EntityUid, ...], dict[str, Any]]


def parse_document(doc: Any, where: str = "entity") -> _Parsed:
    """Check the shape of one Cedar entity document; return its uid, attributes, parents and
    tags (``attrs``, ``parents`` and ``tags`` may be left out)."""
    if not isinstance(doc, Mapping):
        raise EntityError(f"{where} must be a JSON object", field=where)
    uid = parse_uid(doc.get("uid"), f"{where}.uid")
    label = describe_uid(uid)
    attrs = doc.get("attrs", {})
    if not isinstance(attrs, Mapping):
        raise EntityError(f"entity {label}: attrs must be an object", field=f"{where}.attrs")
    raw_parents = doc.get("parents", [])
    if not isinstance(raw_parents, list):
        raise EntityError(f"entity {label}: parents must be an array", field=f"{where}.parents")
    parents = tuple(parse_uid(p, f"{where}.parents[{i}]") for i, p in enumerate(raw_parents))
    tags = doc.get("tags") or {}
    if not isinstance(tags, Mapping):
        raise EntityError(f"entity {label}: tags must be an object", field=f"{where}.tags")
    return uid, dict(attrs), parents, dict(tags)


@dataclass(frozen=True)
class EntityValidator:
    """Checks documents against one schema (or only their shape when there is none)."""

    schema: Any | None = None  # cedarpy.Schema
    types: SchemaTypes | None = None

    def validate(self, docs: Iterable[Any]) -> list[StoredEntity]:
        """Parse and check every document; return them normalised, or raise for the first bad
        one. Nothing is returned unless all of them are valid."""
        parsed: list[_Parsed] = []
        seen: set[EntityUid] = set()
        for i, doc in enumerate(docs):
            uid, attrs, parents, tags = parse_document(doc, f"entities[{i}]")
            if uid in seen:
                raise EntityError(f"entity {describe_uid(uid)} appears twice",
                                  field=f"entities[{i}]")
            seen.add(uid)
            if self.types is not None:
                self._check(uid, attrs, parents)
            parsed.append((uid, attrs, parents, tags))
        if not parsed:
            return []
        return self._normalise(parsed)

    # -- schema conformance, with precise messages ------------------------------------------

    def _check(self, uid: EntityUid, attrs: Mapping[str, Any],
               parents: Sequence[EntityUid]) -> None:
        assert self.types is not None
        label = describe_uid(uid)
        declared = self.types.entity_attributes(uid[0])
        if declared is None:
            raise EntityError(f"entity {label}: type `{uid[0]}` is not declared in the schema",
                              field="uid.type")
        for parent in parents:
            if self.types.entity_attributes(parent[0]) is None:
                raise EntityError(
                    f"entity {label}: parent {describe_uid(parent)} is of a type the schema "
                    "does not declare", field="parents")
        _record(label, "", attrs, declared)

    # -- Cedar's own check and normal form ---------------------------------------------------

    def _normalise(self, parsed: Sequence[_Parsed]) -> list[StoredEntity]:
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

    def _find_rejected(self, parsed: Sequence[_Parsed],
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


def _where(path: str) -> str:
    return f"attribute `{path}`"


def _record(label: str, prefix: str, value: Mapping[str, Any],
            declared: Mapping[str, Attribute]) -> None:
    for name, attr in declared.items():
        if attr.required and name not in value:
            raise EntityError(f"entity {label}: required {_where(prefix + name)} is missing",
                              field=f"attrs.{prefix}{name}")
    for name, item in value.items():
        found = declared.get(name)
        if found is None:
            raise EntityError(f"entity {label}: {_where(prefix + name)} is not declared in the "
                              "schema", field=f"attrs.{prefix}{name}")
        _value(label, prefix + name, item, found.type)


def _type_name(typ: AttrType) -> str:
    if typ.kind == "set":
        return f"Set<{_type_name(typ.element) if typ.element else '?'}>"
    if typ.kind in ("entity", "extension"):
        return typ.name or typ.kind
    return {"string": "String", "long": "Long", "bool": "Bool", "record": "a record"}[typ.kind]


def _value(label: str, path: str, value: Any, typ: AttrType) -> None:
    def wrong() -> EntityError:
        shown = orjson.dumps(value).decode()
        if len(shown) > 60:
            shown = shown[:57] + "..."
        return EntityError(f"entity {label}: {_where(path)} must be {_type_name(typ)}, got "
                           f"{shown}", field=f"attrs.{path}")

    kind = typ.kind
    if kind == "string":
        if not isinstance(value, str):
            raise wrong()
    elif kind == "bool":
        if not isinstance(value, bool):
            raise wrong()
    elif kind == "long":
        if isinstance(value, bool) or not isinstance(value, int) \
                or not _LONG_MIN <= value <= _LONG_MAX:
            raise wrong()
    elif kind == "set":
        if not isinstance(value, list):
            raise wrong()
        if typ.element is not None:
            for i, element in enumerate(value):
                _value(label, f"{path}[{i}]", element, typ.element)
    elif kind == "record":
        if not isinstance(value, Mapping):
            raise wrong()
        _record(label, path + ".", value, typ.attributes or {})
    elif kind == "entity":
        try:
            ref = parse_uid(value, path)
        except EntityError:
            raise wrong() from None
        if typ.name is not None and ref[0] != typ.name:
            raise EntityError(f"entity {label}: {_where(path)} must reference a {typ.name}, got "
                              f"{describe_uid(ref)}", field=f"attrs.{path}")
    elif kind == "extension":
        ok = isinstance(value, str) or (isinstance(value, Mapping) and (
            "__extn" in value or ("fn" in value and "arg" in value)))
        if not ok:
            raise wrong()
