"""Enforcing a PDP answer (docs/spec/coaz.md, "Dialect 2": enforcement; AuthZEN 1.0 section 7)."""

from __future__ import annotations

from typing import Any

import pytest

from pdp.coaz.verdict import EVALUATION_PATH, EVALUATIONS_PATH, decision_reason, verdict
from pdp.errors import UpstreamError

T, F = {"decision": True}, {"decision": False}


def _batch(n: int, semantic: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"evaluations": [{}] * n}
    if semantic is not None:
        body["options"] = {"evaluations_semantic": semantic}
    return body


@pytest.mark.parametrize(("endpoint", "body", "answer", "allowed"), [
    (EVALUATION_PATH, {}, T, True),
    (EVALUATION_PATH, {}, F, False),
    (EVALUATIONS_PATH, _batch(2), {"evaluations": [T, T]}, True),
    (EVALUATIONS_PATH, _batch(2), {"evaluations": [T, F]}, False),
    (EVALUATIONS_PATH, _batch(0), T, True),
    (EVALUATIONS_PATH, _batch(3, "deny_on_first_deny"), {"evaluations": [T, F]}, False),
    (EVALUATIONS_PATH, _batch(3, "permit_on_first_permit"), {"evaluations": [T]}, True),
    (EVALUATIONS_PATH, _batch(3, "permit_on_first_permit"), {"evaluations": [F, T]}, False),
])
def test_every_decision_must_be_true(endpoint: str, body: dict[str, Any], answer: Any,
                                     allowed: bool) -> None:
    assert verdict(endpoint, body, answer).allowed is allowed


@pytest.mark.parametrize(("endpoint", "body", "answer"), [
    (EVALUATION_PATH, {}, {"decision": "true"}),
    (EVALUATION_PATH, {}, {"decision": 1}),
    (EVALUATION_PATH, {}, ["decision"]),
    (EVALUATIONS_PATH, _batch(2), T),
    (EVALUATIONS_PATH, _batch(2), {"evaluations": [T]}),
    (EVALUATIONS_PATH, _batch(2), {"evaluations": [T, T, T]}),
    (EVALUATIONS_PATH, _batch(2), {"evaluations": []}),
    (EVALUATIONS_PATH, _batch(3, "deny_on_first_deny"), {"evaluations": [T]}),
    (EVALUATIONS_PATH, _batch(3, "permit_on_first_permit"), {"evaluations": [F]}),
    (EVALUATIONS_PATH, _batch(3, "something_else"), {"evaluations": [F]}),
])
def test_anything_else_is_an_invalid_answer(endpoint: str, body: dict[str, Any],
                                            answer: Any) -> None:
    with pytest.raises(UpstreamError):
        verdict(endpoint, body, answer)


def test_reasons() -> None:
    assert decision_reason({"decision": False, "context": {"reason": "Outside hours"}}) == \
        "Outside hours"
    assert decision_reason({"decision": False, "context": {
        "reason_user": {"de": "Nein", "en": "No"}}}) == "No"
    # reason_admin is for the PDP's operators, never for the MCP client
    assert decision_reason({"decision": False, "context": {"reason_admin": {"id": "1"}}}) is None
    assert decision_reason({"decision": False, "context": {"reason_user": {
        "id": "2", "reason_admin": {"en": "secret"}}}}) == "2"
    assert decision_reason({"decision": False, "context": {"reasons": ["policy-7"]}}) is None
    assert decision_reason({"decision": False, "context": {"reason": "x" * 500}}) == "x" * 200
    assert decision_reason({"decision": False}) is None
