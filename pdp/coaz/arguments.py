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

The schema comes from the MCP server, so it is untrusted input:

* **no retrieval**: only references inside the schema itself (``#``, ``#/$defs/...``,
  ``#anchor``) are allowed; any other ``$ref`` / ``$dynamicRef`` (``file:``, ``http:``, a
  relative file name) makes the tool malformed, and the validator is given an empty
  ``referencing`` registry that cannot retrieve anything, so a reference that still does not
  resolve fails the call (-32602) without any file read or network request;
* **linear-time regular expressions**: ``pattern`` and ``patternProperties`` run on RE2
  (``google-re2``), whose matching time is linear in the input; a pattern RE2 cannot run
  (backreferences, lookaround) makes the tool malformed. ``format`` is an annotation here
  (no format checker), so no regular expression runs for it;
* **bounded**: a schema larger than :data:`MAX_SCHEMA_BYTES` (serialized) or nested deeper than
  :data:`MAX_SCHEMA_DEPTH` makes the tool malformed.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import re2  # type: ignore[import-untyped]
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from jsonschema.exceptions import (  # type: ignore[import-untyped]
    SchemaError,
    ValidationError,
    best_match,
)
from jsonschema.protocols import Validator  # type: ignore[import-untyped]
from jsonschema.validators import extend, validator_for  # type: ignore[import-untyped]
from referencing import Registry
from referencing.exceptions import Unresolvable

from pdp.errors import MappingError

__all__ = ["ArgumentValidator", "FlatSchema", "MAX_SCHEMA_BYTES", "MAX_SCHEMA_DEPTH"]

_MAX_MESSAGE = 300
#: Largest ``inputSchema`` accepted (bytes of its JSON).
MAX_SCHEMA_BYTES = 65_536
#: Deepest nesting of objects and arrays accepted in an ``inputSchema``.
MAX_SCHEMA_DEPTH = 32
#: Keywords whose values are instances, not schemas (no references or patterns inside).
_DATA_KEYWORDS = frozenset({"const", "enum", "default", "examples"})
_REF_KEYWORDS = ("$ref", "$dynamicRef", "$recursiveRef")

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


def _compile_pattern(pattern: str, where: str) -> None:
    """Refuse a pattern RE2 cannot run (a malformed tool)."""
    try:
        _re2(pattern)
    except re2.error as exc:
        raise MappingError(f"{where}: the pattern {pattern!r} is not supported (patterns run on "
                           f"a linear-time engine, RE2: no backreferences or lookaround): "
                           f"{exc}", field=where) from None


@functools.lru_cache(maxsize=4096)
def _re2(pattern: str) -> Any:
    """A compiled RE2 pattern (memoised: compiling costs more than matching)."""
    return re2.compile(pattern)


def _screen(node: Any, where: str, depth: int) -> None:
    """Refuse non-local references and patterns RE2 cannot run, and excessive depth."""
    if depth > MAX_SCHEMA_DEPTH:
        raise MappingError(f"{where}: the schema is nested deeper than {MAX_SCHEMA_DEPTH} "
                           "levels", field=where)
    if isinstance(node, list):
        for i, item in enumerate(node):
            _screen(item, f"{where}[{i}]", depth + 1)
        return
    if not isinstance(node, dict):
        return
    for keyword in _REF_KEYWORDS:
        ref = node.get(keyword)
        if isinstance(ref, str) and not ref.startswith("#"):
            spot = f"{where}.{keyword}"
            raise MappingError(f"{spot}: {keyword} {ref!r} is not allowed: only references "
                               "inside the schema (#/..., #/$defs/...) are resolved, nothing "
                               "is retrieved", field=spot)
    pattern = node.get("pattern")
    if isinstance(pattern, str):
        _compile_pattern(pattern, f"{where}.pattern")
    by_pattern = node.get("patternProperties")
    if isinstance(by_pattern, dict):
        for key in by_pattern:
            _compile_pattern(key, f"{where}.patternProperties")
    for key, value in node.items():
        if key in _DATA_KEYWORDS or key.startswith("x-"):
            continue
        _screen(value, f"{where}.{key}", depth + 1)


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    if validator.is_type(instance, "string") and _re2(pattern).search(instance) is None:
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(validator: Any, by_pattern: Mapping[str, Any], instance: Any,
                        schema: Any) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in by_pattern.items():
        compiled = _re2(pattern)
        for key, value in instance.items():
            if compiled.search(key) is not None:
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


@functools.cache
def _linear_class(base: Any) -> Any:
    """``base`` (a draft's validator class) with ``pattern`` and ``patternProperties`` on RE2;
    one per draft."""
    keywords: dict[str, Callable[..., Iterator[Any]]] = {
        "pattern": _pattern, "patternProperties": _pattern_properties}
    return extend(base, keywords)


@dataclass(frozen=True, slots=True)
class ArgumentValidator:
    """A tool's ``inputSchema``, checked and compiled once; ``location`` is its place in the
    tool list."""

    validator: Validator
    location: str
    flat: FlatSchema | None = None

    @classmethod
    def compile(cls, schema: Mapping[str, Any], location: str) -> ArgumentValidator:
        """Raises :class:`MappingError` (located in the schema) if ``schema`` is invalid,
        too large or too deep, refers outside itself or has a pattern RE2 cannot run."""
        _screen(schema, location, 0)  # first: it bounds the depth
        try:
            size = len(orjson.dumps(schema))
        except TypeError:  # an integer beyond 64 bits
            size = len(json.dumps(schema))
        if size > MAX_SCHEMA_BYTES:
            raise MappingError(f"{location}: the schema is larger than {MAX_SCHEMA_BYTES} bytes "
                               f"({size})", field=location)
        validator_class = validator_for(schema, default=Draft202012Validator)
        try:
            validator_class.check_schema(schema)
        except SchemaError as error:
            where = location + error.json_path[1:]
            raise MappingError(f"{where}: invalid JSON Schema: {error.message}",
                               field=where) from None
        linear = _linear_class(validator_class)
        return cls(linear(schema, registry=Registry()), location, FlatSchema.of(schema))

    def check(self, arguments: Any) -> None:
        """Raise :class:`MappingError` unless ``arguments`` satisfy the schema."""
        if self.flat is not None and self.flat.accepts(arguments):
            return
        try:
            if next(self.validator.iter_errors(arguments), None) is None:
                return
            error = best_match(self.validator.iter_errors(arguments))
        except Unresolvable as exc:  # a local reference to nothing: nothing is retrieved
            raise MappingError(f"{self.location}: a $ref of the tool's inputSchema does not "
                               f"resolve inside the schema: {exc}",
                               field=self.location) from None
        detail = error.message
        if len(detail) > _MAX_MESSAGE:
            detail = detail[: _MAX_MESSAGE - 1] + "…"
        where = "params.arguments" + error.json_path[1:]
        raise MappingError(f"arguments do not match the tool's inputSchema at {where}: {detail}",
                           field=where)
