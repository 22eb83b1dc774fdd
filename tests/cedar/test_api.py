"""The library API: ``pdp.cedar.is_authorized``, ``PolicySet``, ``EntitySet`` and the one
exception, ``CedarInputError``."""

from __future__ import annotations

import json
from typing import Any

import cedarpy
import pytest

import pdp.cedar
from pdp.errors import CedarInputError, PDPError

ALICE = {"type": "User", "id": "alice"}
REQUEST: dict[str, Any] = {"principal": ALICE, "action": {"type": "Action", "id": "view"},
                           "resource": {"type": "Doc", "id": "d1"}, "context": {"mfa": True}}
ENTITIES = [{"uid": ALICE, "attrs": {"role": "admin"}, "parents": []}]
POLICIES = """
@id("admins-view")
permit (principal, action == Action::"view", resource) when { principal.role == "admin" };
forbid (principal, action, resource) when { context.mfa == false };
permit (principal, action, resource) when { resource.owner == principal };
"""


def test_an_answer_names_the_decision_the_determining_policies_and_the_erroring_ones() -> None:
    answer = pdp.cedar.is_authorized(REQUEST, POLICIES, ENTITIES)
    assert answer == {
        "decision": "allow", "reasons": ["policy0"],
        "errors": [{"policy": "policy2", "message": 'entity `Doc::"d1"` does not exist'}],
        "evaluator": "native"}


def test_a_satisfied_forbid_denies_and_is_the_reason() -> None:
    answer = pdp.cedar.is_authorized({**REQUEST, "context": {"mfa": False}}, POLICIES,
                                     json.dumps(ENTITIES))
    assert (answer["decision"], answer["reasons"]) == ("deny", ["policy1"])


def test_built_policy_and_entity_sets_are_reused_across_calls() -> None:
    policies, entities = pdp.cedar.PolicySet(POLICIES), pdp.cedar.EntitySet(ENTITIES)
    assert policies.native_reason is None and entities.native_reason is None
    assert len(policies) == 3 and len(entities) == 1
    for mfa, decision in ((True, "allow"), (False, "deny")):
        answer = pdp.cedar.is_authorized({**REQUEST, "context": {"mfa": mfa}}, policies,
                                         entities)
        assert answer["decision"] == decision


@pytest.mark.parametrize("text", ["permit(principal, action, resource) when { 1 + };",
                                  "permit(principal, action);", "forbid"])
def test_invalid_policies_raise_cedars_message(text: str) -> None:
    with pytest.raises(CedarInputError) as caught:
        pdp.cedar.PolicySet(text)
    try:
        cedarpy.PolicySet.from_str(text)
    except ValueError as e:
        assert str(e) in caught.value.message
    assert isinstance(caught.value, PDPError) and caught.value.status == 400


@pytest.mark.parametrize("entities", [
    "not json", [{"uid": ALICE}, {"uid": ALICE}],
    [{"uid": ALICE, "attrs": {}, "parents": [ALICE]}],
    [{"uid": ALICE, "attrs": {"x": {"__extn": {"fn": "decimal", "arg": "x"}}}, "parents": []}]])
def test_invalid_entities_raise_the_one_exception(entities: Any) -> None:
    with pytest.raises(CedarInputError, match="invalid entities"):
        pdp.cedar.is_authorized(REQUEST, POLICIES, entities)


@pytest.mark.parametrize("request_", [
    {**REQUEST, "context": {"x": 1.5}}, {**REQUEST, "principal": "alice"},
    {k: v for k, v in REQUEST.items() if k != "action"}])
def test_an_invalid_request_raises_the_one_exception(request_: dict[str, Any]) -> None:
    with pytest.raises(CedarInputError):
        pdp.cedar.is_authorized(request_, POLICIES, ENTITIES)


def test_context_values_use_cedars_json_escapes() -> None:
    text = ('permit(principal, action, resource) when { context.who == User::"alice" && '
            'context.limit.lessThan(decimal("2.5")) && context.who.role == "admin" };')
    request = {**REQUEST, "context": {"who": {"__entity": ALICE},
                                      "limit": {"__extn": {"fn": "decimal", "arg": "1.25"}}}}
    answer = pdp.cedar.is_authorized(request, text, ENTITIES)
    assert (answer["decision"], answer["evaluator"]) == ("allow", "native")


def test_a_set_the_compiler_does_not_take_is_decided_by_cedarpy_with_the_reason() -> None:
    deep = "permit(principal, action, resource) when { " + "1 + " * 300 + "1 > 0 };"
    policies = pdp.cedar.PolicySet(deep)
    assert policies.native_reason == "expression nested too deeply"
    answer = pdp.cedar.is_authorized(REQUEST, policies, ENTITIES)
    assert (answer["decision"], answer["evaluator"]) == ("allow", "cedarpy")


def test_an_entity_value_not_read_natively_sends_the_call_to_cedarpy() -> None:
    odd = {"__extn": {"fn": "decimal", "arg": "1.0"}, "extra": 1}  # Cedar takes it; we do not
    built = pdp.cedar.EntitySet([{"uid": ALICE, "attrs": {"role": "admin", "x": odd},
                                  "parents": []}])
    assert built.native_reason is not None and "__extn" in built.native_reason
    answer = pdp.cedar.is_authorized(REQUEST, POLICIES, built)
    assert (answer["decision"], answer["evaluator"]) == ("allow", "cedarpy")


def test_linked_templates_are_evaluated_natively() -> None:
    template = ('@id("owner-edits")\npermit (principal == ?principal, action, '
                'resource in ?resource);')
    base = pdp.cedar.PolicySet(template)
    assert len(base) == 0
    linked = base.link("owner-edits", "alice-edits-d1", {
        "?principal": ALICE, "?resource": {"type": "Doc", "id": "d1"}})
    assert linked.native_reason is None and linked.ids == ("alice-edits-d1",)
    answer = pdp.cedar.is_authorized(REQUEST, linked, ENTITIES)
    assert (answer["decision"], answer["reasons"], answer["evaluator"]) == (
        "allow", ["alice-edits-d1"], "native")
    other = {**REQUEST, "principal": {"type": "User", "id": "bob"}}
    assert pdp.cedar.is_authorized(other, linked, ENTITIES)["decision"] == "deny"
    with pytest.raises(CedarInputError):
        base.link("no-such-template", "x", {"?principal": ALICE})


def test_the_scope_index_agrees_with_cedarpy_when_entities_have_many_ancestors() -> None:
    groups = [{"uid": {"type": "Group", "id": f"g{i}"}, "attrs": {}, "parents": []}
              for i in range(600)]
    folders = [{"uid": {"type": "Folder", "id": f"f{i}"}, "attrs": {}, "parents": []}
               for i in range(3)]
    user = {"uid": ALICE, "attrs": {}, "parents": [g["uid"] for g in groups]}
    doc = {"uid": {"type": "Doc", "id": "d1"}, "attrs": {},
           "parents": [f["uid"] for f in folders]}
    entities = [*groups, *folders, user, doc]
    text = "\n".join(
        f'permit (principal in Group::"g{i}", action, resource in Folder::"f{i % 5}");'
        for i in range(0, 1200, 7))
    policies = pdp.cedar.PolicySet(text)
    answer = pdp.cedar.is_authorized(REQUEST, policies, entities)
    reference = cedarpy.is_authorized(REQUEST, text, json.dumps(entities))
    assert answer["evaluator"] == "native" and answer["reasons"]
    assert sorted(answer["reasons"]) == sorted(reference.diagnostics.reasons)
