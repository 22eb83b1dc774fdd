"""The policy authors' commands: ``pdp check`` (errors and warnings), ``pdp test``,
``pdp eval`` (human-readable) and ``pdp fmt``, and every shipped set passing check and test."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from pdp.cli import main
from tests.conftest import POLICIES

SHIPPED = sorted(p for p in POLICIES.iterdir() if p.is_dir())
Capture = pytest.CaptureFixture[str]

POLICY = """\
// readers read
@id("readers-read")
permit(principal, action == Action::"read", resource)
when { principal has level && principal.level > 3 };

@id("nobody-deletes")
forbid(principal, action == Action::"delete", resource);
"""
ENTITIES = [{"uid": {"type": "User", "id": "ann"}, "attrs": {"level": 5}, "parents": []},
            {"uid": {"type": "User", "id": "bob"}, "attrs": {"level": 1}, "parents": []}]


def policy_set(directory: Path, policy: str = POLICY) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "p.cedar").write_text(policy)
    (directory / "entities.json").write_text(json.dumps(ENTITIES))
    return directory


def request(subject: str, action: str) -> dict[str, object]:
    return {"subject": {"type": "User", "id": subject}, "action": {"name": action},
            "resource": {"type": "Doc", "id": "d"}}


def run(capsys: Capture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- every shipped set --------------------------------------------------------------------------


@pytest.mark.parametrize("directory", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_shipped_policy_set_checks_without_warnings_and_passes_its_tests(
        directory: Path, capsys: Capture) -> None:
    code, out, err = run(capsys, "check", "--strict", str(directory))
    assert (code, err) == (0, ""), err
    code, out, err = run(capsys, "test", str(directory))
    assert code == 0, out + err
    passed = int(out.strip().splitlines()[-1].split()[0])
    assert passed >= 6
    assert "FAILED" not in out and "ERROR" not in out


# -- pdp check -------------------------------------------------------------------------------


def test_check_prints_a_syntax_error_as_path_line_column(tmp_path: Path, capsys: Capture) -> None:
    directory = policy_set(tmp_path / "set", POLICY.replace("level > 3", "level >"))
    code, out, err = run(capsys, "check", str(directory))
    assert (code, out) == (1, "")
    assert err.startswith(f"{directory}/p.cedar:4:")
    assert "syntax error" in err


def test_check_warns_of_a_duplicate_id_naming_both_places_and_still_exits_0(
        tmp_path: Path, capsys: Capture) -> None:
    directory = policy_set(tmp_path / "set", POLICY.replace("nobody-deletes", "readers-read"))
    code, out, err = run(capsys, "check", str(directory))
    assert code == 0
    assert out.startswith("ok: 2 policies") and "2 warning(s)" in out
    first, second = err.strip().splitlines()
    assert first.startswith(f"{directory}/p.cedar:2:1: warning: @id(\"readers-read\") is also "
                            f"used at {directory}/p.cedar:6:1")
    assert second.startswith(f"{directory}/p.cedar:6:1: warning: ")


def test_check_strict_fails_on_a_policy_without_an_id(tmp_path: Path, capsys: Capture) -> None:
    directory = policy_set(tmp_path / "set", POLICY.replace('@id("nobody-deletes")\n', ""))
    code, out, err = run(capsys, "check", "--strict", str(directory))
    assert (code, out) == (1, "")
    assert err.startswith(f"{directory}/p.cedar:6:1: warning: policy `forbid(")
    assert "failing because of --strict" in err


def test_check_json_reports_validity_errors_warnings_and_a_summary(
        tmp_path: Path, capsys: Capture) -> None:
    directory = policy_set(tmp_path / "set", POLICY.replace('@id("nobody-deletes")\n', ""))
    code, out, _ = run(capsys, "check", "--format", "json", str(directory))
    doc = json.loads(out)
    assert code == 0
    assert (doc["valid"], doc["errors"]) == (True, [])
    assert [(w["code"], w["line"]) for w in doc["warnings"]] == [("missing-id", 6)]
    assert doc["summary"]["policies"] == 2 and doc["summary"]["entities"] == 2
    code, out, _ = run(capsys, "check", "--json", "--strict", str(directory))
    assert (code, json.loads(out)["valid"]) == (1, False)


def test_check_of_a_missing_directory_exits_1(tmp_path: Path, capsys: Capture) -> None:
    code, _, err = run(capsys, "check", str(tmp_path / "nowhere"))
    assert code == 1
    assert "not a directory" in err


# -- pdp test --------------------------------------------------------------------------------


def write_tests(directory: Path, cases: list[dict[str, object]]) -> Path:
    path = directory / "p.test.json"
    path.write_text(json.dumps({"cases": cases}))
    return path


def test_test_passes_and_prints_every_case_with_v(tmp_path: Path, capsys: Capture) -> None:
    directory = policy_set(tmp_path / "set")
    path = write_tests(directory, [
        {"name": "ann reads", "request": request("ann", "read"), "decision": "permit",
         "policies": ["readers-read"]},
        {"name": "ann never deletes", "request": request("ann", "delete"), "decision": "deny",
         "policies": ["nobody-deletes"]}])
    code, out, err = run(capsys, "test", "-v", str(directory))
    assert (code, err) == (0, "")
    assert out.splitlines() == [f"PASSED {path}::ann reads", f"PASSED {path}::ann never deletes",
                                "2 passed in 1 file(s)"]


def test_a_failing_case_is_reported_with_its_file_and_name(
        tmp_path: Path, capsys: Capture) -> None:
    directory = policy_set(tmp_path / "set")
    path = write_tests(directory, [
        {"name": "bob reads", "request": request("bob", "read"), "decision": "permit"},
        {"name": "ann reads", "request": request("ann", "read"), "decision": "permit"}])
    code, out, _ = run(capsys, "test", str(directory))
    assert code == 1
    assert out.splitlines() == [
        f"FAILED {path}::bob reads - expected permit, got deny (determining: [])",
        "1 failed, 1 passed in 1 file(s)"]


def test_a_malformed_case_exits_2_naming_the_file_and_the_case_and_the_others_still_run(
        tmp_path: Path, capsys: Capture) -> None:
    directory = policy_set(tmp_path / "set")
    path = write_tests(directory, [
        {"name": "ann reads", "request": request("ann", "read"), "decision": "permit",
         "expect": "permit"},
        {"name": "bob reads", "request": request("bob", "read"), "decision": "permit"}])
    code, out, err = run(capsys, "test", str(directory))
    assert code == 2
    assert err.startswith(f"{path}: case 'ann reads': unknown key `expect`")
    assert out.splitlines() == [
        f"FAILED {path}::bob reads - expected permit, got deny (determining: [])",
        "1 failed, 1 problem(s) in 1 file(s)"]


def test_no_test_files_exits_5(tmp_path: Path, capsys: Capture) -> None:
    directory = policy_set(tmp_path / "set")
    code, out, err = run(capsys, "test", str(directory))
    assert (code, out) == (5, "")
    assert err.startswith(f"no tests found in {directory}")


def test_test_on_an_invalid_policy_set_exits_2_with_its_diagnostics(
        tmp_path: Path, capsys: Capture) -> None:
    directory = policy_set(tmp_path / "set", "permit(principal, action, resource) when { 1 + };\n")
    write_tests(directory, [{"name": "x", "request": request("ann", "read"), "decision": "deny"}])
    code, _, err = run(capsys, "test", str(directory))
    assert code == 2
    assert err.startswith(f"{directory}/p.cedar:1:48: ")


# -- pdp eval --------------------------------------------------------------------------------


def test_eval_says_which_policy_denied_and_where(tmp_path: Path, capsys: Capture) -> None:
    directory = policy_set(tmp_path / "set")
    body = tmp_path / "request.json"
    body.write_text(json.dumps(request("ann", "delete")))
    code, out, err = run(capsys, "eval", "--policies", str(directory), str(body))
    assert (code, err) == (0, "")
    assert out.splitlines() == [f"policy set: {directory}",
                                "decision: deny (forbid)", "determining policies:",
                                f"  nobody-deletes  {directory}/p.cedar:6",
                                "errors: none"]


def test_eval_of_a_permit_from_stdin_names_the_permitting_policy(
        tmp_path: Path, capsys: Capture, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = policy_set(tmp_path / "set")
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(request("ann", "read"))))
    code, out, _ = run(capsys, "eval", "--policies", str(directory), "-")
    assert code == 0
    assert out.splitlines()[1:4] == ["decision: permit (permit)", "determining policies:",
                                    f"  readers-read  {directory}/p.cedar:2"]


def test_eval_with_exit_code_exits_1_on_a_deny(tmp_path: Path, capsys: Capture) -> None:
    directory = policy_set(tmp_path / "set")
    code, out, _ = run(capsys, "eval", "--exit-code", "--policies", str(directory),
                       json.dumps(request("bob", "read")))
    assert code == 1
    assert out.splitlines()[1:3] == ["decision: deny (no_permit)", "determining policies: none"]


def test_eval_json_explain_gives_each_policy_its_place(tmp_path: Path, capsys: Capture) -> None:
    directory = policy_set(tmp_path / "set")
    code, out, _ = run(capsys, "eval", "--format", "json", "--explain", "--policies",
                       str(directory), json.dumps(request("ann", "delete")))
    assert code == 0
    assert json.loads(out)["context"]["policies"] == [
        {"id": "nobody-deletes", "file": f"{directory}/p.cedar", "line": 6, "column": 1}]


def test_eval_of_a_batch_prints_each_item(tmp_path: Path, capsys: Capture) -> None:
    directory = policy_set(tmp_path / "set")
    body = {"subject": {"type": "User", "id": "ann"}, "resource": {"type": "Doc", "id": "d"},
            "evaluations": [{"action": {"name": "read"}}, {"action": {"name": "delete"}}]}
    code, out, _ = run(capsys, "eval", "--policies", str(directory), json.dumps(body))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"policy set: {directory}"
    assert lines[1] == "evaluations[0]:" and lines[2] == "  decision: permit (permit)"
    assert "evaluations[1]:" in lines and "  decision: deny (forbid)" in lines


def test_eval_of_a_missing_request_file_exits_2(tmp_path: Path, capsys: Capture) -> None:
    directory = policy_set(tmp_path / "set")
    code, out, err = run(capsys, "eval", "--policies", str(directory),
                         str(tmp_path / "missing.json"))
    assert (code, out) == (2, "")
    assert "cannot read the request" in err


# -- pdp fmt ---------------------------------------------------------------------------------

UNFORMATTED = '// hi\n@id("x")\npermit(principal,action,resource) when {principal.a>1};\n'


def test_fmt_check_lists_an_unformatted_file_exits_1_and_leaves_it_unchanged(
        tmp_path: Path, capsys: Capture) -> None:
    path = tmp_path / "a.cedar"
    path.write_text(UNFORMATTED)
    code, out, _ = run(capsys, "fmt", "--check", str(tmp_path))
    assert code == 1
    assert out == f"would reformat {path}\n"
    assert path.read_text() == UNFORMATTED


def test_fmt_rewrites_a_file_keeping_its_comment_and_then_has_nothing_to_do(
        tmp_path: Path, capsys: Capture) -> None:
    path = tmp_path / "a.cedar"
    path.write_text(UNFORMATTED)
    code, out, _ = run(capsys, "fmt", str(path))
    assert (code, out) == (0, f"reformatted {path}\n")
    text = path.read_text()
    assert text != UNFORMATTED
    assert text.startswith('// hi\n@id("x")\npermit (principal, action, resource)')
    assert run(capsys, "fmt", "--check", str(path))[:2] == (0, "")


def test_fmt_diff_shows_the_change(tmp_path: Path, capsys: Capture) -> None:
    path = tmp_path / "a.cedar"
    path.write_text(UNFORMATTED)
    code, out, _ = run(capsys, "fmt", "--check", "--diff", str(path))
    assert code == 1
    assert "-permit(principal,action,resource) when {principal.a>1};" in out
    assert "+permit (principal, action, resource)" in out


def test_fmt_of_an_unparseable_file_names_its_line_and_column(
        tmp_path: Path, capsys: Capture) -> None:
    path = tmp_path / "bad.cedar"
    path.write_text("permit(principal, action, resource) when { 1 + };\n")
    code, _, err = run(capsys, "fmt", str(path))
    assert code == 1
    assert err.startswith(f"{path}:1:48: ")
    assert path.read_text() == "permit(principal, action, resource) when { 1 + };\n"


def test_fmt_of_a_missing_path_is_a_usage_error(tmp_path: Path, capsys: Capture) -> None:
    code, _, err = run(capsys, "fmt", str(tmp_path / "nope.cedar"))
    assert code == 2
    assert "no such file or directory" in err
