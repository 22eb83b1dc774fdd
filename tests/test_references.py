"""Every document the code cites is in the repository, so a reader can follow it."""

from __future__ import annotations

import re

from tests.conftest import ROOT

CITED = re.compile(r"[\w./-]+\.md\b")
DIGESTS = ("coaz.md", "authzen-1.0.md")


def test_the_spec_digests_the_code_cites_are_in_the_repository_with_their_sources() -> None:
    for name in DIGESTS:
        text = (ROOT / "docs" / "spec" / name).read_text()
        assert "https://" in text.split("\n\n", 2)[1]  # the sources, right under the title


def test_every_markdown_file_cited_in_the_code_is_a_path_in_the_repository() -> None:
    this = ROOT / "tests" / "test_references.py"
    sources = [p for d in ("pdp", "tests", "benchmarks") for p in (ROOT / d).rglob("*.py")
               if p != this]
    cited = {(str(p.relative_to(ROOT)), name) for p in sources
             for name in CITED.findall(p.read_text())}
    assert cited  # the search does find the citations
    # a page of the documentation is also cited by its name in docs/ (``api.md``)
    # (a glob's tail such as ``*/README.md`` is no citation)
    assert sorted((where, name) for where, name in cited if not name.startswith("/")
                  and not (ROOT / name).is_file() and not (ROOT / "docs" / name).is_file()) == []
