"""A forbid policy that errors denies (PDP_FORBID_ERRORS=deny, the default); `skip` restores
Cedar's own semantics."""

from __future__ import annotations

from pathlib import Path

import pytest

from pdp.authzen import parse_evaluation
from tests.security.conftest import EVALUATION, TRANSFERS, client_of, request, service_on

TEXT_AMOUNT = request(("user", "bob"), "transfer", ("account", "a1"),
                      context={"amount": "lots"})


@pytest.mark.asyncio
async def test_an_erroring_forbid_denies_and_says_why(tmp_path: Path) -> None:
    async with client_of(service_on(tmp_path, {"p.cedar": TRANSFERS})) as client:
        answer = await client.post(EVALUATION, json=TEXT_AMOUNT,
                                   headers={"x-pdp-explain": "true"})
    body = answer.json()
    assert body["decision"] is False, body
    assert any("big-transfers" in e for e in body["context"]["errors"]), body


def test_an_erroring_forbid_denies_in_batches_and_searches_too(tmp_path: Path) -> None:
    service = service_on(tmp_path, {"p.cedar": TRANSFERS})
    batch = service.evaluations({"evaluations": [TEXT_AMOUNT, TEXT_AMOUNT]})
    assert [e["decision"] for e in batch["evaluations"]] == [False, False]
    found = service.search("action", {"subject": TEXT_AMOUNT["subject"],
                                      "resource": TEXT_AMOUNT["resource"],
                                      "context": TEXT_AMOUNT["context"]})
    assert {"name": "transfer"} not in found["results"], found


def test_forbid_errors_skip_restores_cedar_semantics(tmp_path: Path) -> None:
    service = service_on(tmp_path, {"p.cedar": TRANSFERS}, forbid_errors="skip")
    decision = service.decide([parse_evaluation(TEXT_AMOUNT)])[0]
    assert decision.allowed and decision.errors


def test_an_erroring_permit_stays_a_non_permit(tmp_path: Path) -> None:
    policy = '@id("p")\npermit (principal, action, resource) when { context.amount > 1 };\n'
    service = service_on(tmp_path, {"p.cedar": policy})
    decision = service.decide([parse_evaluation(TEXT_AMOUNT)])[0]
    assert not decision.allowed
