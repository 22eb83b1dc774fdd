"""Cedar schema syntax → Cedar JSON schema, checked against Cedar's own parser (via cedarpy)."""

from __future__ import annotations

import json
import re
from typing import Any

import cedarpy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pdp.errors import PolicyLoadError
from pdp.policies.schema_syntax import schema_to_json
from tests.profiles import examples


def rendered_by_cedar(text: str) -> str | None:
    """Cedar's canonical rendering of ``text``, None if Cedar rejects it."""
    try:
        return str(cedarpy.Schema.from_str(text))
    except ValueError:
        return None


def rendered_via_json(text: str) -> str | None:
    """Cedar's canonical rendering of our translation of ``text``, None if either rejects it."""
    try:
        doc = schema_to_json(text)
    except PolicyLoadError:
        return None
    try:
        return str(cedarpy.Schema.from_json_str(json.dumps(doc)))
    except ValueError:
        return None


def assert_equivalent(text: str) -> None:
    expected = rendered_by_cedar(text)
    assert expected is not None, "the test schema itself should be valid"
    assert rendered_via_json(text) == expected


def error_of(text: str) -> tuple[int | None, int | None, str]:
    with pytest.raises(PolicyLoadError) as caught:
        schema_to_json(text, "app.cedarschema")
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.file == "app.cedarschema"
    return diagnostic.line, diagnostic.column, diagnostic.message


# -- realistic schemas ----------------------------------------------------------------------

DOCUMENTS = """
// A document-sharing application.
namespace DocCloud {
  @doc("A person who signs in")
  entity User in [Group] = {
    "email": String,
    "display name"?: String,
    clearance: Long,
    groups?: Set<Group>,
    address: Address,
    lastLogin?: datetime,
  } tags String;
  entity Group in [Group];
  entity Document in [Folder] {
    owner: User,
    viewers: Set<User>,
    classification: Level,
    size: Long,
    checksum?: { algorithm: String, value: String },
    retention?: duration,
  };
  entity Folder in [Folder] = { owner: User };
  entity Level enum ["public", "internal", "secret"];
  type Address = { street: String, city: String, "postal code"?: String };
  type RequestContext = {
    ip: ipaddr,
    mfa: Bool,
    score?: __cedar::decimal,
    at: __cedar::datetime,
  };

  action read, "list" appliesTo {
    principal: [User, Group],
    resource: [Document, Folder],
    context: RequestContext,
  };
  @doc("writes need MFA")
  action write in [read] appliesTo {
    principal: User,
    resource: Document,
    context: { ip: ipaddr, mfa: Bool }
  };
  action "delete" in [Action::"write", DocCloud::Action::"read"] appliesTo {
    resource: Document, principal: User
  };
  action audit;
}
"""

PHOTOS = """
entity User in [UserGroup] { department: String, jobLevel: Long };
entity UserGroup;
entity Administrator;
entity Photo in [Album] { private: Bool, account: Account, tags?: Set<String> };
entity Album in [Album] { account: Account, private: Bool };
entity Account { owner: User, admins?: Set<User> };
action viewPhoto appliesTo {
  principal: [User, UserGroup, Administrator],
  resource: Photo,
  context: { authenticated: Bool },
};
action listAlbums, listPhotos appliesTo { principal: User, resource: [Album, Account] };
action uploadPhoto appliesTo { principal: User, resource: [Album], context: {} };
"""

MULTI_NAMESPACE = """
type Common = { note: String };
entity Tenant { name: String };
@doc("core types")
namespace Acme::Core {
  entity Employee in [Acme::Core::Team, Tenant] = {
    tenant: Tenant,
    common: Common,
    manager?: Employee,
    badges: Set<Set<Long>>,
    nested: { a: { b: { c: __cedar::Long } } },
  };
  entity Team;
  action badge appliesTo { principal: Employee, resource: Team };
}
namespace Billing {
  entity Invoice { issuer: Acme::Core::Employee, amount: decimal, tenant: Tenant };
  type Money = { amount: decimal, currency: String };
  action pay appliesTo {
    principal: Acme::Core::Employee,
    resource: Invoice,
    context: { total: Money, ok: __cedar::Bool }
  };
}
action ping appliesTo { principal: [Tenant], resource: [Tenant] };
"""

