"""Stored entities (the PIP): Cedar entities with their attributes and parents."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["EntityUid", "StoredEntity", "entity_refs"]

EntityUid = tuple[str, str]  # (Cedar type, id)


@dataclass(frozen=True, slots=True)
class StoredEntity:
    """One entity in Cedar's entity JSON form, with explicit ``__entity``/``__extn`` values
    (Cedar's normal form). ``tags`` are Cedar entity tags (``getTag``/``hasTag``)."""

    type: str
    id: str
    attrs: Mapping[str, Any]
    parents: tuple[EntityUid, ...] = ()
    json: bytes = field(default=b"", compare=False, repr=False)
    tags: Mapping[str, Any] = field(default_factory=dict)

    @property
    def uid(self) -> EntityUid:
        return (self.type, self.id)

    @classmethod
    def from_cedar_json(cls, doc: Mapping[str, Any]) -> StoredEntity:
        uid = doc["uid"]
        uid = uid.get("__entity", uid)
        parents = tuple((p.get("__entity", p)["type"], p.get("__entity", p)["id"])
                        for p in doc.get("parents", ()))
        attrs = dict(doc.get("attrs", {}))
        return cls.build(str(uid["type"]), str(uid["id"]), attrs, parents,
                         dict(doc.get("tags") or {}))

    @classmethod
    def build(cls, type_: str, id_: str, attrs: Mapping[str, Any],
              parents: tuple[EntityUid, ...] = (),
              tags: Mapping[str, Any] | None = None) -> StoredEntity:
        doc: dict[str, Any] = {"uid": {"type": type_, "id": id_}, "attrs": attrs,
                               "parents": [{"type": t, "id": i} for t, i in parents]}
        if tags:
            doc["tags"] = tags
        return cls(type_, id_, attrs, parents, orjson.dumps(doc), dict(tags or {}))

    def to_cedar_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"uid": {"type": self.type, "id": self.id},
                               "attrs": dict(self.attrs),
                               "parents": [{"type": t, "id": i} for t, i in self.parents]}
        if self.tags:
            doc["tags"] = dict(self.tags)
        return doc


def entity_refs(value: Any, out: list[EntityUid]) -> None:
    """Collect the entity references (``{"__entity": {...}}``) inside a Cedar JSON value."""
    if isinstance(value, dict):
        ref = value.get("__entity")
        if ref is not None and len(value) == 1 and isinstance(ref, dict):
            out.append((str(ref.get("type")), str(ref.get("id"))))
            return
        if "__extn" in value and len(value) == 1:
            return
        for v in value.values():
            entity_refs(v, out)
    elif isinstance(value, list):
        for v in value:
            entity_refs(v, out)
