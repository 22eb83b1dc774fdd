"""SARC → Cedar translation (:mod:`pdp.engine.translate`), with and without a schema, and the
engine's decisions compared with plain cedarpy."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import cedarpy
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pdp.authzen.model import Action, Entity, EvaluationRequest
from pdp.engine import CedarRequest, Engine, EngineOptions, Translator, cedar_name_ok
from pdp.entities import InMemoryEntityStore, StoredEntity
from pdp.errors import SchemaViolation, TranslationError
from pdp.policies.compiled import compile_directory
from pdp.policies.schema_types import SchemaTypes
from tests.conftest import POLICIES, make_service
from tests.profiles import examples

SCHEMA_TEXT = """
entity Group;
entity User in [Group] {
  name?: String,
  age?: Long,
  admin?: Bool,
  tags?: Set<String>,
  manager?: User,
  team?: Set<User>,
  address?: { city: String, zip?: Long },
  ip?: ipaddr,
  score?: decimal,
  joined?: datetime,
  scores?: Set<decimal>,
};
entity Doc { owner?: User, level?: Long };
action read appliesTo {
  principal: User,
  resource: Doc,
  context: { ip?: ipaddr, amount?: decimal, when?: datetime, action_properties?: { soft?: Bool } },
};
action write appliesTo { principal: User, resource: Doc };
"""
SCHEMA = SchemaTypes.from_text(SCHEMA_TEXT, "test.cedarschema")


def request(subject: Mapping[str, Any] | None = None, action: str = "read",
            resource: Mapping[str, Any] | None = None, *,
            subject_type: str = "User", resource_type: str = "Doc",
            action_properties: Mapping[str, Any] | None = None,
            context: Mapping[str, Any] | None = None) -> EvaluationRequest:
    return EvaluationRequest(
        Entity(subject_type, "alice", subject),
        Action(action, action_properties),
        Entity(resource_type, "doc-1", resource),
        context)


def plain(req: EvaluationRequest, **kwargs: Any) -> CedarRequest:
    return Translator(None, **kwargs).translate(req)


def typed(req: EvaluationRequest, **kwargs: Any) -> CedarRequest:
    return Translator(SCHEMA, **kwargs).translate(req)


# -- names ----------------------------------------------------------------------------------


def test_types_and_ids_are_used_verbatim() -> None:
    cr = plain(EvaluationRequest(Entity("User", "Alice Smith"), Action("read"),
                                 Entity("App::Doc", 'doc "1"')))
    assert cr.principal == ("User", "Alice Smith")
    assert cr.resource == ("App::Doc", 'doc "1"')
    assert cr.action == ("Action", "read")
    assert cr.context == {} and cr.principal_attrs == {} and cr.resource_attrs == {}


def test_the_namespace_setting_prefixes_types_and_the_action_type() -> None:
    cr = plain(EvaluationRequest(Entity("User", "a"), Action("read"), Entity("App::Doc", "d")),
               namespace="Acme")
    assert cr.principal == ("Acme::User", "a")
    assert cr.resource == ("Acme::App::Doc", "d")
    assert cr.action == ("Acme::Action", "read")


def test_the_namespace_setting_also_prefixes_entity_references() -> None:
    with pytest.raises(SchemaViolation):  # the schema declares User, not Acme::User
        typed(request({"manager": {"type": "User", "id": "bob"}}), namespace="Acme")
    translator = Translator(SchemaTypes.from_text(
        "namespace Acme { entity User { manager?: User }; entity Doc; "
        "action read appliesTo { principal: User, resource: Doc }; }"), namespace="Acme")
    cr = translator.translate(request({"manager": {"type": "User", "id": "bob"}}))
    assert cr.principal_attrs == {"manager": {"__entity": {"type": "Acme::User", "id": "bob"}}}


@pytest.mark.parametrize("namespace", ["not valid", "if", "A::", "1x"])
def test_an_invalid_namespace_setting_is_refused_at_construction(namespace: str) -> None:
    with pytest.raises(ValueError, match="namespace"):
        Translator(None, namespace=namespace)


@pytest.mark.parametrize("name", ["not a type!", "", "9lives", "a::", "::a", "A::::B", "if",
                                  "A::in", "__cedar", "Ns::__cedar", "user-name", "é", "a b",
                                  "User\n"])
@pytest.mark.parametrize("where", ["subject", "resource"])
def test_an_invalid_type_name_is_a_translation_error_naming_the_field(
        name: str, where: str) -> None:
    req = (request(subject_type=name) if where == "subject" else request(resource_type=name))
    for translate in (plain, typed):
        with pytest.raises(TranslationError) as caught:
            translate(req)
        assert caught.value.field == f"{where}.type"
        assert f"{where}.type" in caught.value.message


@pytest.mark.parametrize("name", ["_private", "A1", "Ns::Type", "iff", "Inner::Deep::Type",
                                  "__x", "principal", "resource", "context", "permit",
                                  "when", "Ns::resource"])
def test_valid_type_names_pass(name: str) -> None:
    assert cedar_name_ok(name)
    assert plain(request(subject_type=name)).principal == (name, "alice")


def test_action_names_need_not_be_cedar_identifiers() -> None:
    cr = plain(request(action="can read: everything!"))
    assert cr.action == ("Action", "can read: everything!")


# -- action properties ------------------------------------------------------------------------


def test_action_properties_become_the_action_properties_context_record() -> None:
    cr = plain(request(action_properties={"soft": True, "why": None},
                       context={"ip": "10.0.0.1"}))
    assert cr.context == {"ip": "10.0.0.1", "action_properties": {"soft": True}}


def test_the_action_properties_key_is_configurable() -> None:
    cr = plain(request(action_properties={"soft": True}), action_properties_key="act")
    assert cr.context == {"act": {"soft": True}}


def test_a_context_that_already_has_the_action_properties_key_is_refused() -> None:
    with pytest.raises(TranslationError, match="action_properties"):
        plain(request(action_properties={"soft": True}, context={"action_properties": 1}))
    # and without action.properties: the key is reserved whatever else is sent
    with pytest.raises(TranslationError, match="reserved"):
        plain(request(context={"action_properties": 1}))


def test_with_a_schema_action_properties_follow_the_declared_context() -> None:
    cr = typed(request(action_properties={"soft": True, "undeclared": 1}))
    assert cr.context == {"action_properties": {"soft": True}}
    # `write` declares no context: the properties have nowhere to go
    assert typed(request(action="write", action_properties={"soft": True})).context == {}


# -- values without a schema -------------------------------------------------------------------


def test_json_values_become_cedar_values() -> None:
    props = {"s": "x", "n": -5, "b": False, "set": [1, "two", [3]], "rec": {"a": {"b": True}},
             "empty": {}, "none": []}
    cr = plain(request(props))
    assert cr.principal_attrs == props


def test_an_entity_shaped_object_stays_a_record_without_a_schema() -> None:
    cr = plain(request({"manager": {"type": "User", "id": "bob"}}))
    assert cr.principal_attrs == {"manager": {"type": "User", "id": "bob"}}


@pytest.mark.parametrize(("number", "text"), [
    (1.5, "1.5"), (2.25, "2.25"), (-0.0001, "-0.0001"), (100.5, "100.5"), (0.1234, "0.1234"),
    (922337203685477.5, "922337203685477.5")])
def test_fractions_become_decimals_without_a_schema(number: float, text: str) -> None:
    cr = plain(request(context={"x": number}))
    assert cr.context == {"x": {"__extn": {"fn": "decimal", "arg": text}}}


@pytest.mark.parametrize("number", [1.23456, 0.1 + 0.2, 1e-7, 1e20, -1e300,
                                    922337203685478.5, 2.0**53])
def test_fractions_decimal_cannot_hold_are_translation_errors(number: float) -> None:
    with pytest.raises(TranslationError) as caught:
        plain(request(context={"nested": {"x": number}}))
    assert caught.value.field == "context.nested.x"


@pytest.mark.parametrize("number", [2**63 - 1, -(2**63), 0])
def test_longs_at_the_edges_of_64_bits_pass(number: int) -> None:
    assert plain(request({"n": number})).principal_attrs == {"n": number}


@pytest.mark.parametrize("number", [2**63, -(2**63) - 1, 2**64, 10**30])
def test_longs_out_of_range_are_translation_errors(number: int) -> None:
    with pytest.raises(TranslationError, match="64-bit") as caught:
        plain(request(resource={"sizes": [1, number]}))
    assert caught.value.field == "resource.properties.sizes[1]"
    with pytest.raises(TranslationError):
        typed(request({"age": number}))


def test_nulls_are_dropped_everywhere() -> None:
    cr = plain(request({"a": None, "b": [1, None, 2], "c": {"d": None, "e": 1}},
                       resource={"gone": None}, context={"x": None, "y": [None]}))
    assert cr.principal_attrs == {"b": [1, 2], "c": {"e": 1}}
    assert cr.resource_attrs == {}
    assert cr.context == {"y": []}


@pytest.mark.parametrize("key", ["__entity", "__extn"])
def test_cedar_escape_keys_are_refused_without_a_schema(key: str) -> None:
    smuggled = {key: {"type": "User", "id": "admin"}}
    for req, field in [
        (request(smuggled), f"subject.properties.{key}"),
        (request(resource={"r": smuggled}), f"resource.properties.r.{key}"),
        (request(context={"c": [smuggled]}), f"context.c[0].{key}"),
        (request(action_properties=smuggled), f"context.action_properties.{key}"),
    ]:
        with pytest.raises(TranslationError) as caught:
            plain(req)
        assert caught.value.field == field


@pytest.mark.parametrize("key", ["__entity", "__extn"])
def test_cedar_escape_keys_are_refused_even_where_a_schema_would_drop_them(
        key: str) -> None:
    smuggled = {key: {"type": "User", "id": "admin"}}
    for req in (request({**smuggled, "name": "a"}), request(resource={"level": 1, **smuggled}),
                request(context=smuggled), request(context={"note": [smuggled]})):
        with pytest.raises(TranslationError, match="reserved"):
            typed(req)


# -- values with a schema ----------------------------------------------------------------------


def test_undeclared_properties_are_dropped_with_a_schema() -> None:
    cr = typed(request({"name": "Alice", "role": "admin", "address": {"city": "X", "cc": 1}},
                       resource={"level": 2, "owner_email": "x"},
                       context={"ip": "10.0.0.1", "note": "dropped"}))
    assert cr.principal_attrs == {"name": "Alice", "address": {"city": "X"}}
    assert cr.resource_attrs == {"level": 2}
    assert cr.context == {"ip": {"__extn": {"fn": "ip", "arg": "10.0.0.1"}}}


def test_an_entity_type_the_action_does_not_apply_to_is_a_schema_violation() -> None:
    with pytest.raises(SchemaViolation, match="Robot") as caught:
        typed(request({"name": "x"}, subject_type="Robot"))
    assert caught.value.field == "subject.type"
    with pytest.raises(SchemaViolation, match="Group"):
        typed(request(resource_type="Group"))


def test_an_action_the_schema_does_not_declare_is_a_schema_violation() -> None:
    with pytest.raises(SchemaViolation, match="archive") as caught:
        typed(request(action="archive", context={"anything": [1, "a"]}))
    assert caught.value.field == "action.name"


@pytest.mark.parametrize(("context", "field"), [
    ({"ip": 7}, "context.ip"), ({"when": ["x"]}, "context.when"),
    ({"amount": True}, "context.amount")])
def test_a_declared_context_attribute_of_another_type_is_a_schema_violation(
        context: dict[str, Any], field: str) -> None:
    with pytest.raises(SchemaViolation) as caught:
        typed(request(context=context))
    assert caught.value.field == field


def test_entity_references_where_the_schema_declares_an_entity() -> None:
    cr = typed(request({"manager": {"type": "User", "id": "bob", "extra": 1},
                        "team": [{"type": "User", "id": "c"}, {"type": "User", "id": "d"}]},
                       resource={"owner": {"type": "User", "id": "alice"}}))
    assert cr.principal_attrs == {
        "manager": {"__entity": {"type": "User", "id": "bob"}},
        "team": [{"__entity": {"type": "User", "id": "c"}},
                 {"__entity": {"type": "User", "id": "d"}}]}
    assert cr.resource_attrs == {"owner": {"__entity": {"type": "User", "id": "alice"}}}


@pytest.mark.parametrize("ref", [{"type": "User"}, {"type": "User", "id": 7},
                                 {"id": "bob"}, {"type": "no good", "id": "bob"}])
def test_a_malformed_entity_reference_is_a_translation_error(ref: dict[str, Any]) -> None:
    with pytest.raises(TranslationError) as caught:
        typed(request({"manager": ref}))
    assert caught.value.field is not None
    assert caught.value.field.startswith("subject.properties.manager")


def test_extension_values_where_the_schema_declares_them() -> None:
    cr = typed(request({"ip": "192.168.0.0/16", "score": "3.1415", "joined": "2024-10-15",
                        "scores": [1, "2.5", 0.25]},
                       context={"amount": 12, "when": "2024-10-15T11:35:00Z"}))
    assert cr.principal_attrs == {
        "ip": {"__extn": {"fn": "ip", "arg": "192.168.0.0/16"}},
        "score": {"__extn": {"fn": "decimal", "arg": "3.1415"}},
        "joined": {"__extn": {"fn": "datetime", "arg": "2024-10-15"}},
        "scores": [{"__extn": {"fn": "decimal", "arg": v}} for v in ("1.0", "2.5", "0.25")]}
    assert cr.context == {
        "amount": {"__extn": {"fn": "decimal", "arg": "12.0"}},
        "when": {"__extn": {"fn": "datetime", "arg": "2024-10-15T11:35:00Z"}}}


@pytest.mark.parametrize("value", ["3.14159", "abc", "NaN", "Infinity", 1.00001,
                                   "1e16", 10**20])
def test_a_declared_decimal_beyond_four_places_or_range_is_a_translation_error(
        value: Any) -> None:
    with pytest.raises(TranslationError) as caught:
        typed(request({"score": value}))
    assert caught.value.field == "subject.properties.score"


def test_a_declared_long_accepts_an_integral_float() -> None:
    assert typed(request({"age": 42.0})).principal_attrs == {"age": 42}


def test_declared_records_and_sets_keep_their_shape() -> None:
    cr = typed(request({"tags": ["a", "b"], "admin": True,
                        "address": {"city": "Paris", "zip": 75001}}))
    assert cr.principal_attrs == {"tags": ["a", "b"], "admin": True,
                                  "address": {"city": "Paris", "zip": 75001}}


# -- any JSON at all ---------------------------------------------------------------------------

KEYS = st.sampled_from(["name", "age", "admin", "tags", "manager", "team", "address", "city",
                        "zip", "ip", "score", "joined", "scores", "owner", "level", "amount",
                        "when", "action_properties", "soft", "type", "id", "__entity",
                        "__extn"]) | st.text(max_size=6)
SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12)
           | st.sampled_from(["10.0.0.1", "1.5", "2024-01-01", "User", "bob"]))
JSON = st.recursive(SCALARS, lambda children: st.lists(children, max_size=4)
                    | st.dictionaries(KEYS, children, max_size=4), max_leaves=16)
OBJECTS = st.none() | st.dictionaries(KEYS, JSON, max_size=5)
NAMES = st.sampled_from(["User", "Doc", "Group", "Acme::User"]) | st.text(max_size=10)
REQUESTS = st.builds(
    EvaluationRequest,
    st.builds(Entity, NAMES, st.text(max_size=10), OBJECTS),
    st.builds(Action, st.sampled_from(["read", "write"]) | st.text(max_size=10), OBJECTS),
    st.builds(Entity, NAMES, st.text(max_size=10), OBJECTS),
    OBJECTS)


CERTIFICATION = make_service(POLICIES / "certification")


def _only_cedar_json(value: Any) -> bool:
    """No None and no float may survive translation (Cedar has neither)."""
    if isinstance(value, dict):
        return all(_only_cedar_json(v) for v in value.values())
    if isinstance(value, list):
        return all(_only_cedar_json(v) for v in value)
    return value is not None and not isinstance(value, float)


@settings(max_examples=examples(200), deadline=None)
@given(req=REQUESTS, with_schema=st.booleans(), namespace=st.sampled_from(["", "Acme"]))
def test_translating_any_json_raises_nothing_but_a_translation_error(
        req: EvaluationRequest, with_schema: bool, namespace: str) -> None:
    translator = Translator(SCHEMA if with_schema else None, namespace=namespace)
    try:
        cr = translator.translate(req)
    except TranslationError as exc:
        assert exc.message and exc.field
        return
    for value in (cr.context, cr.principal_attrs, cr.resource_attrs):
        assert _only_cedar_json(value)
        orjson.dumps(value)
    assert cr.principal[1] == req.subject.id and cr.resource[1] == req.resource.id


@settings(max_examples=examples(100), deadline=None)
@given(req=REQUESTS)
def test_the_engine_decides_any_request_without_raising(req: EvaluationRequest) -> None:
    engine = CERTIFICATION.engine
    decision = engine.decide([req])[0]
    assert isinstance(decision.allowed, bool)
    if decision.error is not None:
        assert decision.allowed is False


# -- stored entities against request properties ------------------------------------------------

STORE_POLICIES = """\
@id("admins")
permit (principal, action == Action::"manage", resource) when { principal.role == "admin" };