KEYWORDS_AS_NAMES = """
entity namespace, entity, action, type, Set, String, principal, context, appliesTo, tags;
entity enum enum ["a", "b"];
entity Holder {
  namespace: namespace, Set: Set, type: Set<type>, tags: tags, enum: enum,
  "if": Long, "has": String
} tags Set<String>;
action "if", "in", enum, principal appliesTo { principal: entity, resource: action };
"""


@pytest.mark.parametrize("text", [DOCUMENTS, PHOTOS, MULTI_NAMESPACE, KEYWORDS_AS_NAMES])
def test_realistic_schemas_convert_to_equivalent_json(text: str) -> None:
    assert_equivalent(text)


def test_a_namespaced_entity_with_parents_converts_to_equivalent_json() -> None:
    text = "namespace App { entity Group; entity User in [Group, App::Group] { name: String }; }"
    assert_equivalent(text)
    doc = schema_to_json(text)
    assert doc["App"]["entityTypes"]["User"] == {
        "memberOfTypes": ["Group", "App::Group"],
        "shape": {"type": "Record", "attributes": {
            "name": {"type": "EntityOrCommon", "name": "String"}}},
    }


def test_an_optional_quoted_attribute_is_not_required() -> None:
    doc = schema_to_json('entity A = { "quoted attr"?: Set<Long> };')
    assert doc[""]["entityTypes"]["A"]["shape"]["attributes"]["quoted attr"] == {
        "type": "Set", "element": {"type": "EntityOrCommon", "name": "Long"}, "required": False}


def test_an_action_translates_parents_applies_to_and_context() -> None:
    doc = schema_to_json(
        'entity U; action "a", b in [c, Action::"d"] '
        "appliesTo { principal: [U], resource: U, context: { x: Long } }; action c; action d;")
    expected = {
        "memberOf": [{"id": "c"}, {"id": "d", "type": "Action"}],
        "appliesTo": {
            "principalTypes": ["U"], "resourceTypes": ["U"],
            "context": {"type": "Record", "attributes": {
                "x": {"type": "EntityOrCommon", "name": "Long"}}},
        },
    }
    assert doc[""]["actions"]["a"] == expected
    assert doc[""]["actions"]["b"] == expected
    assert doc[""]["actions"]["c"] == {"appliesTo": {"principalTypes": [], "resourceTypes": []}}


def test_a_named_context_is_a_common_type_reference() -> None:
    doc = schema_to_json(
        "type C = { a: Long }; entity E; action a appliesTo { principal: E, resource: E, "
        "context: C };")
    assert doc[""]["actions"]["a"]["appliesTo"]["context"] == {"type": "C"}
    assert doc[""]["commonTypes"]["C"]["type"] == "Record"


def test_an_enumerated_entity_type_lists_its_choices() -> None:
    doc = schema_to_json('entity Color, Colour enum ["red", "gr\\u{e9}en"];')
    assert doc[""]["entityTypes"]["Color"] == {"enum": ["red", "gréen"]}
    assert doc[""]["entityTypes"]["Colour"] == {"enum": ["red", "gréen"]}


def test_annotations_are_kept_on_namespaces_declarations_and_attributes() -> None:
    text = '@ns("n") namespace N { @doc("e") @flag entity E { @a("b") x: Long }; }'
    doc = schema_to_json(text)
    assert doc["N"]["annotations"] == {"ns": "n"}
    assert doc["N"]["entityTypes"]["E"]["annotations"] == {"doc": "e", "flag": ""}
    assert doc["N"]["entityTypes"]["E"]["shape"]["attributes"]["x"]["annotations"] == {"a": "b"}
    assert_equivalent(text)


def test_string_escapes_are_decoded() -> None:
    doc = schema_to_json(r'entity A { "t\tq\"\\\'\0\x41\u{1F600}\n": Long };')
    assert list(doc[""]["entityTypes"]["A"]["shape"]["attributes"]) == ["t\tq\"\\'\0A😀\n"]


