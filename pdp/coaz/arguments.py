"""Validation of ``tools/call`` arguments against the tool's ``inputSchema`` (docs/spec/coaz.md,
"Tool definitions": arguments are validated before mapping; "Dialect 1": ``$properties`` is
checked against ``inputSchema.properties``).

The schema is checked against its meta-schema and compiled once, when the tool list is loaded
(JSON Schema 2020-12 unless ``$schema`` names another draft). The verdict is always
jsonschema's. Most tool schemas are flat (``type: object``, ``properties`` with a single
``type`` each, ``required``, ``additionalProperties``); for those a precomputed check accepts
obviously valid arguments without entering jsonschema. It is strictly narrower than
jsonschema (for example ``integer`` accepts only ``int``, never ``1.0``): whatever it does not
accept goes to jsonschema, which decides and words the error, so a violation is always a
jsonschema violation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from jsonschema.exceptions import SchemaError, best_match  # type: ignore[import-untyped]
from jsonschema.protocols import Validator  # type: ignore[import-untyped]
from jsonschema.validators import validator_for  # type: ignore[import-untyped]

from pdp.errors import MappingError

__all__ = ["ArgumentValidator", "FlatSchema"]

_MAX_MESSAGE = 300

# Keywords that never make an instance invalid (annotations; ``format`` is an annotation in
# 2020-12 unless a format checker is configured, which it is not).
_ANNOTATIONS = frozenset({"title", "description", "default", "examples", "$comment",
                          "deprecated", "readOnly", "writeOnly", "format", "$id", "$anchor"})
_DRAFTS = frozenset({"https://json-schema.org/draft/2020-12/schema",
                     "https://json-schema.org/draft/2019-09/schema",
                     "http://json-schema.org/draft-07/schema#",
                     "http://json-schema.org/draft-07/schema"})
_ROOT_KEYWORDS = frozenset({"type", "properties", "required", "additionalProperties",
                            "$schema"}) | _ANNOTATIONS
_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
    "null": (type(None),), "object": (dict,), "array": (list,),
}


def _is_annotation(keyword: str) -> bool:
    return keyword in _ANNOTATIONS or keyword.startswith("x-")


@dataclass(frozen=True, slots=True)
class FlatSchema:
    """A precomputed acceptance check for a flat object schema.

    ``properties`` maps each declared argument to the exact Python types it accepts (``None``:
    any value); ``required`` must all be present; extra arguments are accepted only with
    ``additional``.
    """

    properties: Mapping[str, frozenset[type] | None]
    required: tuple[str, ...]
    additional: bool

    @classmethod
    def of(cls, schema: Mapping[str, Any]) -> FlatSchema | None:
        """The check for ``schema``, or ``None`` if the schema is not flat."""
        if schema.get("type") != "object":
            return None
        if "$schema" in schema and schema["$schema"] not in _DRAFTS:
            return None
        if any(not (k in _ROOT_KEYWORDS or k.startswith("x-")) for k in schema):
            return None
        properties = schema.get("properties", {})
        required = schema.get("required", [])
        additional = schema.get("additionalProperties", True)
        if not isinstance(properties, dict) or not isinstance(required, list) \
                or not all(isinstance(r, str) for r in required) \
                or not isinstance(additional, bool):
            return None
        accepted: dict[str, frozenset[type] | None] = {}
        for name, sub in properties.items():
            if sub is True or sub == {}:
                accepted[name] = None
                continue
            if not isinstance(sub, dict) or any(k != "type" and not _is_annotation(k)
                                                for k in sub):
                return None
            kind = sub.get("type")
            if kind is None:
                accepted[name] = None
            elif isinstance(kind, str) and kind in _TYPES:
                accepted[name] = frozenset(_TYPES[kind])
            elif isinstance(kind, list) and kind and all(
                    isinstance(k, str) and k in _TYPES for k in kind):
                accepted[name] = frozenset(t for k in kind for t in _TYPES[k])
            else:
                return None
        return cls(accepted, tuple(required), additional)

    def accepts(self, arguments: Any) -> bool:
        """True only if ``arguments`` certainly satisfy the schema."""
        if type(arguments) is not dict:
            return False
        for name in self.required:
            if name not in arguments:
                return False
        properties = self.properties
        for name, value in arguments.items():
            if name in properties:
                types = properties[name]
                if types is not None and type(value) not in types:
                    return False
            elif not self.additional:
                return False
        return True


@dataclass(frozen=True, slots=True)
class ArgumentValidator:
    """A tool's ``inputSchema``, checked and compiled once; ``location`` is its place in the
    tool list."""

    validator: Validator
    location: str
    flat: FlatSchema | None = None

    @classmethod
    def compile(cls, schema: Mapping[str, Any], location: str) -> ArgumentValidator:
        """Raises :class:`MappingError` (located in the schema) if ``schema`` is invalid."""
        validator_class = validator_for(schema, default=Draft202012Validator)
        try:
            validator_class.check_schema(schema)
        except SchemaError as error:
            where = location + error.json_path[1:]
            raise MappingError(f"{where}: invalid JSON Schema: {error.message}",
                               field=where) from None
        return cls(validator_class(schema), location, FlatSchema.of(schema))

    def check(self, arguments: Any) -> None:
        """Raise :class:`MappingError` unless ``arguments`` satisfy the schema."""
        if self.flat is not None and self.flat.accepts(arguments):
            return
        if next(self.validator.iter_errors(arguments), None) is None:
            return
        error = best_match(self.validator.iter_errors(arguments))
        detail = error.message
        if len(detail) > _MAX_MESSAGE:
            detail = detail[: _MAX_MESSAGE - 1] + "…"
        where = "params.arguments" + error.json_path[1:]
        raise MappingError(f"arguments do not match the tool's inputSchema at {where}: {detail}",
                           field=where)
