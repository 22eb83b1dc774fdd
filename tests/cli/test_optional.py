"""Optional command groups: a missing package is named; any other ImportError surfaces."""

from __future__ import annotations

import sys

import pytest

from pdp.cli import build_parser, main


def test_a_command_whose_package_is_missing_is_listed_and_names_the_package(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "mcp", None)  # how an uninstalled package looks to import
    assert "gateway" in build_parser().format_help()
    code = main(["gateway", "--upstream", "http://127.0.0.1:1/mcp"])
    assert code == 1
    assert "'mcp'" in capsys.readouterr().err


def test_the_other_commands_still_work_when_an_optional_package_is_missing(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "sqlmodel", None)
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "entities" in out and "'sqlmodel'" in out


def test_an_import_error_inside_the_package_surfaces_instead_of_hiding_the_command(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pdp.cli.decisions", None)  # a broken module of our own
    with pytest.raises(ImportError, match="pdp.cli.decisions"):
        build_parser()
