"""A built entity set: Cedar's entity JSON, checked by Cedar once, held as plain Python data."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from pdp.cedar import _cedarpy, decode
from pdp.cedar.runtime import Store
from pdp.cedar.values import UID
from pdp.errors import CedarInputError

__all__ = ["EntitySet", "closure"]


def closure(parents: Mapping[UID, Iterable[UID]]) -> dict[UID, frozenset[UID]]:
    """Each uid's transitive ancestors (a parent need not be present; a cycle, which Cedar
    rejects before this runs, would not loop)."""
    done: dict[UID, frozenset[UID]] = {}
    for start in parents:
        if start in done:
            continue
        seen: set[UID] = set()
        stack = list(parents[start])
        while stack:
            p = stack.pop()
            if p in seen:
                continue
            seen.add(p)
            known = done.get(p)
            if known is not None:
                seen |= known
            else:
                stack.extend(parents.get(p, ()))
        done[start] = frozenset(seen)
    return done


class EntitySet:
    """Build once with ``EntitySet(entities)`` where ``entities`` is Cedar's entity JSON (a
    list, or its text); reuse across calls. Raises :class:`~pdp.errors.CedarInputError` with
    Cedar's message when Cedar rejects the entities.

    ``native_reason`` is ``None`` when the native evaluator can read every value, else why not
    (calls with this set are then decided by cedarpy).
    """

    __slots__ = ("store", "native_reason", "_text", "_cedar")

    def __init__(self, entities: str | bytes | list[Any]) -> None:
        text = entities.decode() if isinstance(entities, bytes) else (
            entities if isinstance(entities, str) else orjson.dumps(entities).decode())
        try:
            self._cedar = _cedarpy.parse_entities(text)
            data = orjson.loads(text)
        except CedarInputError as e:
            raise CedarInputError(f"invalid entities: {e.message}") from None
        except orjson.JSONDecodeError as e:
            raise CedarInputError(f"invalid entities: {e}") from None
        self._text = text
        self.native_reason: str | None = None
        try:
            self.store = _store(data)
        except (decode.Unsupported, KeyError, TypeError) as e:
            self.store = Store()
            self.native_reason = f"entity value not read natively: {e}"

    @property
    def cedar(self) -> Any:
        """The same entities as parsed by Cedar (for the cedarpy fallback)."""
        return self._cedar

    def __len__(self) -> int:
        return len(self.store.attrs)


def _store(data: Any) -> Store:
    if not isinstance(data, list):
        raise decode.Unsupported("the entities are not a list")
    attrs: dict[UID, dict[str, Any]] = {}
    parents: dict[UID, list[UID]] = {}
    tags: dict[UID, dict[str, Any]] = {}
    for ent in data:
        uid = decode.uid(ent["uid"])
        a = decode.value(ent.get("attrs") or {})
        if type(a) is not dict:
            raise decode.Unsupported("attributes are not a record")
        attrs[uid] = a
        parents[uid] = [decode.uid(p) for p in ent.get("parents") or []]
        if ent.get("tags"):
            t = decode.value(ent["tags"])
            if type(t) is not dict:
                raise decode.Unsupported("tags are not a record")
            tags[uid] = t
    return Store(attrs, closure(parents), tags)
