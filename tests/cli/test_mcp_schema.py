"""``pdp mcp schema``: a Cedar schema of the tools' arguments, with which policies are
type-checked (a misspelt argument is an error)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pdp.cli import main
from tests.conftest import POLICIES, ROOT, free_port, stop_server
from tests.gateway.support import wait_serving

TOOLS = POLICIES / "mcp" / "tools.json"
GOOD = """@id("small-transfers")
permit (
  principal is identity,
  action == Action::"transfer_funds",
  resource is mcp_server
)
when { context.input.amount < 100 && context.input has from_account };
"""


def _policy_set(tmp_path: Path, schema: Path, policy: str) -> Path:
    directory = tmp_path / "set"
    directory.mkdir()
    (directory / "tools.cedarschema").write_text(schema.read_text())
    (directory / "policies.cedar").write_text(policy)
    return directory


def test_the_schema_types_each_tools_arguments(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tools.cedarschema"
    assert main(["mcp", "schema", "--tools", str(TOOLS), "-o", str(out)]) == 0
    text = out.read_text()
    assert "type transfer_fundsInput" in text and "amount: Long" in text
    assert "case?: String" in text  # an optional argument
    assert main(["check", "--strict", str(_policy_set(tmp_path, out, GOOD))]) == 0
    capsys.readouterr()


def test_a_policy_reading_an_argument_the_tool_does_not_have_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tools.cedarschema"
    assert main(["mcp", "schema", "--tools", str(TOOLS), "-o", str(out)]) == 0
    misspelt = GOOD.replace("context.input.amount", "context.input.amout")
    assert main(["check", "--strict", str(_policy_set(tmp_path, out, misspelt))]) != 0
    captured = capsys.readouterr()
    assert "input.amout" in captured.out + captured.err


def test_the_schema_is_printed_without_an_output_file(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mcp", "schema", "--tools", str(TOOLS), "--namespace", "Shop",
                 "--principal-type", "User"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("namespace Shop {") and "entity User;" in text


def test_an_unreadable_tools_file_is_a_clear_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "none.json"
    assert main(["mcp", "schema", "--tools", str(missing)]) == 2
    assert "cannot read the tools file" in capsys.readouterr().err


def test_the_tools_may_come_from_the_live_upstream(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    log = tmp_path / "upstream.jsonl"
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "gateway" / "mcp_server.py"), "--port",
         str(port), "--log", str(log), "--token", "schema-s3cret"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_serving(server, f"http://127.0.0.1:{port}/health", "the MCP server")
        monkeypatch.setenv("PDP_GATEWAY_UPSTREAM", f"http://127.0.0.1:{port}/mcp")
        monkeypatch.setenv("PDP_GATEWAY_UPSTREAM_TOKEN", "schema-s3cret")
        assert main(["mcp", "schema", "--from-upstream"]) == 0
    finally:
        stop_server(server)
    from_file = tmp_path / "file.cedarschema"
    live = capsys.readouterr().out
    assert main(["mcp", "schema", "--tools", str(TOOLS), "-o", str(from_file)]) == 0
    assert live == from_file.read_text()
