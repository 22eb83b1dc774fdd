"""Argument validation: jsonschema decides; the precomputed check for flat schemas may only
accept what jsonschema accepts."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from pdp.coaz.arguments import ArgumentValidator, FlatSchema
from pdp.errors import MappingError

TYPE_NAMES = ["string", "integer", "number", "boolean", "null", "object", "array"]
SCALARS = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=3), inner, max_size=3), max_leaves=8)
NAMES = st.sampled_from(["a", "b", "c", "d"])
PROPERTY = st.one_of(
    st.just({}), st.just(True),
    st.fixed_dictionaries({"type": st.sampled_from(TYPE_NAMES)},
                          optional={"description": st.text(max_size=5),
                                    "format": st.sampled_from(["uri", "date-time"])}),
    st.fixed_dictionaries({"type": st.lists(st.sampled_from(TYPE_NAMES), min_size=1,
                                            max_size=3, unique=True)}),
)
FLAT_SCHEMAS = st.fixed_dictionaries(
    {"type": st.just("object"), "properties": st.dictionaries(NAMES, PROPERTY, max_size=4)},
    optional={"required": st.lists(NAMES, max_size=3, unique=True),
              "additionalProperties": st.booleans(),
              "$schema": st.just("https://json-schema.org/draft/2020-12/schema"),
              "x-coaz-mapping": st.just({"subject": {}})})


@given(FLAT_SCHEMAS, st.dictionaries(NAMES, JSON, max_size=4) | JSON)
def test_the_flat_check_accepts_only_what_jsonschema_accepts(
        schema: dict[str, Any], arguments: Any) -> None:
    flat = FlatSchema.of(schema)
    assert flat is not None
    if flat.accepts(arguments):
        assert Draft202012Validator(schema).is_valid(arguments)


@given(FLAT_SCHEMAS, st.dictionaries(NAMES, JSON, max_size=4) | JSON)
def test_the_verdict_is_always_jsonschemas(schema: dict[str, Any], arguments: Any) -> None:
    validator = ArgumentValidator.compile(schema, "tools[0].inputSchema")
    valid = Draft202012Validator(schema).is_valid(arguments)
    try:
        validator.check(arguments)
    except MappingError:
        assert not valid
    else:
        assert valid


@pytest.mark.parametrize("schema", [
    {"type": "object", "properties": {"a": {"type": "string", "minLength": 2}}},
    {"type": "object", "properties": {"a": {"enum": [1, 2]}}},
    {"type": "object", "patternProperties": {"^x": {"type": "string"}}},
    {"type": "object", "additionalProperties": {"type": "string"}},
    {"type": "object", "properties": {"a": False}},
    {"type": "object", "properties": {"a": {"$ref": "#/$defs/x"}}, "$defs": {"x": {}}},
    {"type": "object", "$schema": "http://json-schema.org/draft-04/schema#"},
    {"type": "object", "allOf": [{"required": ["a"]}]},
])
def test_schemas_beyond_the_flat_subset_are_left_to_jsonschema(schema: dict[str, Any]) -> None:
    assert FlatSchema.of(schema) is None
    assert ArgumentValidator.compile(schema, "x").flat is None


def test_the_spec_examples_use_the_flat_check() -> None:
    schema = {"type": "object", "properties": {"id": {"type": "string"},
                                               "case": {"type": "string"}},
              "required": ["id"], "x-coaz-mapping": {}}
    flat = FlatSchema.of(schema)
    assert flat is not None
    assert flat.accepts({"id": "cust-12345", "case": "case-67890"})
    assert not flat.accepts({"case": "case-67890"})


def test_an_integer_valued_float_is_left_to_jsonschema_which_accepts_it() -> None:
    validator = ArgumentValidator.compile(
        {"type": "object", "properties": {"n": {"type": "integer"}}}, "x")
    assert validator.flat is not None and not validator.flat.accepts({"n": 1.0})
    validator.check({"n": 1.0})
