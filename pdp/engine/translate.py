"""SARC → Cedar: how an AuthZEN request becomes a Cedar request and entities.

| AuthZEN                      | Cedar                                                       |
|------------------------------|-------------------------------------------------------------|
| ``subject {type, id}``       | principal ``<ns::>type::"id"`` (type verbatim)              |
| ``resource {type, id}``      | resource ``<ns::>type::"id"``                               |
| ``action.name``              | action ``<ns::>Action::"name"``                             |
| ``subject/resource.properties`` | attributes of the principal/resource entity             |
| ``action.properties``        | ``context.action_properties`` (a record; key configurable)  |
| ``context``                  | Cedar context                                               |

JSON values become Cedar values: objects → records, arrays → sets, integers → ``Long``
(64-bit, else an error), booleans, strings. With a schema, ``{"type","id"}`` becomes an entity
reference and strings become ``ipaddr``/``decimal``/``datetime``/``duration`` where the schema
declares them, and properties the schema does not declare are dropped. Fractional numbers
become ``decimal`` where the schema says so, or, without a schema, when they fit decimal's
four places. ``null`` values are dropped (Cedar has no null).

Stored entities win over request properties for the same attribute: the PIP is authoritative
and a caller must not be able to claim, say, a role it does not have.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from pdp.authzen.model import EvaluationRequest
from pdp.engine.type_names import NO_TYPE_NAMES, TypeNames
from pdp.errors import TranslationError
from pdp.policies.schema_types import AttrType, SchemaTypes

__all__ = ["Translator", "CedarRequest", "cedar_name_ok"]

_IDENT = r"[_a-zA-Z][_a-zA-Z0-9]*"
_NAME = re.compile(rf"{_IDENT}(?:::{_IDENT})*")
# Cedar's grammar: IDENT excludes only these; `principal`, `resource`, `permit`… are valid
# type names (`resource is resource` parses).
_RESERVED = frozenset({"true", "false", "if", "then", "else", "in", "is", "like", "has",
                       "__cedar"})
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_DECIMAL_MAX = Decimal("922337203685477.5807")
_EXTENSION_FN = {"ipaddr": "ip", "decimal": "decimal", "datetime": "datetime",
                 "duration": "duration"}
_DROP = object()
_KNOWN_TYPES = 1024  # valid type names a translator remembers (skips re-checking them)


def cedar_name_ok(name: str) -> bool:
    return _NAME.fullmatch(name) is not None and not any(
        part in _RESERVED for part in name.split("::"))


@dataclass(frozen=True, slots=True)
class CedarRequest:
    """A translated request: the Cedar request and the request-carried entity attributes."""

    principal: tuple[str, str]
    action: tuple[str, str]
    resource: tuple[str, str]
    context: dict[str, Any]
    principal_attrs: dict[str, Any]
    resource_attrs: dict[str, Any]


class Translator:
    """Stateless but for its configuration and a memo of valid type names; one per compiled
    policy set."""

    def __init__(self, schema: SchemaTypes | None, *, namespace: str = "",
                 action_properties_key: str = "action_properties",
                 type_names: TypeNames = NO_TYPE_NAMES) -> None:
        self._schema = schema
        self._type_names = type_names
        self._prefix = f"{namespace}::" if namespace else ""
        self._action_type = f"{self._prefix}Action"
        self._key = action_properties_key
        self._types: dict[str, str] = {}  # valid type names seen (bounded: _KNOWN_TYPES)
        if namespace and not cedar_name_ok(namespace):
            raise ValueError(f"namespace {namespace!r} is not a valid Cedar name")

    def entity_type(self, authzen_type: str, field: str) -> str:
        known = self._types.get(authzen_type)
        if known is not None:
            return known
        name = self._type_names.cedar(authzen_type, field)  # pdp.engine.type_names
        if not cedar_name_ok(name):
            raise TranslationError(
                f"{field}.type {authzen_type!r} is not a valid Cedar entity type name",
                field=f"{field}.type")
        cedar_type = self._prefix + name
        if len(self._types) < _KNOWN_TYPES:
            self._types[authzen_type] = cedar_type
        return cedar_type

    def translate(self, req: EvaluationRequest) -> CedarRequest:
        ptype = self.entity_type(req.subject.type, "subject")
        rtype = self.entity_type(req.resource.type, "resource")
        action = req.action.name
        context: dict[str, Any] = {}
        if req.context:
            context = self._context(req.context, action)
        if req.action.properties:
            if self._key in context:
                raise TranslationError(
                    f"context.{self._key} is reserved for action.properties",
                    field=f"context.{self._key}")
            props = self._context_attr(action, self._key, req.action.properties)
            if props is not _DROP:
                context[self._key] = props
        return CedarRequest(
            (ptype, req.subject.id), (self._action_type, action), (rtype, req.resource.id),
            context,
            self._properties(ptype, req.subject.properties, "subject.properties"),
            self._properties(rtype, req.resource.properties, "resource.properties"),
        )

    # -- values ---------------------------------------------------------------------------

    def _properties(self, cedar_type: str, props: Mapping[str, Any] | None,
                    field: str) -> dict[str, Any]:
        if not props:
            return {}
        if self._schema is None:
            return self._record(props, None, field)
        declared = self._schema.entity_attributes(cedar_type)
        if declared is None:
            return {}
        return self._record(props, declared, field)

    def _context(self, ctx: Mapping[str, Any], action: str) -> dict[str, Any]:
        if self._schema is None:
            return self._record(ctx, None, "context")
        ctype = self._schema.context_type(action)
        if ctype is None:
            return self._record(ctx, None, "context")
        return self._record(ctx, ctype.attributes, "context", keep=(self._key,))

    def _context_attr(self, action: str, key: str, value: Any) -> Any:
        ctype = self._schema.context_type(action) if self._schema is not None else None
        if ctype is None:
            return self._value(value, None, f"context.{key}")
        attr = ctype.attributes.get(key)
        if attr is None:
            return _DROP
        return self._value(value, attr.type, "action.properties")

    def _record(self, obj: Mapping[str, Any], declared: Mapping[str, Any] | None, field: str,
                keep: tuple[str, ...] = ()) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, raw in obj.items():
            if declared is not None:
                attr = declared.get(key)
                if attr is None:
                    continue
                value = self._value(raw, attr.type, f"{field}.{key}")
            else:
                if key in ("__entity", "__extn"):
                    raise TranslationError(f"{field}.{key}: reserved key", field=f"{field}.{key}")
                value = self._value(raw, None, f"{field}.{key}")
            if value is not _DROP:
                out[key] = value
        return out

    def _value(self, raw: Any, typ: AttrType | None, field: str) -> Any:
        if raw is None:
            return _DROP
        kind = typ.kind if typ is not None else None
        if kind == "entity" and isinstance(raw, dict):
            t, i = raw.get("type"), raw.get("id")
            if not isinstance(t, str) or not isinstance(i, str):
                raise TranslationError(f"{field} must be an entity {{\"type\", \"id\"}}",
                                       field=field)
            return {"__entity": {"type": self.entity_type(t, field), "id": i}}
        if kind == "extension" and isinstance(raw, str | int | float) \
                and not isinstance(raw, bool):
            assert typ is not None
            name = typ.name or ""
            arg = self._decimal_text(raw, field) if name == "decimal" else str(raw)
            return {"__extn": {"fn": _EXTENSION_FN.get(name, name), "arg": arg}}
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, int):
            if not _LONG_MIN <= raw <= _LONG_MAX:
                raise TranslationError(f"{field}: {raw} does not fit a 64-bit Cedar Long",
                                       field=field)
            return raw
        if isinstance(raw, float):
            if kind == "long" and raw.is_integer():
                return self._value(int(raw), typ, field)
            return {"__extn": {"fn": "decimal", "arg": self._decimal_text(raw, field)}}
        if isinstance(raw, str):
            return raw
        if isinstance(raw, list):
            element = typ.element if kind == "set" and typ is not None else None
            items = [self._value(v, element, f"{field}[{n}]") for n, v in enumerate(raw)]
            return [v for v in items if v is not _DROP]
        if isinstance(raw, dict):
            attrs = typ.attributes if kind == "record" and typ is not None else None
            return self._record(raw, attrs, field)
        raise TranslationError(f"{field}: unsupported JSON value", field=field)

    @staticmethod
    def _decimal_text(raw: Any, field: str) -> str:
        try:
            d = Decimal(str(raw))
        except InvalidOperation:
            raise TranslationError(f"{field}: {raw!r} is not a decimal number",
                                   field=field) from None
        if not d.is_finite() or abs(d) > _DECIMAL_MAX:
            raise TranslationError(f"{field}: {raw} is out of Cedar decimal range", field=field)
        if d != d.quantize(Decimal("0.0001")):
            raise TranslationError(
                f"{field}: {raw} has more than 4 decimal places (Cedar decimal)", field=field)
        text = format(d.quantize(Decimal("0.0001")), "f")
        whole, _, frac = text.partition(".")
        return f"{whole}.{frac.rstrip('0') or '0'}"
