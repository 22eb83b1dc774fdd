"""AuthZEN types that are not Cedar identifiers (``support-agent``, ``ref/prompt``) named
through a reversible type table, so policies can name them; unmapped, they are still refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pdp.authzen import parse_evaluation
from pdp.authzen.type_names import TypeNames
from pdp.errors import TranslationError
from pdp.settings import Settings
from tests.conftest import make_service

TABLE = {"support-agent": "support_agent", "ref/prompt": "ref_prompt"}
POLICY = """@id("agents-complete-prompts")
permit (
  principal is support_agent,
  action == Action::"completion/complete",
  resource is ref_prompt
);
"""
REQUEST: dict[str, Any] = {
    "subject": {"type": "support-agent", "id": "sam"},
    "action": {"name": "completion/complete"},
    "resource": {"type": "ref/prompt", "id": "summarise"},
}


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    (tmp_path / "policies.cedar").write_text(POLICY)
    return tmp_path


def _decide(policies: Path, request: dict[str, Any], **settings: Any) -> dict[str, Any]:
    service = make_service(policies, entity_store="memory", **settings)
    try:
        return service.evaluation(parse_evaluation(request), explain=True)
    finally:
        service.close()


def test_mapped_types_can_be_named_by_policies(policies: Path) -> None:
    answer = _decide(policies, REQUEST, type_names=TABLE)
    assert answer["decision"] is True


def test_an_unmapped_type_that_is_not_a_cedar_name_is_refused(policies: Path) -> None:
    answer = _decide(policies, REQUEST)
    assert answer["decision"] is False
    assert "not a valid Cedar entity type name" in str(answer["context"])


def test_the_cedar_name_of_a_mapped_type_cannot_be_sent_verbatim(policies: Path) -> None:
    verbatim = {**REQUEST, "subject": {"type": "support_agent", "id": "sam"}}
    answer = _decide(policies, verbatim, type_names=TABLE)
    assert answer["decision"] is False
    assert "PDP_TYPE_NAMES" in str(answer["context"])


@pytest.mark.parametrize("table", [
    {"support-agent": "support-agent"},          # not a Cedar name
    {"a-b": "x", "a/b": "x"},                     # not reversible
    {"support-agent": "if"},                      # reserved word
    {"": "x"},
])
def test_a_table_that_is_not_reversible_or_not_cedar_is_refused(
        table: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        Settings(type_names=table)


_authzen = st.text(min_size=1, max_size=12)
_cedar = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True).filter(
    lambda n: n not in {"if", "in", "is", "has", "like", "then", "else", "true", "false"})


@settings(max_examples=60)
@given(st.dictionaries(_authzen, _cedar, max_size=6), _authzen)
def test_every_accepted_type_maps_back_to_itself(table: dict[str, str], sent: str) -> None:
    try:
        names = TypeNames(table)
    except ValueError:
        return  # refused tables are not used
    try:
        cedar = names.cedar(sent, "subject")
    except TranslationError:
        assert sent in table.values() and sent not in table
        return
    assert names.authzen(cedar) == sent
