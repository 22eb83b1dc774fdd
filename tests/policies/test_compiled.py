"""Loading a policy-set directory (:func:`pdp.policies.compiled.compile_directory`): the
compiled set, and diagnostics that say where every problem is; ``pdp check`` and ``pdp serve``
on an invalid set."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pdp.cli import main
from pdp.errors import PolicyDiagnostic, PolicyLoadError
from pdp.policies import compiled
from pdp.policies.compiled import CompiledPolicySet, compile_directory
from tests.conftest import POLICIES, ROOT, free_port

ALLOW_ALL = "permit(principal, action, resource);\n"
SCHEMA = """\
entity Group;
entity User in [Group] { age: Long, name?: String };
entity Doc { owner?: User };
action read, write appliesTo { principal: User, resource: Doc };
"""
BAD_SECOND_FILE = """\
@id("first")
permit(principal, action, resource);

permit(
  principal,
  action,
  resource
) when { principal.x == 1 whe };
"""
SCHEMA_INVALID_POLICY = """\
@id("fine")
permit(principal, action == Action::"read", resource);

@id("typo")
permit(
  principal,
  action == Action::"read",
  resource
) when {
  principal.agee > 3
};
"""


def write_set(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def diagnostics_of(directory: Path) -> list[PolicyDiagnostic]:
    with pytest.raises(PolicyLoadError) as caught:
        compile_directory(directory)
    assert caught.value.diagnostics
    assert caught.value.message == "\n".join(str(d) for d in caught.value.diagnostics)
    return list(caught.value.diagnostics)


# -- a good set --------------------------------------------------------------------------------


def test_a_shipped_set_compiles_with_its_schema_entities_and_ids() -> None:
    compiled = compile_directory(POLICIES / "todo")
    assert isinstance(compiled, CompiledPolicySet)
    assert compiled.schema is not None and compiled.schema_types is not None
    assert len(compiled.entities) == 5
    assert [p.id for p in compiled.policies][:2] == ["everyone-reads-users",
                                                    "everyone-reads-todos"]
    assert set(compiled.files) == {"todo.cedar", "todo.cedarschema", "entities.json"}
    assert compiled.directory == (POLICIES / "todo").resolve()
    assert compiled.action_names() == ("can_create_todo", "can_delete_todo", "can_read_todos",
                                       "can_read_user", "can_update_todo")


def test_policy_infos_record_where_each_policy_came_from(tmp_path: Path) -> None:
    compiled = compile_directory(write_set(tmp_path, {"a.cedar": BAD_SECOND_FILE.replace(
        " 1 whe", " 1"), "b.cedar": "\n\nforbid (principal, action, resource);\n"}))
    first, second, third = compiled.policies
    assert (first.id, first.effect, first.file, first.line, first.annotation_id) == (
        "first", "permit", "a.cedar", 1, "first")
    assert (second.id, second.line, second.column, second.first_line) == (
        "a.cedar:4", 4, 1, "permit(")
    assert (third.id, third.effect, third.file, third.line) == ("b.cedar:3", "forbid",
                                                                "b.cedar", 3)
    assert compiled.policy("first") is first and compiled.policy("nope") is None


def test_without_a_schema_action_names_come_from_the_policy_heads(tmp_path: Path) -> None:
    compiled = compile_directory(write_set(tmp_path, {"a.cedar": (
        'permit(principal, action == Action::"read", resource);\n'
        'permit(principal, action in [Action::"write", Action::"delete"], resource);\n')}))
    assert compiled.schema is None
    assert compiled.action_names() == ("delete", "read", "write")


def test_the_version_follows_the_content(tmp_path: Path) -> None:
    directory = write_set(tmp_path, {"a.cedar": ALLOW_ALL})
    first = compile_directory(directory).version
    assert compile_directory(directory).version == first
    (directory / "a.cedar").write_text(ALLOW_ALL + "// changed\n")
    assert compile_directory(directory).version != first


def test_files_other_than_policies_schema_and_entities_are_ignored(tmp_path: Path) -> None:
    compiled = compile_directory(write_set(tmp_path, {
        "a.cedar": ALLOW_ALL, "README.md": "# notes; not ( policy", "x.cedar.bak": "garbage",
        "data.json": "{not json", "schema.txt": "entity ;"}))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "broken.cedar").write_text("permit(")
    assert compiled.files == ("a.cedar",)
    assert len(compiled.policies) == 1


def test_duplicate_ids_fall_back_to_file_and_line(tmp_path: Path) -> None:
    compiled = compile_directory(write_set(tmp_path, {
        "a.cedar": '@id("same")\npermit(principal, action, resource);\n'
                   '@id("unique")\npermit(principal, action, resource);\n',
        "b.cedar": '\n@id("same")\nforbid(principal, action, resource) when { false };\n'}))
    assert [p.id for p in compiled.policies] == ["a.cedar:1", "unique", "b.cedar:2"]
    assert [p.annotation_id for p in compiled.policies] == ["same", "unique", "same"]


# -- policy diagnostics ------------------------------------------------------------------------


def test_a_syntax_error_names_the_file_the_policy_and_the_line_and_column(
        tmp_path: Path) -> None:
    diags = diagnostics_of(write_set(tmp_path, {"a.cedar": ALLOW_ALL,
                                                "b.cedar": BAD_SECOND_FILE}))
    assert len(diags) == 1
    d = diags[0]
    assert (d.file, d.line, d.column) == ("b.cedar", 8, 27)  # the stray `whe`
    assert d.policy == "#2 `permit(`"
    assert "whe" in d.message
    assert str(d).startswith("b.cedar:8:27: policy #2 `permit(`: syntax error")


def test_a_syntax_error_in_a_policy_with_an_id_names_the_id(tmp_path: Path) -> None:
    text = '\n// header\n@id("p1")\npermit(\n  principal,\n  action,\n  resource\n)\n' \
           'when { 1 +  };\n'
    [d] = diagnostics_of(write_set(tmp_path, {"a.cedar": text}))
    assert (d.file, d.line, d.column, d.policy) == ("a.cedar", 9, 13, '@id("p1")')


def test_errors_in_several_files_are_all_reported(tmp_path: Path) -> None:
    diags = diagnostics_of(write_set(tmp_path, {
        "a.cedar": "permit(principal, action, resource) when { 1 + };\n",
        "b.cedar": "\n\nforbid(principal, action, resource) unless { x };\n"}))
    assert [(d.file, d.line, d.column) for d in diags] == [("a.cedar", 1, 48),
                                                           ("b.cedar", 3, 46)]
    assert diags[1].policy == "#1 `forbid(principal, action, resource) unless { x };`"


def test_an_unterminated_policy_is_located(tmp_path: Path) -> None:
    [d] = diagnostics_of(write_set(tmp_path, {"a.cedar": ALLOW_ALL + "\n  permit(principal,\n"}))
    assert (d.file, d.line, d.column) == ("a.cedar", 3, 9)  # the `(` that is never closed
    assert "`(` is never closed" in d.message


def test_a_schema_validation_error_names_the_policy_and_the_line(tmp_path: Path) -> None:
    [d] = diagnostics_of(write_set(tmp_path, {"s.cedarschema": SCHEMA,
                                              "a.cedar": SCHEMA_INVALID_POLICY}))
    assert (d.file, d.line, d.column, d.policy) == ("a.cedar", 10, 13, '@id("typo")')
    assert "agee" in d.message
    assert d.message.startswith("schema validation: ")
    # cedarpy's internal policy names (`policy1`) never reach the message
    assert not re.search(r"policy\d|policy\W+policy", d.message), d.message


def test_schema_validation_errors_of_unnamed_policies_name_them_by_position(
        tmp_path: Path) -> None:
    diags = diagnostics_of(write_set(tmp_path, {
        "s.cedarschema": SCHEMA,
        "a.cedar": 'permit(principal, action == Action::"read", resource);\n'
                   'permit(principal, action == Action::"fly", resource);\n'}))
    assert {(d.file, d.line, d.policy) for d in diags} == {
        ("a.cedar", 2, '#2 `permit(principal, action == Action::"fly", resource);`')}
    assert any("fly" in d.message for d in diags)


# -- schema diagnostics ------------------------------------------------------------------------


def test_a_schema_syntax_error_names_the_schema_file_line_and_column(tmp_path: Path) -> None:
    [d] = diagnostics_of(write_set(tmp_path, {
        "a.cedar": ALLOW_ALL,
        "app.cedarschema": "entity User {\n  age: Long\n  name: String };\n"}))
    assert (d.file, d.line, d.column) == ("app.cedarschema", 3, 3)
    assert "name" in d.message


def test_an_unresolvable_schema_type_names_the_schema_file(tmp_path: Path) -> None:
    [d] = diagnostics_of(write_set(tmp_path, {
        "a.cedar": ALLOW_ALL, "app.cedarschema": "entity User {\n  age: Lng,\n};\n"}))
    assert d.file == "app.cedarschema"
    assert "Lng" in d.message


def test_a_malformed_json_schema_names_the_file_line_and_column(tmp_path: Path) -> None:
    [d] = diagnostics_of(write_set(tmp_path, {
        "a.cedar": ALLOW_ALL, "app.cedarschema.json": '{"": {\n"entityTypes": {\n  ,'}))
    assert (d.file, d.line, d.column) == ("app.cedarschema.json", 3, 3)
    assert "invalid schema" in d.message


def test_a_json_schema_of_the_wrong_shape_names_the_file(tmp_path: Path) -> None:
    [d] = diagnostics_of(write_set(tmp_path, {
        "a.cedar": ALLOW_ALL,
        "app.cedarschema.json": '{"": {"entityTypes": {"User": {"shape": 3}}}}'}))
    assert d.file == "app.cedarschema.json"


def test_two_schema_files_are_refused_naming_both(tmp_path: Path) -> None:
    [d] = diagnostics_of(write_set(tmp_path, {"a.cedar": ALLOW_ALL, "s.cedarschema": SCHEMA,
                                              "t.cedarschema.json": "{}"}))
    assert "more than one schema" in d.message
    assert "s.cedarschema" in d.message and "t.cedarschema.json" in d.message


def test_a_directory_without_a_policy_file_is_refused(tmp_path: Path) -> None:
    [d] = diagnostics_of(write_set(tmp_path, {"s.cedarschema": SCHEMA, "README.md": "x"}))
    assert "no *.cedar policy file" in d.message


def test_a_missing_directory_is_refused(tmp_path: Path) -> None:
    [d] = diagnostics_of(tmp_path / "absent")
    assert "not a directory" in d.message


# -- entities diagnostics ----------------------------------------------------------------------


def test_malformed_entities_json_is_located(tmp_path: Path) -> None:
    [d] = diagnostics_of(write_set(tmp_path, {"a.cedar": ALLOW_ALL, "entities.json": (
        '[\n  {"uid": {"type": "User", "id": "a"}, "attrs": {}, "parents": []},\n'
        '  {"uid": \n')}))
    assert (d.file, d.line, d.column) == ("entities.json", 4, 1)
    assert "malformed JSON" in d.message


def test_an_entity_that_does_not_match_the_schema_is_named(tmp_path: Path) -> None:
    diags = diagnostics_of(write_set(tmp_path, {
        "a.cedar": ALLOW_ALL, "s.cedarschema": SCHEMA, "entities.json": (
            '[\n  {"uid": {"type": "User", "id": "ann"}, "attrs": {"age": 3}, "parents": []},\n'
            '  {"uid": {"type": "User", "id": "bob"}, "attrs": {"age": "old"}, "parents": []}\n'
            "]")}))
    assert [(d.file, d.line) for d in diags] == [("entities.json", 3)]
    assert 'User::"bob"' in diags[0].message


def test_entities_json_must_be_an_array(tmp_path: Path) -> None:
    [d] = diagnostics_of(write_set(tmp_path, {"a.cedar": ALLOW_ALL,
                                              "entities.json": '{"uid": 1}'}))
    assert d.file == "entities.json" and "array" in d.message


def test_an_entity_without_a_uid_and_a_duplicate_entity_are_reported(tmp_path: Path) -> None:
    diags = diagnostics_of(write_set(tmp_path, {"a.cedar": ALLOW_ALL, "entities.json": json.dumps([
        {"attrs": {}},
        {"uid": {"type": "User", "id": "a"}, "attrs": {}, "parents": []},
        {"uid": {"type": "User", "id": "a"}, "attrs": {"x": 1}, "parents": []}])}))
    assert len(diags) == 2
    assert "entity #1" in diags[0].message and "uid" in diags[0].message
    assert 'entity User::"a": duplicate entity' in diags[1].message


# -- pdp check and pdp serve on an invalid set -------------------------------------------------


LOCATED = re.compile(r"^(?P<file>[\w./-]+):(?P<line>\d+):(?P<column>\d+): .+")


def test_pdp_check_exits_1_and_prints_file_line_column_lines(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = write_set(tmp_path, {
        "a.cedar": "permit(principal, action, resource) when { 1 + };\n",
        "b.cedar": BAD_SECOND_FILE})
    assert main(["check", str(directory)]) == 1
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert [LOCATED.match(line) is not None for line in lines] == [True, True]
    assert [line.split(": ", 1)[0] for line in lines] == [
        f"{directory}/a.cedar:1:48", f"{directory}/b.cedar:8:27"]
    assert out == ""


def test_pdp_check_json_prints_the_diagnostics_as_data(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = write_set(tmp_path, {"s.cedarschema": SCHEMA, "a.cedar": SCHEMA_INVALID_POLICY})
    assert main(["check", "--json", str(directory)]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert (doc["valid"], doc["warnings"], doc["summary"]) == (False, [], None)
    assert [{k: d[k] for k in ("file", "line", "column", "policy")}
            for d in doc["errors"]] == [
        {"file": str(directory / "a.cedar"), "line": 10, "column": 13,
         "policy": '@id("typo")'}]


def test_pdp_check_as_a_process_exits_1_on_an_invalid_set(tmp_path: Path) -> None:
    directory = write_set(tmp_path, {"a.cedar": ALLOW_ALL, "b.cedar": BAD_SECOND_FILE})
    done = subprocess.run([sys.executable, "-m", "pdp", "check", str(directory)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 1
    assert done.stderr.startswith(f"{directory}/b.cedar:8:27: ")


def test_pdp_serve_refuses_an_invalid_set_before_binding(tmp_path: Path) -> None:
    directory = write_set(tmp_path / "bad", {"a.cedar": ALLOW_ALL, "b.cedar": BAD_SECOND_FILE})
    port = free_port()
    done = subprocess.run(
        [sys.executable, "-m", "pdp", "serve", "--policies", str(directory), "--port",
         str(port)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "PDP_DECISION_LOG": "off",
             "PDP_WATCH": "false"})
    assert done.returncode != 0
    assert "invalid policy set" in done.stderr
    assert "b.cedar:8:27:" in done.stderr
    assert "Uvicorn running" not in done.stderr + done.stdout
    assert done.stdout == ""


def test_an_entity_that_does_not_conform_says_which_attribute_has_which_wrong_type(
        tmp_path: Path) -> None:
    entities = ('[\n  {"uid": {"type": "User", "id": "ann"}, "attrs": {"age": 1}, "parents": []},'
                '\n  {"uid": {"type": "User", "id": "bob"}, "attrs": {"age": "old"},'
                ' "parents": []}\n]\n')
    [d] = diagnostics_of(write_set(tmp_path, {"s.cedarschema": SCHEMA, "a.cedar": ALLOW_ALL,
                                              "entities.json": entities}))
    assert (d.file, d.line, d.column) == ("entities.json", 3, 3)
    assert "`age`" in d.message and "Long" in d.message, d.message
    # the attribute and its type come first; Cedar's own words follow
    assert d.message.index("`age`") < d.message.index("(Cedar: "), d.message


def test_an_entity_without_a_uid_is_located_at_its_line(tmp_path: Path) -> None:
    entities = ('[\n  {"uid": {"type": "User", "id": "ann"}, "attrs": {"age": 1}, "parents": []},'
                '\n    {"attrs": {}, "parents": []}\n]\n')
    [d] = diagnostics_of(write_set(tmp_path, {"s.cedarschema": SCHEMA, "a.cedar": ALLOW_ALL,
                                              "entities.json": entities}))
    assert (d.file, d.line, d.column) == ("entities.json", 3, 5)
    assert "entity #2" in d.message and "uid" in d.message


def test_a_schema_naming_an_undeclared_type_is_located_where_it_names_it(
        tmp_path: Path) -> None:
    schema = "// Nope is not declared\nentity User;\nentity Doc { owner: Nope };\n"
    [d] = diagnostics_of(write_set(tmp_path, {"s.cedarschema": schema, "a.cedar": ALLOW_ALL}))
    assert (d.file, d.line, d.column) == ("s.cedarschema", 3, 21)
    assert "`Nope`" in d.message


# -- a large file, parsed by Cedar a piece of whole statements at a time --------------------

def _large_file(statements: int) -> str:
    out = ["// a large file: static policies, templates, annotations, comments, strings"]
    for i in range(statements):
        if i % 7 == 3:
            out.append(f'@id("t{i}")\npermit (principal == ?principal, action, resource in '
                       f'?resource) when {{ context.note == "a;b {{}} {i}" }};')
        elif i % 5 == 0:
            out.append(f'forbid (principal, action == Action::"a{i}", resource) // {i};\n'
                       f'unless {{ principal.level > {i} }};')
        else:
            out.append(f'@id("p{i}")\n@note("n;{i}")\npermit (principal == User::"u{i}", '
                       f'action, resource);')
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("statements", [1, 40, 400])
def test_a_large_file_compiles_to_the_same_policies_as_parsed_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, statements: int) -> None:
    directory = write_set(tmp_path, {"big.cedar": _large_file(statements)})
    monkeypatch.setattr(compiled, "_PARSE_PIECE", 1_000)  # many pieces
    in_pieces = compile_directory(directory)
    monkeypatch.setattr(compiled, "_PARSE_PIECE", 10**9)  # the file whole
    whole = compile_directory(directory)
    assert len(in_pieces.policies) == statements
    assert in_pieces.policies == whole.policies and in_pieces.version == whole.version


@pytest.mark.parametrize("broken", [
    'permit (principal, action, resource) when { 1 + };',  # a statement Cedar refuses
    'permit (principal, action, resource)',  # the last one without its `;`
])
def test_a_large_file_with_an_error_has_the_diagnostics_of_the_file_parsed_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, broken: str) -> None:
    text = _large_file(200) + broken + "\n"
    if broken.endswith(";"):  # (a refused statement in the middle of the file)
        text += _large_file(50)
    directory = write_set(tmp_path, {"big.cedar": text})
    monkeypatch.setattr(compiled, "_PARSE_PIECE", 1_000)
    in_pieces = diagnostics_of(directory)
    monkeypatch.setattr(compiled, "_PARSE_PIECE", 10**9)
    assert in_pieces == diagnostics_of(directory)


def test_the_same_entities_file_gives_the_same_entities_whatever_order_cedar_writes_sets_in(
        tmp_path: Path) -> None:
    groups = [{"type": "Group", "id": f"g{i}"} for i in range(8)]
    directory = write_set(tmp_path, {"p.cedar": ALLOW_ALL, "entities.json": json.dumps([
        {"uid": {"type": "User", "id": f"u{n}"}, "attrs": {}, "parents": groups[n % 3:]}
        for n in range(20)])})
    first = compile_directory(directory)
    assert all(compile_directory(directory).entities == first.entities for _ in range(3))
    assert first.entities[0]["parents"] == groups


def test_a_recompile_takes_the_previous_entities_only_while_their_files_are_unchanged(
        tmp_path: Path) -> None:
    schema = ("entity User;\nentity Doc;\n"
              "action read appliesTo { principal: User, resource: Doc };\n")
    directory = write_set(tmp_path, {"p.cedar": ALLOW_ALL, "s.cedarschema": schema,
                                     "entities.json": '[{"uid": {"type": "User", "id": "a"}, '
                                                      '"attrs": {}, "parents": []}]'})
    first = compile_directory(directory)
    (directory / "p.cedar").write_text(ALLOW_ALL + "\n// edited\n")
    policies_edited = compile_directory(directory, first)
    assert policies_edited.version != first.version
    assert policies_edited.entities is first.entities
    (directory / "entities.json").write_text('[{"uid": {"type": "User", "id": "b"}, '
                                              '"attrs": {}, "parents": []}]')
    entities_edited = compile_directory(directory, policies_edited)
    assert [e["uid"]["id"] for e in entities_edited.entities] == ["b"]
    (directory / "s.cedarschema").write_text(schema.replace("entity Doc;", "entity Doc;\n"
                                                            "entity Other;"))
    schema_edited = compile_directory(directory, entities_edited)
    assert schema_edited.entities is not entities_edited.entities
    assert schema_edited.entities == entities_edited.entities
    (directory / "entities.json").write_text('[{"uid": {"type": "Nope", "id": "c"}, '
                                              '"attrs": {}, "parents": []}]')
    with pytest.raises(PolicyLoadError):  # a file changed is read, and checked, again
        compile_directory(directory, schema_edited)
