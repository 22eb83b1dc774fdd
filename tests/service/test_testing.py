"""Policy tests kept next to the policies (:mod:`pdp.service.testing`): reading test files,
and deciding their cases with the engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pdp.errors import PolicyLoadError
from pdp.policies.compiled import compile_directory
from pdp.service.testing import PolicyTestFile, discover, load_test_file, run_tests

SCHEMA = """\
entity team;
entity user in [team] { role?: String };
entity doc { owner?: user, locked?: Bool };
action read, write appliesTo { principal: user, resource: doc };
"""
POLICIES = """\
@id("team-reads")
permit(principal, action == Action::"read", resource)
when { principal in team::"staff" };

@id("owner-writes")
permit(principal, action == Action::"write", resource)
when { resource has owner && resource.owner == principal };

@id("locked")
forbid(principal, action == Action::"write", resource)
when { resource has locked && resource.locked };
"""
ENTITIES = [
    {"uid": {"type": "team", "id": "staff"}, "attrs": {}, "parents": []},
    {"uid": {"type": "user", "id": "ann"}, "attrs": {}, "parents": [{"type": "team",
                                                                      "id": "staff"}]},
    {"uid": {"type": "doc", "id": "d1"},
     "attrs": {"owner": {"__entity": {"type": "user", "id": "ann"}}}, "parents": []},
]


def request(subject: str, action: str, resource: str) -> dict[str, object]:
    return {"subject": {"type": "user", "id": subject}, "action": {"name": action},
            "resource": {"type": "doc", "id": resource}}


@pytest.fixture
def policy_set(tmp_path: Path) -> Path:
    (tmp_path / "p.cedar").write_text(POLICIES)
    (tmp_path / "s.cedarschema").write_text(SCHEMA)
    (tmp_path / "entities.json").write_text(json.dumps(ENTITIES))
    return tmp_path


def write(directory: Path, name: str, doc: object) -> Path:
    path = directory / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def run(directory: Path, *docs: tuple[str, object]) -> list[tuple[str, str, str]]:
    files = [load_test_file(write(directory, name, doc)) for name, doc in docs]
    report = run_tests(compile_directory(directory), files)
    return [(r.case.name, r.status, r.message) for r in report.results]


# -- files ------------------------------------------------------------------------------------


def test_test_files_are_found_by_suffix_and_never_read_by_the_loader(policy_set: Path) -> None:
    for name in ("a.test.yaml", "b.test.yml", "c.test.json", "notes.yaml", "test.json"):
        write(policy_set, name, {"cases": []})
    before = compile_directory(policy_set)
    assert [p.name for p in discover(policy_set)] == ["a.test.yaml", "b.test.yml",
                                                      "c.test.json"]
    assert "c.test.json" not in before.files
    assert len(before.entities) == len(ENTITIES)


def test_a_yaml_file_is_read_with_the_line_of_each_case(policy_set: Path) -> None:
    path = write(policy_set, "t.test.yaml", """\
entities: []
cases:
  - name: ann reads
    request: {subject: {type: user, id: ann}, action: {name: read},
              resource: {type: doc, id: d1}}
    decision: permit
    policies: [team-reads]
  - name: ann writes
    request: {subject: {type: user, id: ann}, action: {name: write},
              resource: {type: doc, id: d1}}
    decision: true
