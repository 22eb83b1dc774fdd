"""The normalised mapping: outcomes, deny codes and the delegation (``act``) claim."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest

from pdp.coaz import Deny, Evaluate, MappingOptions, Pass, ToolCatalog, deny_code_for, map_message
from tests.coaz.spec_examples import COPY_OBJECT_TOOL, GET_CUSTOMER_TOOL, call, load

ACT = {"sub": "agent-app-1", "act": {"sub": "orchestrator-7"}}
CLAIMS = {"sub": "alice@example.com", "client_id": "agent-app-1", "act": ACT}
WITH_ACT = MappingOptions(expose_act=True)
PER_ENTRY_CONTEXT = {"name": "per_entry", "inputSchema": {"type": "object", "x-authzen-mapping": {
    "evaluations": {"action": {"name": "read"}, "context": {"act": "$params.name"},
                    "evaluations": [
                        {"resource": {"type": "a", "id": "1"}, "context": {"act": "forged"}},
                        {"resource": {"type": "b", "id": "2"}}]}}}}
CATALOG = ToolCatalog.from_tools_list([load(GET_CUSTOMER_TOOL), load(COPY_OBJECT_TOOL),
                                       PER_ENTRY_CONTEXT])


def build(name: str, arguments: dict[str, Any], claims: dict[str, Any],
          options: MappingOptions) -> dict[str, Any]:
    outcome = map_message(call({"name": name, "arguments": arguments}), claims, CATALOG, options)
    assert isinstance(outcome, Evaluate), outcome
    return outcome.body


def test_the_act_claim_goes_to_the_context_of_a_sep_request() -> None:
    body = build("get_customer", {"id": "c"}, CLAIMS, WITH_ACT)
    assert body["context"] == {"agent": "agent-app-1", "act": ACT}


def test_the_act_claim_goes_to_the_top_level_context_of_an_evaluations_request() -> None:
    body = build("copy_object", {"source": "a", "destination": "b"}, CLAIMS, WITH_ACT)
    assert body["context"] == {"agent": "agent-app-1", "act": ACT}


def test_the_act_claim_replaces_whatever_a_mapping_put_there_in_every_context() -> None:
    body = build("per_entry", {}, CLAIMS, WITH_ACT)
    assert body["context"] == {"act": ACT}
    assert body["evaluations"][0]["context"] == {"act": ACT}
    assert "context" not in body["evaluations"][1]


def test_without_an_act_claim_a_mapped_act_is_removed_when_act_is_exposed() -> None:
    claims = {k: v for k, v in CLAIMS.items() if k != "act"}
    body = build("per_entry", {}, claims, WITH_ACT)
    assert body["context"] == {}
    assert body["evaluations"][0]["context"] == {}


def test_the_act_claim_is_left_alone_by_default() -> None:
    body = build("per_entry", {}, CLAIMS, MappingOptions())
    assert body["context"] == {"act": "per_entry"}
    assert body["evaluations"][0]["context"] == {"act": "forged"}


def test_an_evaluate_outcome_carries_exactly_one_body() -> None:
    with pytest.raises(ValueError):
        Evaluate(None, None, "binding")
    with pytest.raises(ValueError):
        Evaluate({}, {}, "binding")


@pytest.mark.parametrize(("dialect", "code"), [("sep", -32401), ("binding", -32001),
                                               ("default", -32001)])
def test_the_deny_code_follows_the_dialect(dialect: Any, code: int) -> None:
    assert deny_code_for(dialect, MappingOptions()) == code


def test_claims_may_be_any_mapping() -> None:
    body = build("get_customer", {"id": "c"}, MappingProxyType(CLAIMS), MappingOptions())
    assert body["subject"]["id"] == "alice@example.com"


def test_outcomes_compare_by_value() -> None:
    assert Pass() == Pass()
    assert Deny(-32001, "no") == Deny(-32001, "no", field="x")


def test_the_request_does_not_share_containers_with_the_compiled_mapping() -> None:
    first = build("copy_object", {"source": "a", "destination": "b"}, CLAIMS, MappingOptions())
    first["evaluations"][0]["action"]["name"] = "tampered"
    first["context"]["agent"] = "tampered"
    second = build("copy_object", {"source": "a", "destination": "b"}, CLAIMS, MappingOptions())
    assert second["evaluations"][0]["action"] == {"name": "read"}
    assert second["context"] == {"agent": "agent-app-1"}