def test_comments_and_windows_line_endings_are_ignored() -> None:
    text = "// header\r\nentity A; // trailing\r\n// another\r\nentity B in A;"
    assert_equivalent(text)


def test_an_empty_schema_converts_to_an_empty_object() -> None:
    assert schema_to_json("  // nothing here\n") == {}
    assert_equivalent("namespace Empty {}")


def test_the_result_is_plain_json() -> None:
    doc = schema_to_json(DOCUMENTS)
    assert json.loads(json.dumps(doc)) == doc


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "line", "column", "message"), [
    ("entity A", 1, 9, "expected `;`, found end of input"),
    ("entity A;\nentity B {\n  x: Long\n  y: String\n};", 4, 3, "expected `,` or `}`, found `y`"),
    ("entity A { x: 1 };", 1, 15, "found `1`"),
    ("namespace N {\n  entity A;\n  permit;\n}", 3, 3, "expected `entity`, `action`, `type`"),
    ('entity A {\n  "open: Long };', 2, 3, "unterminated string literal"),
    ("entity A { x: Long }; #", 1, 23, "unexpected character '#'"),
    ("entity in;", 1, 8, "`in` is a reserved identifier"),
    ("entity A { true: Bool };", 1, 12, "`true` is a reserved identifier"),
    ("namespace A::__cedar { }", 1, 14, "reserved `__cedar`"),
    ("type Long = String;", 1, 6, "reserved schema keyword"),
    ("entity A;\n\nentity B, A;", 3, 11, "duplicate declaration of entity type `A`"),
    ("namespace N { action a; action \"a\"; }", 1, 32, "duplicate declaration of action `N::a`"),
    ("namespace N {}\nnamespace N {}", 2, 11, "duplicate namespace `N`"),
    ('@doc("a")\n  @doc("b") entity A;', 2, 3, "duplicate annotation `@doc`"),
    ('entity A { "bad\\q": Long };', 1, 16, "invalid escape sequence `\\q`"),
    ('entity A { "bad\\u{D800}": Long };', 1, 16, "invalid escape sequence"),
    ("entity A; action a appliesTo { principal: A };", 1, 18, "missing `resource`"),
    ("entity A; action a appliesTo {\n principal: [], resource: A };", 2, 2, "`[]`"),
    ("entity A; action a appliesTo { principal: A, principal: A, resource: A };", 1, 46,
     "duplicate `principal`"),
    ("action a appliesTo {};", 1, 21, "expected `principal`, `resource` or `context`"),
    ("entity A; action a in [A::B] appliesTo { principal: A, resource: A };", 1, 28,
     "expected `::` and a quoted action name, found `]`"),
    ("entity A { x: Set<Long };", 1, 24, "expected `>`, found `}`"),
    ('entity E enum ["a",];', 1, 20, "expected a string literal, found `]`"),
    ("entity A; action a appliesTo { principal: [A,], resource: A };", 1, 46,
     "expected an identifier, found `]`"),
])
def test_syntax_errors_report_the_line_and_column_of_the_offending_token(
        text: str, line: int, column: int, message: str) -> None:
    assert rendered_by_cedar(text) is None, "Cedar rejects these too"
    found_line, found_column, found_message = error_of(text)
    assert (found_line, found_column) == (line, column), found_message
    assert message in found_message


def test_columns_count_characters_not_bytes() -> None:
    assert error_of('entity A { "ü": Long, "é" };')[:2] == (1, 27)


def test_the_error_names_the_file_and_position() -> None:
    with pytest.raises(PolicyLoadError) as caught:
        schema_to_json("entity A {\n", "x.cedarschema")
    assert str(caught.value) == (
        "x.cedarschema:2:1: expected an attribute name or `}`, found end of input")


# -- differential testing against Cedar -----------------------------------------------------

_PRIMITIVES = ["String", "Long", "Bool", "__cedar::String", "__cedar::Long", "__cedar::Bool",
               "ipaddr", "decimal", "datetime", "duration", "__cedar::ipaddr",
               "__cedar::datetime"]