""")
    loaded = load_test_file(path)
    assert isinstance(loaded, PolicyTestFile)
    assert [(c.name, c.decision, c.policies, c.line) for c in loaded.cases] == [
        ("ann reads", True, frozenset({"team-reads"}), 3), ("ann writes", True, None, 8)]
    assert loaded.cases[0].request.subject.id == "ann"


@pytest.mark.parametrize(("case", "message"), [
    ({"name": "x", "request": request("ann", "read", "d1"), "decision": "permit",
      "polices": []}, "case 'x': unknown key `polices`"),
    ({"name": "x", "decision": "deny"}, "case 'x': `request` is required"),
    ({"name": "x", "request": request("ann", "read", "d1")}, "case 'x': `decision` is required"),
    ({"name": "x", "request": request("ann", "read", "d1"), "decision": "grant"},
     "case 'x': `decision` must be permit, allow, true, deny or false"),
    ({"request": request("ann", "read", "d1"), "decision": "deny"},
     "case #1: `name` is required"),
    ({"name": "x", "request": {"subject": {"type": "user", "id": "ann"},
                               "action": {"name": "read"}}, "decision": "deny"},
     "case 'x': invalid request: 'resource' is required"),
    ({"name": "x", "request": request("ann", "read", "d1"), "decision": "deny",
      "policies": "team-reads"}, "case 'x': `policies` must be a list"),
    ({"name": "x", "request": request("ann", "read", "d1"), "decision": "deny",
      "entities": {"uid": {}}}, "case 'x': `entities` must be a list"),
])
def test_a_malformed_case_is_refused_naming_the_file_and_the_case(
        policy_set: Path, case: dict[str, object], message: str) -> None:
    path = write(policy_set, "t.test.json", {"cases": [case]})
    with pytest.raises(PolicyLoadError) as caught:
        load_test_file(path)
    (d,) = caught.value.diagnostics
    assert d.file == str(path)
    assert d.message.startswith(message)


def test_every_problem_of_a_file_is_reported_with_its_yaml_line(policy_set: Path) -> None:
    path = write(policy_set, "t.test.yaml", """\
cases:
  - name: first
    request: {subject: {type: user, id: ann}, action: {name: read},
              resource: {type: doc, id: 1}}
    decision: permit
  - name: first
    request: {subject: {type: user, id: ann}, action: {name: read},
              resource: {type: doc, id: d1}}
    decision: deny