@id("members")
permit (principal in Group::"staff", action == Action::"enter", resource)
when { principal.badge == "ok" };
"""


@pytest.fixture
def store_engine(tmp_path: Path) -> Engine:
    (tmp_path / "p.cedar").write_text(STORE_POLICIES)
    compiled = compile_directory(tmp_path)
    store = InMemoryEntityStore([
        StoredEntity.build("User", "viewer", {"role": "viewer"}),
        StoredEntity.build("User", "plain", {}),
        StoredEntity.build("User", "staffer", {}, (("Group", "staff"),)),
        StoredEntity.build("Group", "staff", {}),
    ])
    return Engine(lambda: compiled, store)


def _decide(engine: Engine, subject_id: str, action: str,
            properties: Mapping[str, Any] | None) -> bool:
    req = EvaluationRequest(Entity("User", subject_id, properties), Action(action),
                            Entity("Room", "r1"))
    return engine.decide([req])[0].allowed


def test_a_stored_attribute_wins_over_the_same_request_property(store_engine: Engine) -> None:
    assert _decide(store_engine, "viewer", "manage", {"role": "admin"}) is False


def test_request_properties_describe_only_an_entity_the_store_lacks(
        store_engine: Engine) -> None:
    assert _decide(store_engine, "stranger", "manage", {"role": "admin"}) is True
    # a stored entity is authoritative: it gains no attribute it lacks
    assert _decide(store_engine, "plain", "manage", {"role": "admin"}) is False
    assert _decide(store_engine, "plain", "manage", None) is False


def test_a_trusted_property_joins_the_stored_entity_with_its_parents(tmp_path: Path) -> None:
    (tmp_path / "p.cedar").write_text(STORE_POLICIES)
    compiled = compile_directory(tmp_path)
    store = InMemoryEntityStore([
        StoredEntity.build("User", "staffer", {}, (("Group", "staff"),)),
        StoredEntity.build("Group", "staff", {})])
    engine = Engine(lambda: compiled, store,
                    EngineOptions(trusted_properties=frozenset({"User.badge"})))
    assert _decide(engine, "staffer", "enter", {"badge": "ok"}) is True
    assert _decide(engine, "stranger", "enter", {"badge": "ok"}) is False
    assert _decide(engine, "staffer", "manage", {"role": "admin"}) is False


# -- the engine against plain cedarpy ----------------------------------------------------------

TODO_DIR = POLICIES / "todo"
TODO_ENTITIES: list[dict[str, Any]] = json.loads((TODO_DIR / "entities.json").read_text())
TODO_POLICIES = "\n".join(p.read_text() for p in sorted(TODO_DIR.glob("*.cedar")))
TODO = make_service(TODO_DIR)
USER_IDS = [e["uid"]["id"] for e in TODO_ENTITIES]
EMAILS = [e["attrs"]["email"] for e in TODO_ENTITIES]
ROLES = ["viewer", "editor", "admin", "evil_genius", "janitor"]
DECLARED = {"user": ("email", "name", "roles"), "todo": ("ownerID",)}

USER_PROPS = st.fixed_dictionaries({}, optional={
    "email": st.sampled_from(EMAILS) | st.text(max_size=5),
    "name": st.text(max_size=5),
    "roles": st.lists(st.sampled_from(ROLES), max_size=3, unique=True),
    "department": st.text(max_size=5)})
TODO_PROPS = st.fixed_dictionaries({}, optional={
    "ownerID": st.sampled_from(EMAILS) | st.text(max_size=5), "title": st.text(max_size=5)})
ACTIONS = st.sampled_from(["can_read_user", "can_read_todos", "can_create_todo",
                           "can_update_todo", "can_delete_todo", "can_fly"])


@st.composite
def todo_requests(draw: st.DrawFn) -> EvaluationRequest:
    subject = Entity("user", draw(st.sampled_from([*USER_IDS, "newcomer"])),
                     draw(st.none() | USER_PROPS))
    action = draw(ACTIONS)
    if draw(st.booleans()):
        resource = Entity("todo", draw(st.sampled_from(["1", "2", "x"])),
                          draw(st.none() | TODO_PROPS))
    else:
        resource = Entity("user", draw(st.sampled_from(EMAILS)), draw(st.none() | USER_PROPS))
    return EvaluationRequest(subject, Action(action), resource,
                             draw(st.none() | st.just({"ip": "10.0.0.1"})))


def _hand_built_entity(entity: Entity) -> dict[str, Any] | None:
    """The Cedar entity for a request's subject or resource, written out independently: the
    stored entity if there is one (it is authoritative), else the declared properties."""
    stored = next((e for e in TODO_ENTITIES if e["uid"] == {"type": entity.type,
                                                           "id": entity.id}), None)
    if stored is not None:
        return stored
    props = {k: v for k, v in (entity.properties or {}).items() if k in DECLARED[entity.type]}
    if not props:
        return None
    return {"uid": {"type": entity.type, "id": entity.id}, "attrs": props, "parents": []}


def _declared(req: EvaluationRequest) -> bool:
    types = TODO.policies.current.schema_types
    assert types is not None
    if types.context_type(req.action.name) is None:
        return False
    applies = types.applies_to(req.action.name)
    return applies is None or (req.subject.type in applies[0]
                               and req.resource.type in applies[1])


@settings(max_examples=examples(150), deadline=None)
@given(reqs=st.lists(todo_requests(), min_size=1, max_size=4))
def test_the_engine_decides_as_plain_cedarpy_does_on_the_todo_policies(
        reqs: list[EvaluationRequest]) -> None:
    decisions = TODO.engine.decide(reqs)
    for req, decision in zip(reqs, decisions, strict=True):
        if not _declared(req):
            assert not decision.allowed and decision.outcome == "invalid", (req, decision)
            continue
        entities = [e for e in TODO_ENTITIES
                    if e["uid"] not in ({"type": req.subject.type, "id": req.subject.id},
                                        {"type": req.resource.type, "id": req.resource.id})]
        entities += [e for e in map(_hand_built_entity, (req.subject, req.resource)) if e]
        expected = cedarpy.is_authorized({
            "principal": {"type": req.subject.type, "id": req.subject.id},
            "action": {"type": "Action", "id": req.action.name},
            "resource": {"type": req.resource.type, "id": req.resource.id},
            "context": {},
        }, TODO_POLICIES, entities)
        assert decision.error is None
        assert decision.allowed is expected.allowed, (req, decision)


@pytest.mark.parametrize(("number", "long"), [(20000.0, 20000), (2e4, 20000), (-0.0, 0),
                                              (1e15, 10**15), (-(2.0**53 - 1), -(2**53 - 1))])
def test_integral_numbers_are_longs_however_they_are_written(number: float, long: int) -> None:
    cr = plain(request(context={"x": number}))
    assert cr.context == {"x": long} and type(cr.context["x"]) is int


def test_the_same_context_is_translated_once_and_never_changed_by_action_properties() -> None:
    t = Translator(None)

    def asked(context: dict[str, Any], action: str = "read",
              properties: dict[str, Any] | None = None) -> EvaluationRequest:
        return EvaluationRequest(Entity("User", "u"), Action(action, properties),
                                 Entity("Doc", "d"), context)

    first = t.translate(asked({"hour": 9, "ip": "10.0.0.1"})).context
    assert t.translate(asked({"hour": 9, "ip": "10.0.0.1"})).context is first
    assert t.translate(asked({"hour": 9, "ip": "10.0.0.1"}, "write")).context is not first
    with_properties = t.translate(asked({"hour": 9, "ip": "10.0.0.1"}, properties={"n": 1}))
    assert with_properties.context == {"hour": 9, "ip": "10.0.0.1",
                                       "action_properties": {"n": 1}}
    assert first == {"hour": 9, "ip": "10.0.0.1"}
    assert t.translate(asked({"hour": 9, "ip": "10.0.0.1"})).context == first


def test_a_refused_context_is_refused_every_time_and_only_json_is_remembered() -> None:
    t = Translator(None)

    def context(value: dict[str, Any]) -> dict[str, Any]:
        return t.translate(EvaluationRequest(Entity("User", "u"), Action("read"),
                                             Entity("Doc", "d"), value)).context

    for _ in range(2):
        with pytest.raises(TranslationError, match="64-bit"):
            context({"n": 2**70})
        with pytest.raises(TranslationError, match="reserved"):
            context({"x": {"__extn": {"fn": "ip", "arg": "1.2.3.4"}}})
    assert context({"at": "2026-12-07T00:00:00"}) == {"at": "2026-12-07T00:00:00"}
    with pytest.raises(TranslationError, match="unsupported JSON value"):
        context({"at": datetime(2026, 12, 7)})  # orjson would write it as the text above
