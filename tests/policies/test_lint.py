"""Warnings about a policy set that loads (:func:`pdp.policies.lint.lint`)."""

from __future__ import annotations

from pathlib import Path

from pdp.policies.compiled import compile_directory
from pdp.policies.lint import lint
from tests.conftest import POLICIES

TWICE = """\
@id("shared")
permit(principal, action, resource);

@id("unique")
permit(principal, action, resource);
"""
AGAIN = """\
// the same id, in another file
  @id("shared")
forbid(principal, action, resource);
"""


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def test_a_duplicate_id_is_reported_at_each_place_naming_the_other(tmp_path: Path) -> None:
    compiled = compile_directory(write(tmp_path, {"a.cedar": TWICE, "b.cedar": AGAIN}))
    warnings = lint(compiled.policies)
    assert [(w.code, w.file, w.line, w.column) for w in warnings] == [
        ("duplicate-id", "a.cedar", 1, 1), ("duplicate-id", "b.cedar", 2, 3)]
    assert "is also used at b.cedar:2:3" in warnings[0].message
    assert "is also used at a.cedar:1:1" in warnings[1].message
    assert str(warnings[0]).startswith("a.cedar:1:1: warning: @id(\"shared\")")
    assert [w.policy for w in warnings] == ["a.cedar:1", "b.cedar:2"]


def test_a_policy_without_an_id_is_reported_with_the_name_it_gets(tmp_path: Path) -> None:
    compiled = compile_directory(write(tmp_path, {
        "a.cedar": '@id("named")\npermit(principal, action, resource);\n\n'
                   "forbid(principal, action, resource) when { false };\n"}))
    (warning,) = lint(compiled.policies)
    assert (warning.code, warning.file, warning.line, warning.column) == (
        "missing-id", "a.cedar", 4, 1)
    assert "forbid(principal, action, resource) when { false };" in warning.message
    assert "a.cedar:4" in warning.message
    assert warning.to_dict()["code"] == "missing-id"


def test_files_are_named_under_the_directory_when_it_is_given(tmp_path: Path) -> None:
    directory = write(tmp_path / "set", {"a.cedar": TWICE, "b.cedar": AGAIN})
    warnings = lint(compile_directory(directory).policies, directory)
    assert warnings[0].file == str(directory / "a.cedar")
    assert f"is also used at {directory / 'b.cedar'}:2:3" in warnings[0].message


def test_the_shipped_policy_sets_have_no_warnings() -> None:
    for directory in sorted(p for p in POLICIES.iterdir() if p.is_dir()):
        assert lint(compile_directory(directory).policies) == [], directory.name
