"""A forbid policy that errors denies (PDP_FORBID_ERRORS=deny, the default); `skip` restores
Cedar's own semantics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pdp.authzen import parse_evaluation
from pdp.cli import main
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


def test_pdp_eval_and_pdp_test_follow_the_same_rule(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "p.cedar").write_text(TRANSFERS)
    code = main(["eval", "--policies", str(tmp_path), "--json", json.dumps(TEXT_AMOUNT)])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["decision"] is False
    (tmp_path / "p.test.yaml").write_text(
        "cases:\n  - name: a text amount is denied\n    request: "
        + json.dumps(TEXT_AMOUNT) + "\n    decision: deny\n")
    assert main(["test", str(tmp_path)]) == 0
    monkeypatch.setenv("PDP_FORBID_ERRORS", "skip")  # Cedar's semantics: the permit stands
    assert main(["test", str(tmp_path)]) == 1


@pytest.mark.parametrize("evaluator", ["native", "cedarpy"])
@pytest.mark.parametrize(("forbid_errors", "allowed"), [("deny", False), ("skip", True)])
def test_each_evaluator_applies_the_same_rule_to_an_erroring_forbid(
        tmp_path: Path, evaluator: str, forbid_errors: str, allowed: bool) -> None:
    service = service_on(tmp_path, {"p.cedar": TRANSFERS}, evaluator=evaluator,
                         forbid_errors=forbid_errors)
    decisions = service.decide([parse_evaluation(TEXT_AMOUNT)] * 2)
    assert [d.allowed for d in decisions] == [allowed, allowed]
    assert all(any("big-transfers" in e for e in d.errors) for d in decisions)
    native = service.engine.native
    assert (native is not None and native.decided == 2) is (evaluator == "native")
