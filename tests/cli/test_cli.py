"""The ``pdp`` command line: ``eval`` (JSON output) and ``check`` on the shipped sets."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pdp.cli import main
from tests.conftest import POLICIES, ROOT

TODO = POLICIES / "todo"
ENTITIES = json.loads((TODO / "entities.json").read_text())
RICK = next(e for e in ENTITIES if e["attrs"]["name"] == "Rick Sanchez")["uid"]["id"]
BETH = next(e for e in ENTITIES if e["attrs"]["name"] == "Beth Smith")["uid"]["id"]
SHIPPED = sorted(p for p in POLICIES.iterdir() if p.is_dir())


def evaluation(subject: str, action: str) -> dict[str, Any]:
    return {"subject": {"type": "user", "id": subject}, "action": {"name": action},
            "resource": {"type": "todo", "id": "1"}}


def run_eval(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
             stdin: str, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(["eval", "--policies", str(TODO), "--format", "json", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("subject", "action", "decision"), [
    (RICK, "can_delete_todo", True), (BETH, "can_delete_todo", False),
    (BETH, "can_read_todos", True), ("stranger", "can_create_todo", False)])
def test_pdp_eval_decides_a_request_from_stdin(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], subject: str,
        action: str, decision: bool) -> None:
    code, out, err = run_eval(monkeypatch, capsys, json.dumps(evaluation(subject, action)))
    assert (code, err) == (0, "")
    assert json.loads(out) == {"decision": decision}


def test_pdp_eval_takes_the_request_as_an_argument_too(
        capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["eval", "--policies", str(TODO), "--json",
                 json.dumps(evaluation(RICK, "can_delete_todo"))])
    assert code == 0
    assert json.loads(capsys.readouterr().out) == {"decision": True}


def test_pdp_eval_decides_a_batch_with_its_semantic(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    body = {"subject": {"type": "user", "id": BETH}, "resource": {"type": "todo", "id": "1"},
            "options": {"evaluations_semantic": "deny_on_first_deny"},
            "evaluations": [{"action": {"name": "can_read_todos"}},
                            {"action": {"name": "can_create_todo"}},
                            {"action": {"name": "can_read_user"}}]}
    code, out, _ = run_eval(monkeypatch, capsys, json.dumps(body))
    assert code == 0
    assert json.loads(out) == {"evaluations": [{"decision": True}, {"decision": False}]}


def test_pdp_eval_explain_prints_the_reasons(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_eval(monkeypatch, capsys,
                            json.dumps(evaluation(RICK, "can_delete_todo")), "--explain")
    assert code == 0
    policy = next(i for i, line in enumerate((TODO / "todo.cedar").read_text().splitlines(), 1)
                  if "admin-deletes-any-todo" in line)
    assert json.loads(out) == {"decision": True, "context": {
        "outcome": "permit", "reasons": ["admin-deletes-any-todo"],
        "policies": [{"id": "admin-deletes-any-todo", "file": str(TODO / "todo.cedar"),
                      "line": policy, "column": 1}]}}


@pytest.mark.parametrize(("stdin", "expected"), [
    ("{not json", "error"),
    ("", "error"),
    (json.dumps({"subject": {"type": "user", "id": "a"}, "action": {"name": "x"}}), "resource"),
])
def test_pdp_eval_refuses_a_bad_request_with_exit_2(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], stdin: str,
        expected: str) -> None:
    code, out, err = run_eval(monkeypatch, capsys, stdin)
    assert code == 2
    assert out == ""
    assert expected in err


def test_pdp_eval_on_an_invalid_policy_set_exits_2_with_the_diagnostics(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.cedar").write_text("permit(principal, action, resource) when { 1 + };\n")
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(evaluation(RICK, "x"))))
    assert main(["eval", "--policies", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "bad.cedar:1:48:" in err


def test_pdp_eval_as_a_process_reads_stdin(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PDP_")}
    done = subprocess.run(
        [sys.executable, "-m", "pdp", "eval", "--json", "--policies", str(TODO)],
        input=json.dumps(evaluation(RICK, "can_update_todo")), capture_output=True, text=True,
        timeout=60, cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"decision": True}


@pytest.mark.parametrize("directory", SHIPPED, ids=[p.name for p in SHIPPED])
def test_pdp_check_accepts_every_shipped_policy_set(
        directory: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(directory)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.startswith("ok: ")
    assert main(["check", "--json", str(directory)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["valid"], doc["errors"], doc["warnings"]) == (True, [], [])
    summary = doc["summary"]
    stored = directory / "entities.json"
    expected = len(json.loads(stored.read_text())) if stored.is_file() else 0
    assert summary["entities"] == expected
    assert summary["policies"] >= 1
    assert summary["schema"] is any(directory.glob("*.cedarschema*"))


def test_the_shipped_sets_include_the_three_documented_ones() -> None:
    assert {"default", "todo", "certification"} <= {p.name for p in SHIPPED}


def test_pdp_without_a_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main([])
    assert caught.value.code == 2
    assert "usage: pdp" in capsys.readouterr().err
