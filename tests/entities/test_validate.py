"""Entity documents are checked against the schema with messages naming the entity and the
attribute, and a batch is accepted only as a whole."""

from __future__ import annotations

from typing import Any

import cedarpy
import pytest

from pdp.entities.validate import EntityValidator
from pdp.errors import EntityError
from pdp.policies.schema_types import SchemaTypes

SCHEMA = """
entity group;
entity doc;
entity user in [group] {
  name: String,
  age?: Long,
  admin?: Bool,
  tags?: Set<String>,
  address?: { city: String, zip?: String },
  manager?: user,
  ip?: ipaddr,
};
action read appliesTo { principal: user, resource: doc };
"""
VALIDATOR = EntityValidator(cedarpy.Schema.from_str(SCHEMA), SchemaTypes.from_text(SCHEMA))


def user(attrs: dict[str, Any], parents: list[Any] | None = None, uid: str = "ann",
         ) -> dict[str, Any]:
    return {"uid": {"type": "user", "id": uid}, "attrs": attrs, "parents": parents or []}


def refusal(doc: Any, validator: EntityValidator = VALIDATOR) -> str:
    with pytest.raises(EntityError) as refused:
        validator.validate([doc])
    return refused.value.message


def test_a_conforming_entity_is_normalised_to_explicit_cedar_json() -> None:
    [ent] = VALIDATOR.validate([user(
        {"name": "Ann", "age": 41, "tags": ["a"], "address": {"city": "Oslo"},
         "manager": {"type": "user", "id": "bo"}, "ip": {"__extn": {"fn": "ip",
                                                                    "arg": "10.0.0.1"}}},
        [{"type": "group", "id": "staff"}])])
    assert ent.uid == ("user", "ann")
    assert ent.attrs["manager"] == {"__entity": {"type": "user", "id": "bo"}}
    assert ent.parents == (("group", "staff"),)


@pytest.mark.parametrize(("doc", "message"), [
    ({"uid": {"type": "robot", "id": "r"}, "attrs": {}},
     'entity robot::"r": type `robot` is not declared in the schema'),
    (user({}), 'entity user::"ann": required attribute `name` is missing'),
    (user({"name": "Ann", "shoe": 42}),
     'entity user::"ann": attribute `shoe` is not declared in the schema'),
    (user({"name": 7}), 'entity user::"ann": attribute `name` must be String, got 7'),
    (user({"name": "Ann", "age": "41"}),
     'entity user::"ann": attribute `age` must be Long, got "41"'),
    (user({"name": "Ann", "age": True}),
     'entity user::"ann": attribute `age` must be Long, got true'),
    (user({"name": "Ann", "admin": "yes"}),
     'entity user::"ann": attribute `admin` must be Bool, got "yes"'),
    (user({"name": "Ann", "tags": ["a", 2]}),
     'entity user::"ann": attribute `tags[1]` must be String, got 2'),
    (user({"name": "Ann", "address": {"zip": "0150"}}),
     'entity user::"ann": required attribute `address.city` is missing'),
    (user({"name": "Ann", "address": {"city": "Oslo", "street": "x"}}),
     'entity user::"ann": attribute `address.street` is not declared in the schema'),
    (user({"name": "Ann", "manager": {"type": "doc", "id": "d"}}),
     'entity user::"ann": attribute `manager` must reference a user, got doc::"d"'),
    (user({"name": "Ann", "manager": "bo"}),
     'entity user::"ann": attribute `manager` must be user, got "bo"'),
    (user({"name": "Ann"}, [{"type": "team", "id": "t"}]),
     'entity user::"ann": parent team::"t" is of a type the schema does not declare'),
])
def test_a_nonconforming_entity_is_refused_with_entity_and_attribute_named(
        doc: dict[str, Any], message: str) -> None:
    assert refusal(doc) == message


def test_a_parent_of_a_type_the_schema_forbids_is_refused_by_cedar_naming_the_entity() -> None:
    message = refusal(user({"name": "Ann"}, [{"type": "doc", "id": "d"}]))
    assert message.startswith('entity user::"ann": ')


@pytest.mark.parametrize(("doc", "message"), [
    ([], "entities[0] must be a JSON object"),
    ({"attrs": {}}, 'entities[0].uid must be an object {"type", "id"}'),
    ({"uid": {"type": "user", "id": 5}}, "entities[0].uid.id must be a string"),
    ({"uid": {"type": "", "id": "x"}}, "entities[0].uid.type must be a non-empty string"),
    ({"uid": {"type": "user", "id": "x"}, "attrs": []},
     'entity user::"x": attrs must be an object'),
    ({"uid": {"type": "user", "id": "x"}, "parents": {}},
     'entity user::"x": parents must be an array'),
    ({"uid": {"type": "user", "id": "x"}, "parents": [{"type": "group"}]},
     "entities[0].parents[0].id must be a string"),
])
def test_a_malformed_document_is_refused_with_its_position(doc: Any, message: str) -> None:
    assert refusal(doc, EntityValidator()) == message


def test_a_batch_is_refused_as_a_whole_for_one_bad_entity_or_a_duplicate() -> None:
    with pytest.raises(EntityError, match='user::"c"'):
        VALIDATOR.validate([user({"name": "A"}, uid="a"), user({"name": "B"}, uid="b"),
                            user({"name": 3}, uid="c")])
    with pytest.raises(EntityError, match='entity user::"a" appears twice'):
        VALIDATOR.validate([user({"name": "A"}, uid="a"), user({"name": "B"}, uid="a")])


def test_without_a_schema_any_well_formed_entity_is_accepted() -> None:
    [ent] = EntityValidator().validate([{"uid": {"type": "thing", "id": "t"},
                                         "attrs": {"anything": [1, "two"]}}])
    assert ent.attrs == {"anything": [1, "two"]}