extra: true
""")
    with pytest.raises(PolicyLoadError) as caught:
        load_test_file(path, "t.test.yaml")
    found = [(d.file, d.line, d.message) for d in caught.value.diagnostics]
    assert found == [
        ("t.test.yaml", 1, "unknown key `extra` (expected: cases, entities)"),
        ("t.test.yaml", 2, "case 'first': invalid request: 'resource.id' must be a string"),
    ]


def test_a_duplicate_case_name_is_refused(policy_set: Path) -> None:
    case = {"name": "same", "request": request("ann", "read", "d1"), "decision": "permit"}
    path = write(policy_set, "t.test.json", {"cases": [case, case]})
    with pytest.raises(PolicyLoadError) as caught:
        load_test_file(path)
    assert [d.message for d in caught.value.diagnostics] == [
        "case 'same': the name is used by case #1 too"]


@pytest.mark.parametrize(("name", "text", "message", "line"), [
    ("t.test.yaml", "cases:\n  - name: [unclosed\n", "malformed YAML", 3),
    ("t.test.json", '{"cases": [}', "malformed JSON", 1),
    ("t.test.yaml", "- just a list\n", "a test file must hold an object", 1),
    ("t.test.yaml", "cases: []\n", "`cases` must be a non-empty list", 1),
])
def test_a_file_that_is_not_a_test_file_is_refused_with_a_line(
        policy_set: Path, name: str, text: str, message: str, line: int) -> None:
    with pytest.raises(PolicyLoadError) as caught:
        load_test_file(write(policy_set, name, text))
    (d,) = caught.value.diagnostics
    assert d.message.startswith(message)
    assert d.line == line


# -- running ----------------------------------------------------------------------------------


def case(name: str, subject: str, action: str, resource: str, decision: str,
         **more: object) -> dict[str, object]:
    return {"name": name, "request": request(subject, action, resource), "decision": decision,
            **more}


def test_cases_pass_when_the_decision_and_the_determining_policies_are_as_expected(
        policy_set: Path) -> None:
    results = run(policy_set, ("t.test.json", {"cases": [
        case("ann reads", "ann", "read", "d1", "permit", policies=["team-reads"]),
        case("ann writes her doc", "ann", "write", "d1", "permit", policies=["owner-writes"]),
        case("a stranger reads nothing", "bob", "read", "d1", "deny", policies=[]),
    ]}))
    assert results == [("ann reads", "passed", ""), ("ann writes her doc", "passed", ""),
                       ("a stranger reads nothing", "passed", "")]


def test_a_wrong_decision_fails_saying_what_was_expected_and_what_determined_it(
        policy_set: Path) -> None:
    (result,) = run(policy_set, ("t.test.json", {"cases": [
        case("ann may not read", "ann", "read", "d1", "deny")]}))
    assert result == ("ann may not read", "failed",
                      "expected deny, got permit (determining: [team-reads])")


def test_other_determining_policies_fail_the_case(policy_set: Path) -> None:
    (result,) = run(policy_set, ("t.test.json", {"cases": [
        case("ann writes", "ann", "write", "d1", "permit", policies=["team-reads"])]}))
    assert result[1] == "failed"
    assert result[2] == ("expected determining policies [team-reads], got [owner-writes] "
                         "(permit)")


def test_an_expected_policy_id_that_does_not_exist_is_an_error(policy_set: Path) -> None:
    (result,) = run(policy_set, ("t.test.json", {"cases": [
        case("typo", "bob", "read", "d1", "deny", policies=["team-read"])]}))
    assert result[1] == "error"
    assert result[2].startswith("no policy has the id(s) team-read (ids in the set: team-reads")


def test_a_misspelt_action_or_type_is_an_error_never_a_passing_deny(policy_set: Path) -> None:
    wrong_type = case("misspelt type", "ann", "read", "d1", "deny")
    wrong_type["request"]["resource"]["type"] = "dog"  # type: ignore[index]
    results = run(policy_set, ("t.test.json", {"cases": [
        case("misspelt action", "ann", "raed", "d1", "deny"), wrong_type]}))
    assert results == [
        ("misspelt action", "error",
         "action `raed` is not declared in the schema (actions: read, write)"),
        ("misspelt type", "error",
         "resource type `dog` is not declared in the schema (types: doc, team, user)")]


def test_a_request_the_engine_cannot_translate_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "p.cedar").write_text("permit(principal, action, resource);\n")
    untranslatable = case("reserved type", "ann", "read", "d1", "deny")
    untranslatable["request"]["resource"]["type"] = "if"  # type: ignore[index]
    (result,) = run(tmp_path, ("t.test.json", {"cases": [untranslatable]}))
    assert result[:2] == ("reserved type", "error")
    assert result[2] == ("the request could not be evaluated: resource.type 'if' is not a "
                         "valid Cedar entity type name")


def test_file_entities_and_case_entities_are_added_to_entities_json(policy_set: Path) -> None:
    locked = {"uid": {"type": "doc", "id": "d1"}, "parents": [],
              "attrs": {"owner": {"__entity": {"type": "user", "id": "ann"}}, "locked": True}}
    newcomer = {"uid": {"type": "user", "id": "cy"}, "attrs": {},
                "parents": [{"type": "team", "id": "staff"}]}
    results = run(policy_set, ("t.test.json", {"entities": [newcomer], "cases": [
        case("a newcomer of the file reads", "cy", "read", "d1", "permit"),
        case("a locked doc replaces d1 for this case", "ann", "write", "d1", "deny",
             entities=[locked], policies=["locked"]),
        case("d1 is unlocked again in the next case", "ann", "write", "d1", "permit"),
    ]}), ("u.test.json", {"cases": [
        case("the newcomer is unknown in another file", "cy", "read", "d1", "deny")]}))
    assert [status for _, status, _ in results] == ["passed"] * 4


def test_an_entity_that_does_not_conform_to_the_schema_makes_its_case_an_error(
        policy_set: Path) -> None:
    bad = {"uid": {"type": "user", "id": "cy"}, "attrs": {"age": 3}, "parents": []}
    (result,) = run(policy_set, ("t.test.json", {"cases": [
        case("bad entity", "cy", "read", "d1", "deny", entities=[bad])]}))
    assert result[1] == "error"
    assert "case entities: entity user::\"cy\": attribute `age` is not declared" in result[2]