_ATTRIBUTE_NAMES = st.one_of(
    st.sampled_from(["name", "age", "owner", "tags", "ip", "entity", "Set", "_x1"]),
    st.sampled_from(['"display name"', '"a\\"b"', '"\\u{e9}t\\u{e9}"', '"in"', '""']),
)
_SPACE = st.sampled_from([" ", "\n", "  ", " // note\n", "\n\t", "\r\n"])


def _coin(draw: st.DrawFn) -> bool:
    return draw(st.booleans())


@st.composite
def _annotations(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 3)):
        return ""
    keys = draw(st.lists(st.sampled_from(["doc", "id", "if", "x_1"]), unique=True, max_size=2))
    parts = [f"@{k}" if draw(st.booleans()) else f'@{k}("{draw(st.sampled_from(["", "v"]))}")'
             for k in keys]
    return "".join(p + draw(_SPACE) for p in parts)


@st.composite
def _type(draw: st.DrawFn, refs: list[str], depth: int = 0) -> str:
    choices = ["primitive", "ref"] if refs else ["primitive"]
    if depth < 2:
        choices += ["set", "record"]
    choice = draw(st.sampled_from(choices))
    if choice == "primitive":
        return draw(st.sampled_from(_PRIMITIVES))
    if choice == "ref":
        return draw(st.sampled_from(refs))
    if choice == "set":
        return f"Set<{draw(_type(refs, depth + 1))}>"
    return draw(_record(refs, depth + 1))


@st.composite
def _record(draw: st.DrawFn, refs: list[str], depth: int = 0) -> str:
    names = draw(st.lists(_ATTRIBUTE_NAMES, max_size=4, unique=True))
    attributes: list[str] = []
    for name in names:
        optional = _coin(draw)
        attributes.append(f"{draw(_annotations())}{name}{'?' if optional else ''}: "
                          f"{draw(_type(refs, depth))}")
    trailing = "," if attributes and _coin(draw) else ""
    return "{" + draw(_SPACE) + ("," + draw(_SPACE)).join(attributes) + trailing + "}"


def _entity_list(draw: st.DrawFn, entities: list[str], *, allow_empty: bool) -> str:
    chosen = draw(st.lists(st.sampled_from(entities), min_size=0 if allow_empty else 1,
                           max_size=3, unique=True))
    if len(chosen) == 1 and draw(st.booleans()):
        return chosen[0]
    return "[" + ", ".join(chosen) + "]"


@st.composite
def _namespace_body(draw: st.DrawFn, index: int, outer: list[str], outer_records: list[str],
                    prefix: str) -> tuple[str, list[str], list[str]]:
    """Declarations of namespace number ``index``, its entity types and record common types.

    ``outer`` are the entity types and ``outer_records`` the record common types declared
    elsewhere that it may use; ``prefix`` is its own ``Namespace::``.
    """
    decls: list[str] = []
    own_entities = [f"E{index}{i}" for i in range(draw(st.integers(1, 3)))]
    entities = own_entities + outer
    # Entities may be referred to before they are declared; common types only afterwards.
    refs = entities + [f"{prefix}{e}" for e in own_entities]
    records: list[str] = list(outer_records)
    for i in range(draw(st.integers(0, 2))):
        name = f"T{index}{i}"
        body = draw(st.one_of(_record(refs), _type(refs)))
        decls.append(f"{draw(_annotations())}type {name} = {body};")
        refs.append(name)
        if body.startswith("{"):
            records.append(name)
    for name in own_entities:
        if draw(st.integers(0, 5)) == 0:
            decls.append(f'entity {name} enum ["a", "b"];')
            continue
        decl = f"entity {name}"
        if draw(st.booleans()):
            decl += " in " + _entity_list(draw, entities, allow_empty=True)
        if draw(st.booleans()):
            decl += (" = " if draw(st.booleans()) else " ") + draw(_record(refs))
        if draw(st.integers(0, 3)) == 0:
            decl += " tags " + draw(_type(refs))
        decls.append(draw(_annotations()) + decl + ";")
    actions: list[str] = []
    for i in range(draw(st.integers(0, 3))):
        name = f"act{index}{i}" if draw(st.booleans()) else f'"act {index}{i}"'
        decl = f"action {name}"
        if actions and _coin(draw):
            parents = draw(st.lists(st.sampled_from(actions), min_size=1, max_size=2))
            refs_to: list[str] = []
            for parent in parents:
                qualified = _coin(draw)
                refs_to.append(f'{prefix}Action::"{parent.strip(chr(34))}"' if qualified
                               else parent)
            decl += " in [" + ", ".join(refs_to) + "]"
        if draw(st.booleans()):
            parts = [f"principal: {_entity_list(draw, entities, allow_empty=False)}",
                     f"resource: {_entity_list(draw, entities, allow_empty=False)}"]
            if draw(st.booleans()):
                context = draw(st.one_of(_record(refs), *(
                    [st.sampled_from(records)] if records else [])))
                parts.append(f"context: {context}")
            parts = draw(st.permutations(parts))
            decl += " appliesTo {" + ", ".join(parts) + ("," if draw(st.booleans()) else "") + "}"
        decls.append(draw(_annotations()) + decl + ";")
        actions.append(name)
    own_records = [r for r in records if r not in outer_records]
    return draw(_SPACE).join(draw(st.permutations(decls))), own_entities, own_records


