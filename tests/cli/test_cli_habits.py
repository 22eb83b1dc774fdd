"""What Cedar and OPA users expect of a policy CLI: ``--version``, plain help, ``pdp test
--run`` and ``--format json|junit``, line numbers on failures, every spelling of a decision,
several directories, one run reporting every problem, and commands that say what they used."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from xml.etree import ElementTree

import pytest

from pdp.cli import build_parser, evaluate, main, version
from pdp.policies.compiled import compile_directory
from tests.cli.test_policy_workflow import policy_set, request
from tests.conftest import POLICIES

Capture = pytest.CaptureFixture[str]

SCHEMA = """\
entity User { level?: Long };
entity Doc;
action read, delete appliesTo { principal: User, resource: Doc };
"""


def run(capsys: Capture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write_yaml(directory: Path, text: str, name: str = "p.test.yaml") -> Path:
    path = directory / name
    path.write_text(text)
    return path


CASES = """\
cases:
  - name: ann reads
    request: {subject: {type: User, id: ann}, action: {name: read}, resource: {type: Doc, id: d}}
    decision: allow
  - name: bob reads
    request: {subject: {type: User, id: bob}, action: {name: read}, resource: {type: Doc, id: d}}
    decision: true
  - name: ann deletes
    request: {subject: {type: User, id: ann}, action: {name: delete}, resource: {type: Doc, id: d}}
    decision: deny
