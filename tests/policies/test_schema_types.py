"""Resolved attribute and context types of a Cedar schema."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import cedarpy
import pytest
from hypothesis import HealthCheck, given, settings

from pdp.errors import PolicyLoadError
from pdp.policies.schema_syntax import schema_to_json
from pdp.policies.schema_types import Attribute, AttrType, RecordType, SchemaTypes
from tests.profiles import examples

from .test_schema_syntax import DOCUMENTS, MULTI_NAMESPACE, PHOTOS, schemas

STRING, LONG, BOOL = AttrType("string"), AttrType("long"), AttrType("bool")


def record(**attributes: AttrType | Attribute) -> AttrType:
    return AttrType("record", attributes={
        k: v if isinstance(v, Attribute) else Attribute(v) for k, v in attributes.items()})


def optional(t: AttrType) -> Attribute:
    return Attribute(t, required=False)


def plain(attributes: Mapping[str, Attribute] | None) -> dict[str, Any] | None:
    """Attributes as nested plain data, for readable comparisons."""
    if attributes is None:
        return None

    def of(t: AttrType) -> Any:
        if t.kind == "set":
            assert t.element is not None
            return ["set", of(t.element)]
        if t.kind == "record":
            return plain(t.attributes)
        return t.kind if t.name is None else f"{t.kind}:{t.name}"

    return {k: of(a.type) if a.required else ("optional", of(a.type))
            for k, a in attributes.items()}


def test_entity_attributes_resolve_common_types_and_extensions() -> None:
    types = SchemaTypes.from_text(DOCUMENTS, "docs.cedarschema")
    assert plain(types.entity_attributes("DocCloud::User")) == {
        "email": "string",
        "display name": ("optional", "string"),
        "clearance": "long",
        "groups": ("optional", ["set", "entity:DocCloud::Group"]),
        "address": {"street": "string", "city": "string", "postal code": ("optional", "string")},
        "lastLogin": ("optional", "extension:datetime"),
    }
    document = types.entity_attributes("DocCloud::Document")
    assert document is not None
    assert document["classification"].type == AttrType("entity", name="DocCloud::Level")
    assert document["retention"] == Attribute(AttrType("extension", name="duration"), False)


def test_an_undeclared_entity_type_has_no_attributes() -> None:
    types = SchemaTypes.from_text(DOCUMENTS)
    assert types.entity_attributes("User") is None
    assert types.entity_attributes("DocCloud::Nobody") is None
    assert types.entity_attributes("DocCloud::Group") == {}
    assert types.entity_attributes("DocCloud::Level") == {}


def test_entity_type_names_are_fully_qualified_and_sorted() -> None:
    types = SchemaTypes.from_text(MULTI_NAMESPACE)
    assert types.entity_type_names() == (
        "Acme::Core::Employee", "Acme::Core::Team", "Billing::Invoice", "Tenant")


def test_a_bare_name_in_a_namespace_resolves_there_first_then_in_the_empty_namespace() -> None:
    types = SchemaTypes.from_text(MULTI_NAMESPACE)
    employee = types.entity_attributes("Acme::Core::Employee")
    assert employee is not None
    assert employee["tenant"].type == AttrType("entity", name="Tenant")
    assert employee["common"].type == record(note=STRING)
    assert employee["manager"] == optional(AttrType("entity", name="Acme::Core::Employee"))
    assert employee["nested"].type == record(a=record(b=record(c=LONG)))
    invoice = types.entity_attributes("Billing::Invoice")
    assert invoice is not None
    assert invoice["issuer"].type == AttrType("entity", name="Acme::Core::Employee")


def test_a_common_type_in_the_namespace_wins_over_an_entity_type_of_the_same_name() -> None:
    types = SchemaTypes.from_text("namespace N { type T = Long; entity T; entity A { x: T }; }")
    assert plain(types.entity_attributes("N::A")) == {"x": "long"}


def test_an_entity_type_named_like_a_builtin_wins_over_the_builtin() -> None:
    types = SchemaTypes.from_text(
        "entity Long; type ipaddr = String; entity A { x: Long, y: ipaddr, z: __cedar::Long };")
    assert plain(types.entity_attributes("A")) == {"x": "entity:Long", "y": "string", "z": "long"}


def test_context_types_by_action_name() -> None:
    types = SchemaTypes.from_text(DOCUMENTS)
    assert types.action_names() == ("audit", "delete", "list", "read", "write")
    assert types.action_names(namespace="DocCloud") == types.action_names()
    assert types.action_names(namespace="") == ()
    read = types.context_type("read")
    assert isinstance(read, RecordType)
    assert plain(read.attributes) == {
        "ip": "extension:ipaddr", "mfa": "bool", "score": ("optional", "extension:decimal"),
        "at": "extension:datetime"}
    assert types.context_type("list") == read
    assert plain(types.context_type("write", "DocCloud").attributes) == {  # type: ignore[union-attr]
        "ip": "extension:ipaddr", "mfa": "bool"}
    assert types.context_type("audit") == RecordType({})
    assert types.context_type("delete") == RecordType({})
    assert types.context_type("nope") is None
    assert types.context_type("read", namespace="") is None


def test_action_parents_name_the_parent_actions_of_the_same_type() -> None:
    types = SchemaTypes.from_text(DOCUMENTS)
    assert dict(types.action_parents()) == {
        "read": (), "list": (), "write": ("read",), "delete": ("write", "read"), "audit": ()}
    other = SchemaTypes.from_text('namespace N { action a; } action b in [N::Action::"a", c]; '
                                  "action c;")
    assert dict(other.action_parents()) == {"a": (), "b": ("c",), "c": ()}


def test_an_action_declared_in_several_namespaces_is_found_in_the_empty_one_first() -> None:
    text = ("namespace B { action a appliesTo { principal: E, resource: E, context: {b: Long} }; "
            "entity E; } "
            "namespace A { action a appliesTo { principal: E, resource: E, context: {a: Long} }; "
            "entity E; } ")
    types = SchemaTypes.from_text(text)
    assert plain(types.context_type("a").attributes) == {"a": "long"}  # type: ignore[union-attr]
    assert plain(types.context_type("a", "B").attributes) == {"b": "long"}  # type: ignore[union-attr]
    with_top = SchemaTypes.from_text(text + "entity E; action a appliesTo "
                                     "{ principal: E, resource: E, context: {top: Long} };")
    assert plain(with_top.context_type("a").attributes) == {"top": "long"}  # type: ignore[union-attr]


def test_every_json_form_of_a_type_is_understood() -> None:
    doc = {"N": {
        "commonTypes": {
            "Ctx": {"type": "Record", "attributes": {"ref": {"type": "Shared"}}},
            "Shared": {"type": "Set", "element": {"type": "Boolean"}},
        },
        "entityTypes": {
            "U": {"shape": {"type": "Record", "attributes": {
                "a": {"type": "String"},
                "b": {"type": "Long", "required": False},
                "c": {"type": "Entity", "name": "U"},
                "d": {"type": "Extension", "name": "decimal"},
                "e": {"type": "EntityOrCommon", "name": "__cedar::ipaddr"},
                "f": {"type": "EntityOrCommon", "name": "Top"},
                "g": {"type": "Shared"},
                "h": {"type": "Entity", "name": "N::U"},
                "i": {"type": "Record", "attributes": {}, "additionalAttributes": False},
            }}},
            "V": {"shape": {"type": "Ctx"}},
            "W": {"enum": ["x"]},
        },
        "actions": {"act": {"appliesTo": {"principalTypes": ["U"], "resourceTypes": ["U"],
                                          "context": {"type": "EntityOrCommon", "name": "Ctx"}}},
                    "bare": {}},
    }, "": {"entityTypes": {"Top": {}}, "actions": {}}}
    cedarpy.Schema.from_json_str(json.dumps(doc))  # a valid schema
    types = SchemaTypes.from_json(doc)
    assert plain(types.entity_attributes("N::U")) == {
        "a": "string", "b": ("optional", "long"), "c": "entity:N::U", "d": "extension:decimal",
        "e": "extension:ipaddr", "f": "entity:Top", "g": ["set", "bool"], "h": "entity:N::U",
        "i": {}}
    assert plain(types.entity_attributes("N::V")) == {"ref": ["set", "bool"]}
    assert plain(types.context_type("act").attributes) == {  # type: ignore[union-attr]
        "ref": ["set", "bool"]}
    assert types.context_type("bare") == RecordType({})


@pytest.mark.parametrize("text", [DOCUMENTS, PHOTOS, MULTI_NAMESPACE])
def test_text_and_json_give_the_same_types(text: str) -> None:
    from_text = SchemaTypes.from_text(text)
    from_json = SchemaTypes.from_json(json.loads(json.dumps(schema_to_json(text))))
    assert from_text == from_json
    assert from_text.entity_type_names() == from_json.entity_type_names()


@settings(max_examples=examples(100), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schemas())
def test_every_generated_schema_resolves_completely(text: str) -> None:
    types = SchemaTypes.from_text(text)
    for name in types.entity_type_names():
        assert types.entity_attributes(name) is not None
    for name in types.action_names():
        assert isinstance(types.context_type(name), RecordType)


@pytest.mark.parametrize(("doc", "message"), [
    ({"": {"entityTypes": {"A": {"shape": {"type": "Record", "attributes": {
        "x": {"type": "EntityOrCommon", "name": "Nope"}}}}}, "actions": {}}},
     "failed to resolve type `Nope`"),
    ({"": {"commonTypes": {"A": {"type": "B"}, "B": {"type": "A"}},
           "entityTypes": {"E": {"shape": {"type": "Record", "attributes": {
               "x": {"type": "A"}}}}}, "actions": {}}},
     "defined in terms of itself"),
    ({"": {"entityTypes": {"E": {}}, "actions": {"a": {"appliesTo": {
        "principalTypes": ["E"], "resourceTypes": ["E"], "context": {"type": "Long"}}}}}},
     "context of `a` must be a record type"),
    ({"": {"entityTypes": {"E": {"shape": {"type": "Record", "attributes": {
        "x": {"type": "Extension", "name": "money"}}}}}, "actions": {}}},
     "unknown extension type `money`"),
    ({"": {"entityTypes": {"E": {"shape": {"type": "Record", "attributes": {
        "x": {"type": "Entity", "name": "Long"}}}}}, "actions": {}}},
     "failed to resolve type `Long`"),
    ({"": {"entityTypes": []}}, "entityTypes must be a JSON object"),
    ([], "a schema must be a JSON object"),
])
def test_an_invalid_json_schema_is_a_policy_load_error(doc: Any, message: str) -> None:
    with pytest.raises(PolicyLoadError) as caught:
        SchemaTypes.from_json(doc, "app.cedarschema.json")
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.file == "app.cedarschema.json"
    assert message in diagnostic.message
    if isinstance(doc, dict):
        with pytest.raises(ValueError):
            cedarpy.Schema.from_json_str(json.dumps(doc))


def test_a_syntax_error_in_text_is_reported_with_its_position() -> None:
    with pytest.raises(PolicyLoadError) as caught:
        SchemaTypes.from_text("entity A {\n  x: Long,\n  y\n};", "app.cedarschema")
    assert str(caught.value) == "app.cedarschema:4:1: expected `:`, found `}`"


def test_absurdly_deep_types_are_rejected_not_crashed_on() -> None:
    deep: dict[str, Any] = {"type": "Long"}
    for _ in range(2000):
        deep = {"type": "Set", "element": deep}
    doc = {"": {"entityTypes": {"E": {"shape": {"type": "Record", "attributes": {"x": deep}}}},
                "actions": {}}}
    with pytest.raises(PolicyLoadError, match="nested more than"):
        SchemaTypes.from_json(doc)
    with pytest.raises(PolicyLoadError, match="nested more than 50 levels"):
        SchemaTypes.from_text("entity E { x: " + "Set<" * 2000 + "Long" + ">" * 2000 + " };")


def test_schema_types_are_immutable() -> None:
    types = SchemaTypes.from_text(PHOTOS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        types._entities = {}  # type: ignore[misc]
    attributes = types.entity_attributes("User")
    assert attributes is not None
    with pytest.raises(TypeError):
        attributes["x"] = Attribute(STRING)  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        attributes["jobLevel"].required = False  # type: ignore[misc]
    parents = types.action_parents()
    with pytest.raises(TypeError):
        parents["x"] = ()  # type: ignore[index]


def test_types_compare_by_value_and_are_hashable() -> None:
    assert record(x=STRING) == record(x=STRING)
    assert record(x=STRING) != record(x=optional(STRING))
    assert hash(AttrType("set", element=LONG)) == hash(AttrType("set", element=LONG))
    assert len({STRING, LONG, BOOL, record(x=STRING)}) == 4