@st.composite
def schemas(draw: st.DrawFn) -> str:
    """Valid schemas: an empty namespace and up to two named ones that may use its types."""
    top, visible, top_records = draw(_namespace_body(0, [], [], ""))
    parts = [top]
    for index in range(1, draw(st.integers(0, 2)) + 1):
        name = draw(st.sampled_from([f"Ns{index}", f"Org::Ns{index}"]))
        body, entities, _ = draw(_namespace_body(index, visible, top_records, f"{name}::"))
        parts.append(f"{draw(_annotations())}namespace {name} {{{draw(_SPACE)}{body}}}")
        visible = visible + [f"{name}::{e}" for e in entities]
    return draw(_SPACE).join(draw(st.permutations(parts)))


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schemas())
def test_random_schemas_convert_to_json_cedar_renders_identically(text: str) -> None:
    expected = rendered_by_cedar(text)
    assert rendered_via_json(text) == expected
    assert expected is not None, "the generator should only produce valid schemas"


def _tokens_of(text: str) -> list[str]:
    found = re.findall(r'//[^\n]*|"(?:\\.|[^"\\])*"|::|\w+|\S', text)
    return [token for token in found if not token.startswith("//")]


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schemas(), st.data())
def test_mutated_schemas_are_accepted_or_rejected_exactly_as_cedar_does(
        text: str, data: st.DataObject) -> None:
    tokens = _tokens_of(text)
    if not tokens:
        return
    at = data.draw(st.integers(0, len(tokens) - 1))
    replacement = data.draw(st.sampled_from(tokens) | st.sampled_from(
        ["", ",", ";", "{", "}", "[", "]", "::", ":", "?", "<", ">", "=", "@", "in", "Set",
         "entity", "action", "type", '"s"', "1", "appliesTo", "principal", "context", "x"]))
    mutated = " ".join(tokens[:at] + [replacement] + tokens[at + 1:])
    assert rendered_via_json(mutated) == rendered_by_cedar(mutated)


def test_every_json_document_uses_only_cedar_json_keys() -> None:
    allowed = {"entityTypes", "actions", "commonTypes", "annotations", "memberOfTypes", "shape",
               "tags", "enum", "memberOf", "appliesTo", "principalTypes", "resourceTypes",
               "context", "type", "name", "element", "attributes", "required", "id"}

    def keys(value: Any, top: bool = False) -> set[str]:
        if isinstance(value, dict):
            found = set() if top else set(value)
            for key, item in value.items():
                if key not in ("attributes", "entityTypes", "actions", "commonTypes",
                               "annotations"):
                    found |= keys(item)
                elif key != "annotations":
                    for inner in item.values():
                        found |= keys(inner)
            return found
        if isinstance(value, list):
            return set().union(*(keys(v) for v in value)) if value else set()
        return set()

    for text in (DOCUMENTS, PHOTOS, MULTI_NAMESPACE, KEYWORDS_AS_NAMES):
        doc = schema_to_json(text)
        assert all(keys(body) <= allowed for body in doc.values())
