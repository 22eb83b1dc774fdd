"""Whether one entity document conforms to the schema's types, with precise messages.

A document is one entity in Cedar's entity JSON format. :func:`parse_document` checks its
shape; :func:`check_conformance` checks it against :class:`~pdp.policies.schema_types.SchemaTypes`
(its type declared, each required attribute present, no undeclared attribute, every value of its
declared type, parents of declared types), raising :class:`~pdp.errors.EntityError` naming the
entity and the attribute at fault. Cedar has the last word: the entity store's validator
(:class:`pdp.entities.validate.EntityValidator`) runs this check and then Cedar's; the policy
compiler uses it to explain, in these words, why Cedar refused an entity of ``entities.json``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from pdp.errors import EntityError
from pdp.policies.schema_types import Attribute, AttrType, SchemaTypes

__all__ = ["ParsedDocument", "check_conformance", "describe_uid", "parse_document",
           "parse_uid"]

EntityUid = tuple[str, str]  # (Cedar type, id), as pdp.entities.model names it

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


ParsedDocument = tuple[EntityUid, dict[str, Any], tuple[EntityUid, ...], dict[str, Any]]


def parse_document(doc: Any, where: str = "entity") -> ParsedDocument:
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


def check_conformance(uid: EntityUid, attrs: Mapping[str, Any], parents: Sequence[EntityUid],
                      types: SchemaTypes) -> None:
    """Raise :class:`~pdp.errors.EntityError` unless the entity conforms to ``types``."""
    label = describe_uid(uid)
    declared = types.entity_attributes(uid[0])
    if declared is None:
        raise EntityError(f"entity {label}: type `{uid[0]}` is not declared in the schema",
                          field="uid.type")
    for parent in parents:
        if types.entity_attributes(parent[0]) is None:
            raise EntityError(
                f"entity {label}: parent {describe_uid(parent)} is of a type the schema "
                "does not declare", field="parents")
    _record(label, "", attrs, declared)


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