"""


def test_version_prints_the_installed_version(capsys: Capture) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"pdp {version()}"
    assert version()[0].isdigit()


def test_no_help_shows_rest_markup_or_internal_module_names() -> None:
    parser = build_parser()
    texts = [parser.format_help()]
    for action in parser._subparsers._group_actions:  # type: ignore[union-attr]
        for sub in action.choices.values():  # type: ignore[union-attr]
            texts.append(sub.format_help())
            for inner in sub._subparsers._group_actions if sub._subparsers else []:
                texts.extend(p.format_help() for p in inner.choices.values())  # type: ignore
    assert len(texts) > 10
    for text in texts:
        assert "``" not in text and ":mod:" not in text and ":class:" not in text, text
        for module in ("pdp.policies", "pdp.auth", "pdp.engine", "pdp.http.app"):
            assert module not in text, text


def test_failed_lines_carry_the_line_of_the_case_and_every_decision_spelling_is_read(
        tmp_path: Path, capsys: Capture) -> None:
    directory = policy_set(tmp_path / "set")
    path = write_yaml(directory, CASES)
    code, out, _ = run(capsys, "test", str(directory))
    assert code == 1
    assert out.splitlines() == [
        f"FAILED {path}:5::bob reads - expected permit, got deny (determining: [])",
        "1 failed, 2 passed in 1 file(s)"]


@pytest.mark.parametrize("spelling", ["permit", "allow", "true", "Allow", "PERMIT"])
def test_a_permit_may_be_written_in_any_usual_spelling(
        spelling: str, tmp_path: Path, capsys: Capture) -> None:
    directory = policy_set(tmp_path / "set")
    write_yaml(directory, CASES.replace("decision: allow", f"decision: {spelling}"))
    code, out, _ = run(capsys, "test", "--run", "^ann", str(directory))
    assert (code, out.splitlines()[-1]) == (0, "2 passed in 1 file(s)")


def test_run_selects_cases_by_regular_expression_and_says_when_none_matches(
        tmp_path: Path, capsys: Capture) -> None:
    directory = policy_set(tmp_path / "set")
    path = write_yaml(directory, CASES)
    code, out, _ = run(capsys, "test", "-v", "--run", "reads$", str(directory))
    assert out.splitlines()[:2] == [f"PASSED {path}:2::ann reads",
                                    f"FAILED {path}:5::bob reads - expected permit, got deny "
                                    "(determining: [])"]
    assert code == 1
    code, out, err = run(capsys, "test", "--run", "nobody", str(directory))
    assert code == 5 and "no case matches --run 'nobody'" in err
    code, _, err = run(capsys, "test", "--run", "(", str(directory))
    assert code == 2 and "not a regular expression" in err


def test_format_json_reports_every_case_with_its_place(tmp_path: Path, capsys: Capture) -> None:
    directory = policy_set(tmp_path / "set")
    path = write_yaml(directory, CASES)
    code, out, _ = run(capsys, "test", "--format", "json", str(directory))
    doc = json.loads(out)
    assert code == 1 and doc["ok"] is False
    assert doc["summary"]["failed"] == 1 and doc["summary"]["passed"] == 2
    assert [(c["name"], c["line"], c["status"]) for c in doc["cases"]] == [
        ("ann reads", 2, "passed"), ("bob reads", 5, "failed"), ("ann deletes", 8, "passed")]
    assert doc["cases"][1]["file"] == str(path)


def test_format_junit_is_junit_xml_a_ci_dashboard_reads(tmp_path: Path, capsys: Capture) -> None:
    directory = policy_set(tmp_path / "set")
    write_yaml(directory, CASES)
    code, out, _ = run(capsys, "test", "--format", "junit", str(directory))
    assert code == 1
    root = ElementTree.fromstring(out.split("\n", 1)[1])
    assert (root.tag, root.get("tests"), root.get("failures")) == ("testsuites", "3", "1")
    [suite] = root.findall("testsuite")
    failures = [c for c in suite.findall("testcase") if c.find("failure") is not None]
    assert [(c.get("name"), c.get("line")) for c in failures] == [("bob reads", "5")]
    assert "expected permit" in failures[0].find("failure").get("message", "")  # type: ignore


def test_test_and_check_take_several_directories(tmp_path: Path, capsys: Capture) -> None:
    first = policy_set(tmp_path / "one")
    second = policy_set(tmp_path / "two")
    write_yaml(first, CASES.replace("decision: true", "decision: false"))
    write_yaml(second, CASES.replace("decision: true", "decision: false"))
    code, out, _ = run(capsys, "test", str(first), str(second))
    assert (code, out.splitlines()[-1]) == (0, "6 passed in 2 file(s)")
    code, out, _ = run(capsys, "check", str(first), str(second))
    assert code == 0
    assert [line.split(": ok:")[0] for line in out.splitlines()] == [str(first), str(second)]
    code, out, _ = run(capsys, "check", "--format", "json", str(first), str(second))
    assert [d["directory"] for d in json.loads(out)] == [str(first), str(second)]
    code, _, err = run(capsys, "check", str(first), str(tmp_path / "nowhere"))
    assert code == 1 and "not a directory" in err


def test_one_run_reports_malformed_cases_and_undeclared_actions_together(
        tmp_path: Path, capsys: Capture) -> None:
    directory = policy_set(tmp_path / "set")
    (directory / "p.cedarschema").write_text(SCHEMA)
    path = write_yaml(directory, CASES.replace("decision: true", "decision: maybe").replace(
        "action: {name: delete}", "action: {name: destroy}"))
    code, out, err = run(capsys, "test", str(directory))
    assert code == 2
    assert f"{path}:5:1: case 'bob reads': `decision` must be permit" in err
    assert (f"ERROR {path}:8::ann deletes - action `destroy` is not declared in the schema"
            in out)
    assert f"PASSED {path}:2::ann reads" not in out  # passed cases stay quiet without -v
    assert out.splitlines()[-1] == "1 passed, 1 error, 1 problem(s) in 1 file(s)"


def test_eval_says_which_policy_set_decided(tmp_path: Path, capsys: Capture,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PDP_POLICIES", raising=False)
    body = json.dumps(request("ann", "read"))
    code, out, _ = run(capsys, "eval", body)
    assert code == 0
    assert out.splitlines()[0] == (f"policy set: {POLICIES / 'default'} "
                                   "(the shipped default; choose with --policies)")
    code, out, err = run(capsys, "eval", "--format", "json", body)
    assert (code, err) == (0, f"policy set: {POLICIES / 'default'} (the shipped default; "
                              "choose with --policies)\n")
    directory = policy_set(tmp_path / "set")
    code, out, err = run(capsys, "eval", "--policies", str(directory), body)
    assert out.splitlines()[:2] == [f"policy set: {directory}", "decision: permit (permit)"]
    code, out, err = run(capsys, "eval", "--format", "json", "--policies", str(directory), body)
    assert (code, json.loads(out), err) == (0, {"decision": True}, "")


def test_fmt_says_plainly_that_it_does_not_format_schemas(
        tmp_path: Path, capsys: Capture) -> None:
    schema = tmp_path / "s.cedarschema"
    schema.write_text("entity   User;\n")
    code, _, err = run(capsys, "fmt", str(schema))
    assert code == 0
    assert f"{schema}: skipped: pdp fmt formats Cedar policies (.cedar) only, not schemas" in err
    assert schema.read_text() == "entity   User;\n"


def test_a_command_that_would_create_an_empty_database_warns_naming_the_data_directory(
        tmp_path: Path, capsys: Capture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("PDP_")]:
        monkeypatch.delenv(name)
    code, _, err = run(capsys, "decisions", "tail", "-n", "1")
    assert code == 0
    assert f"warning: no decision log at {tmp_path.resolve()}/.pdp/decisions.db" in err
    assert "PDP_DATA_DIR is .pdp" in err
    code, _, err = run(capsys, "decisions", "tail", "-n", "1")
    assert (code, err) == (0, "")  # the database exists now: nothing to warn about


def test_the_line_number_in_eval_help_is_where_the_policy_is() -> None:
    shown = re.search(r"legal-hold-freezes-documents\s+policies/default/documents\.cedar:(\d+)",
                      evaluate.__doc__ or "")
    assert shown is not None
    info = compile_directory(POLICIES / "default").policy("legal-hold-freezes-documents")
    assert info is not None and int(shown.group(1)) == info.line
