"""The settings reference page is generated from the settings model, and the README and the
documentation link only to pages that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pdp.cli import main
from pdp.cli.settings_reference import reference_markdown, sections
from pdp.settings import Settings
from tests.conftest import ROOT

SETTINGS_PAGE = ROOT / "docs" / "settings.md"
README = ROOT / "README.md"
LINK = re.compile(r"\]\(([^)#\s]+)(#[^)\s]*)?\)")


def test_every_setting_has_a_description() -> None:
    missing = [name for name, field in Settings.model_fields.items() if not field.description]
    assert missing == []


def test_every_setting_is_in_one_section_of_the_reference() -> None:
    listed = [name for _, names in sections() for name in names]
    assert sorted(listed) == sorted(Settings.model_fields)


def test_the_committed_settings_page_is_what_the_model_generates() -> None:
    assert SETTINGS_PAGE.read_text(encoding="utf-8") == reference_markdown(), (
        "docs/settings.md is stale: run `pdp settings --format markdown > docs/settings.md`")


def test_the_reference_names_every_environment_variable_and_its_flags() -> None:
    page = reference_markdown()
    for name in Settings.model_fields:
        assert f"| `PDP_{name.upper()}` |" in page
    assert "`pdp serve --policies`" in page and "`pdp gateway --upstream`" in page


def test_pdp_settings_prints_the_reference(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["settings", "--format", "markdown"]) == 0
    assert capsys.readouterr().out == reference_markdown()
    assert main(["settings"]) == 0
    out = capsys.readouterr().out
    assert "PDP_DATA_DIR (default: .pdp)" in out and "PDP_GATEWAY_PDP_TOKEN" in out


def relative_links(path: Path) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2) or "") for m in LINK.finditer(path.read_text())
            if not re.match(r"[a-z]+:", m.group(1))]


def test_every_relative_link_of_the_readme_names_a_file_that_exists() -> None:
    links = relative_links(README)
    assert len(links) >= 8
    for target, _ in links:
        assert (ROOT / target).exists(), target


def test_the_readme_stays_short_and_points_to_the_docs() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 150
    linked = {target for target, _ in relative_links(README)}
    for page in ("docs/writing-policies.md", "docs/api.md", "docs/coaz.md", "docs/operating.md",
                 "docs/settings.md", "docs/architecture.md"):
        assert page in linked


def test_every_setting_the_documentation_names_exists() -> None:
    """A removed setting must not linger in a page (or a policy set's README)."""
    known = {f"PDP_{name.upper()}" for name in Settings.model_fields}
    not_settings = {"PDP_KEY", "PDP_ADMIN_KEY"}  # shell variables of the examples
    pages = [README, *sorted((ROOT / "docs").glob("*.md")),
             *sorted((ROOT / "policies").glob("*/README.md"))]
    unknown = []
    for page in pages:
        for number, line in enumerate(page.read_text().splitlines(), 1):
            if "are gone" in line:  # the migration note naming removed settings
                continue
            for name in re.findall(r"\bPDP_[A-Z0-9_]*[A-Z0-9]\b", line):
                if name not in known | not_settings:
                    unknown.append(f"{page.relative_to(ROOT)}:{number}: {name}")
    assert unknown == []
