"""SARC → Cedar: how an AuthZEN request becomes a Cedar request and entities.

| AuthZEN                      | Cedar                                                       |
|------------------------------|-------------------------------------------------------------|
| ``subject {type, id}``       | principal ``<ns::>type::"id"`` (type verbatim)              |
| ``resource {type, id}``      | resource ``<ns::>type::"id"``                               |
| ``action.name``              | action ``<ns::>Action::"name"``                             |
| ``subject/resource.properties`` | attributes of the principal/resource entity             |
| ``action.properties``        | ``context.action_properties`` (a record; key configurable)  |
| ``context``                  | Cedar context                                               |

JSON values become Cedar values: objects → records, arrays → sets, booleans, strings.
JSON has one number type, however a client spells it: an *integral* number (``20000``,
``20000.0``, ``2e4``) is a ``Long`` (64-bit; written with a fraction or an exponent, its
magnitude must be below 2**53, where a double is still exact), any other number a
``decimal`` (Cedar's four places and range); anything else is a :class:`TranslationError`
naming the field. With a schema, ``{"type","id"}`` becomes an entity reference and strings
become ``ipaddr``/``decimal``/``datetime``/``duration`` where the schema declares them, and
properties the schema does not declare are dropped. ``null`` values are dropped (Cedar has
no null).

Reserved names are refused wherever the client sends them: the context key that carries
``action.properties`` (``action_properties`` unless configured), and ``__entity`` and
``__extn`` as keys of any object (Cedar's JSON escapes for entity references and extension
values).

With a schema, requests are validated before anything is evaluated
(:class:`~pdp.errors.SchemaViolation`, a deny): the action must be declared, the principal
and resource types must be among those of its ``appliesTo``, and every context attribute the
schema declares for the action must be present if required and of its declared type.
Context attributes the schema does not declare are dropped: they can never change a
decision.

Stored entities are authoritative (see :mod:`pdp.engine.reach`): request properties only
describe entities the store does not hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

import orjson

from pdp.authzen.model import EvaluationRequest
from pdp.authzen.type_names import NO_TYPE_NAMES, TypeNames, cedar_name_ok
from pdp.caches import Memo
from pdp.errors import SchemaViolation, TranslationError
from pdp.policies.schema_types import Attribute, AttrType, SchemaTypes

__all__ = ["Translator", "CedarRequest", "cedar_name_ok"]

_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_DECIMAL_MAX = Decimal("922337203685477.5807")
_EXACT_FLOAT = 2**53  # integral doubles below this are exact
_ESCAPES = ("__entity", "__extn")
_JSON_KIND = {"string": str, "bool": bool, "set": list, "record": dict, "entity": dict}
_KIND_NAME = {"string": "String", "long": "Long", "bool": "Bool", "set": "Set",
              "record": "Record", "entity": "entity"}
_EXTENSION_FN = {"ipaddr": "ip", "decimal": "decimal", "datetime": "datetime",
                 "duration": "duration"}
_DROP = object()
_KNOWN_TYPES = 1024  # valid type names a translator remembers (skips re-checking them)
# Translated contexts a translator remembers, by action and JSON text (at most this many, of
# at most this size): strict JSON only, anything else orjson would write is translated afresh.
_CONTEXTS_KEPT = 4096
_CONTEXT_KEPT_BYTES = 1024
_PLAIN_JSON = (orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
               | orjson.OPT_PASSTHROUGH_SUBCLASS)
_dumps = orjson.dumps


class CedarRequest(NamedTuple):
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
        self._contexts: Memo[tuple[str, bytes], dict[str, Any]] = Memo(_CONTEXTS_KEPT)
        # declared action → (appliesTo types or None, declared context attributes)
        self._declared: dict[str, tuple[tuple[frozenset[str], frozenset[str]] | None,
                                        Mapping[str, Attribute]]] = {}
        if schema is not None:
            for name in schema.action_names():
                ctype = schema.context_type(name)
                if ctype is not None:
                    self._declared[name] = (schema.applies_to(name), ctype.attributes)
        # whether the schema declares context attributes for some action (an empty context
        # may then be refused: see :meth:`context`)
        self.checks_context = any(attrs for _, attrs in self._declared.values())
        if namespace and not cedar_name_ok(namespace):
            raise ValueError(f"namespace {namespace!r} is not a valid Cedar name")

    def entity_type(self, authzen_type: str, field: str) -> str:
        known = self._types.get(authzen_type)
        if known is not None:
            return known
        name = self._type_names.cedar(authzen_type, field)  # pdp.authzen.type_names
        if not cedar_name_ok(name):
            raise TranslationError(
                f"{field}.type {authzen_type!r} is not a valid Cedar entity type name",
                field=f"{field}.type")
        cedar_type = self._prefix + name
        if len(self._types) < _KNOWN_TYPES:
            self._types[authzen_type] = cedar_type
        return cedar_type

    def translate(self, req: EvaluationRequest) -> CedarRequest:
        subject, resource = req.subject, req.resource
        types = self._types
        ptype = types.get(subject.type) or self.entity_type(subject.type, "subject")
        rtype = types.get(resource.type) or self.entity_type(resource.type, "resource")
        action = req.action.name
        if self._schema is not None:
            self._validate(ptype, action, rtype)
        context = self.context(action, req.context)
        if req.action.properties:
            props = self._context_attr(action, self._key, req.action.properties)
            if props is not _DROP:
                context = {**context, self._key: props}
        sprops, rprops = subject.properties, resource.properties
        return CedarRequest(
            (ptype, subject.id), (self._action_type, action), (rtype, resource.id), context,
            self._properties(ptype, sprops, "subject.properties") if sprops else {},
            self._properties(rtype, rprops, "resource.properties") if rprops else {},
        )

    # -- schema validation ----------------------------------------------------------------

    def context(self, action: str, context: Mapping[str, Any] | None) -> dict[str, Any]:
        """The Cedar context of a request for ``action`` with this AuthZEN ``context``
        (checked against the schema's declaration for the action, the reserved key refused),
        before ``action.properties`` are added. With a schema, the action must be one the
        schema declares (:meth:`translate` checks it first). The same context (the same JSON
        text) for the same action gives the same dict, kept by the translator: callers must
        not change it."""
        if self._schema is not None:
            declared = self._declared.get(action)
            if declared is not None and declared[1]:
                _check_record(context or {}, declared[1], "context", skip=(self._key,))
        if not context:
            return {}
        try:  # the same text is translated alike: the translation is kept (shared, unchanged)
            text = _dumps(context, option=_PLAIN_JSON)
        except TypeError:
            text = None
        key = (action, text) if text is not None and len(text) <= _CONTEXT_KEPT_BYTES \
            else None
        if key is not None:
            found = self._contexts.get(key)
            if found is not None:
                return found
        if self._key in context:
            raise TranslationError(f"context.{self._key} is reserved for action.properties",
                                   field=f"context.{self._key}")
        translated = self._context(context, action)
        return translated if key is None else self._contexts.keep(key, translated)

    def _validate(self, ptype: str, action: str, rtype: str) -> None:
        """The action is declared and applies to these principal and resource types."""
        declared = self._declared.get(action)
        if declared is None:
            raise SchemaViolation(f"action {action!r} is not declared by the schema",
                                  field="action.name")
        applies = declared[0]
        if applies is not None:
            principals, resources = applies
            if ptype not in principals:
                raise SchemaViolation(
                    f"action {action!r} does not apply to principals of type {ptype!r}",
                    field="subject.type")
            if rtype not in resources:
                raise SchemaViolation(
                    f"action {action!r} does not apply to resources of type {rtype!r}",
                    field="resource.type")

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
            if key in _ESCAPES:
                raise TranslationError(f"{field}.{key}: reserved key", field=f"{field}.{key}")
            typ: AttrType | None = None
            if declared is not None:
                attr = declared.get(key)
                if attr is None:  # dropped, but reserved names are refused wherever sent
                    _refuse_escapes(raw, f"{field}.{key}")
                    continue
                typ = attr.type
            if type(raw) is str and (typ is None or typ.kind != "extension"):
                out[key] = raw  # (what _value makes of a string of any other type)
                continue
            value = self._value(raw, typ, f"{field}.{key}")
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
            if raw.is_integer():  # 20000.0, 2e4: JSON has one number type
                if abs(raw) >= _EXACT_FLOAT:
                    raise TranslationError(
                        f"{field}: {raw!r} is too large to be an exact integer (write it "
                        "without a fraction or exponent, within 64 bits)", field=field)
                return int(raw)
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


def _check_record(obj: Mapping[str, Any], declared: Mapping[str, Attribute], field: str,
                  skip: tuple[str, ...] = ()) -> None:
    """That ``obj`` carries every required attribute ``declared`` and each declared one with
    its declared type (undeclared keys are dropped by the translation, not checked here)."""
    for name, attr in declared.items():
        if name in skip:
            continue
        raw = obj.get(name)
        if raw is None:
            if attr.required:
                raise SchemaViolation(f"{field}.{name} is required by the schema",
                                      field=f"{field}.{name}")
            continue
        _check_value(raw, attr.type, f"{field}.{name}")


def _check_value(raw: Any, typ: AttrType, field: str) -> None:
    kind = typ.kind
    ok: bool
    if kind == "long":
        ok = (isinstance(raw, int) and not isinstance(raw, bool)) or (
            isinstance(raw, float) and raw.is_integer())
    elif kind == "extension":
        ok = isinstance(raw, str) or (
            typ.name == "decimal" and isinstance(raw, int | float) and not isinstance(raw, bool))
    else:
        ok = isinstance(raw, _JSON_KIND[kind])
    if not ok:
        expected = typ.name if kind == "extension" else _KIND_NAME[kind]
        raise SchemaViolation(
            f"{field} must be {expected} as the schema declares, not {_json_kind(raw)}",
            field=field)
    if kind == "record" and typ.attributes is not None:
        _check_record(raw, typ.attributes, field)
    elif kind == "set" and typ.element is not None:
        for n, item in enumerate(raw):
            if item is not None:
                _check_value(item, typ.element, f"{field}[{n}]")


def _json_kind(raw: Any) -> str:
    if isinstance(raw, bool):
        return "a boolean"
    if isinstance(raw, int | float):
        return "a number"
    if isinstance(raw, str):
        return "a string"
    if isinstance(raw, list):
        return "an array"
    return "an object"


def _refuse_escapes(raw: Any, field: str) -> None:
    stack: list[tuple[Any, str]] = [(raw, field)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key in _ESCAPES:
                    raise TranslationError(f"{where}.{key}: reserved key",
                                           field=f"{where}.{key}")
                if isinstance(value, dict | list):
                    stack.append((value, f"{where}.{key}"))
        elif isinstance(node, list):
            stack.extend((v, f"{where}[{n}]") for n, v in enumerate(node)
                         if isinstance(v, dict | list))
