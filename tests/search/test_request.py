"""Search requests: which fields each search requires, and what a page token is bound to."""

from __future__ import annotations

from typing import Any

import pytest

from pdp.errors import InvalidField, MissingField, RequestError
from pdp.search import SearchKind, parse_search

SUBJECT = {"subject": {"type": "user"}, "action": {"name": "view"},
           "resource": {"type": "record", "id": "101"}}
RESOURCE = {"subject": {"type": "user", "id": "alice"}, "action": {"name": "view"},
            "resource": {"type": "record"}}
ACTION = {"subject": {"type": "user", "id": "alice"}, "resource": {"type": "record", "id": "1"}}


def parse(kind: str, body: Any) -> Any:
    return parse_search(SearchKind(kind), body, max_limit=1000)


def test_the_searched_entity_needs_only_its_type_and_its_id_is_ignored() -> None:
    with_id = parse("subject", {**SUBJECT, "subject": {"type": "user", "id": "zed",
                                                       "properties": {"x": 1}}})
    without = parse("subject", SUBJECT)
    assert with_id.subject.id == "" and with_id.subject.properties is None
    assert with_id.fingerprint == without.fingerprint


def test_an_action_search_ignores_an_action() -> None:
    assert parse("action", {**ACTION, "action": {"name": "x"}}).action is None
    assert parse("action", {**ACTION, "action": {"name": "x"}}).fingerprint == parse(
        "action", ACTION).fingerprint


@pytest.mark.parametrize(("kind", "body", "error", "field"), [
    ("subject", {"action": {"name": "v"}, "resource": {"type": "r", "id": "1"}},
     MissingField, "subject"),
    ("subject", {"subject": {}, "action": {"name": "v"}, "resource": {"type": "r", "id": "1"}},
     MissingField, "subject.type"),
    ("resource", {**RESOURCE, "subject": {"type": "user"}}, MissingField, "subject.id"),
    ("resource", {**RESOURCE, "subject": {"type": "user", "id": 1}}, InvalidField,
     "subject.id"),
    ("resource", {**RESOURCE, "action": {}}, MissingField, "action.name"),
    ("resource", {**RESOURCE, "context": []}, InvalidField, "context"),
    ("action", {"subject": ACTION["subject"]}, MissingField, "resource"),
    ("action", [], InvalidField, "$"),
    ("resource", {**RESOURCE, "page": {"limit": -1}}, InvalidField, "page.limit"),
    ("resource", {**RESOURCE, "page": {"limit": True}}, InvalidField, "page.limit"),
    ("resource", {**RESOURCE, "page": {"limit": "5"}}, InvalidField, "page.limit"),
    ("resource", {**RESOURCE, "page": {"token": 1}}, InvalidField, "page.token"),
    ("resource", {**RESOURCE, "page": {"properties": 1}}, InvalidField, "page.properties"),
])
def test_a_missing_or_malformed_field_is_refused_by_name(
        kind: str, body: Any, error: type[RequestError], field: str) -> None:
    with pytest.raises(error) as refused:
        parse(kind, body)
    assert refused.value.field == field and refused.value.status == 400


def test_a_limit_above_the_maximum_is_lowered_to_it() -> None:
    assert parse("resource", {**RESOURCE, "page": {"limit": 10**9}}).limit == 1000


def test_the_fingerprint_ignores_token_and_limit_but_nothing_that_changes_the_results(
        ) -> None:
    base = parse("resource", RESOURCE).fingerprint
    assert parse("resource", {**RESOURCE, "page": {"token": "t", "limit": 3}}
                 ).fingerprint == base
    assert parse("resource", {"resource": RESOURCE["resource"], "action": RESOURCE["action"],
                              "subject": RESOURCE["subject"]}).fingerprint == base
    for change in ({"subject": {"type": "user", "id": "bob"}},
                   {"subject": {"type": "user", "id": "alice", "properties": {"r": 1}}},
                   {"action": {"name": "edit"}},
                   {"action": {"name": "view", "properties": {"p": True}}},
                   {"resource": {"type": "doc"}}, {"context": {"k": 1}},
                   {"page": {"properties": {"sort": "id"}}}):
        assert parse("resource", {**RESOURCE, **change}).fingerprint != base, change
    assert parse("subject", SUBJECT).fingerprint != parse(
        "resource", {**SUBJECT, "subject": {"type": "user", "id": ""},
                     "resource": {"type": "record"}}).fingerprint
