"""Native evaluation against cedarpy on random policies (every construct), random entity
graphs and random requests: the same decision, the same determining policies and the same
erroring policies."""

from __future__ import annotations

import json
import os
from typing import Any

import cedarpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pdp.cedar
from tests.cedar import strategies as cs

# CI runs a modest derandomized sample; CEDAR_DIFFERENTIAL_EXAMPLES=5000 searches deeper.
EXAMPLES = int(os.environ.get("CEDAR_DIFFERENTIAL_EXAMPLES", "150"))


def _cedarpy(request: dict[str, Any], text: str, entities: str) -> tuple[str, set[str],
                                                                          set[str]]:
    resp = cedarpy.is_authorized(request, text, entities)._authz_resp
    diag = resp["diagnostics"]
    erring = {e.split("`")[1] for e in diag["errors"]}
    return resp["decision"].lower(), set(diag["reason"]), erring


def _native(request: dict[str, Any], policies: pdp.cedar.PolicySet,
            entities: pdp.cedar.EntitySet) -> tuple[str, set[str], set[str]]:
    answer = pdp.cedar.is_authorized(request, policies, entities)
    assert answer["evaluator"] == "native", (policies.native_reason, entities.native_reason)
    return (answer["decision"], set(answer["reasons"]),
            {e["policy"] for e in answer["errors"]})


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(text=cs.policy_set(), entities=cs.entities(),
       requests=st.lists(cs.request(), min_size=1, max_size=4))
def test_native_and_cedarpy_agree_on_random_policies_entities_and_requests(
        text: str, entities: list[dict[str, Any]], requests: list[dict[str, Any]]) -> None:
    policies = pdp.cedar.PolicySet(text)
    entities_json = json.dumps(entities)
    built = pdp.cedar.EntitySet(entities_json)
    for request in requests:
        assert _native(request, policies, built) == _cedarpy(request, text, entities_json), (
            text, request)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(condition=cs.expr("bool", 3), entities=cs.entities(), request=cs.request())
def test_deep_conditions_agree_with_cedarpy(condition: str, entities: list[dict[str, Any]],
                                            request: dict[str, Any]) -> None:
    text = f"permit(principal, action, resource) when {{ {condition} }};\n" \
           f"forbid(principal, action, resource) unless {{ {condition} }};"
    entities_json = json.dumps(entities)
    got = _native(request, pdp.cedar.PolicySet(text), pdp.cedar.EntitySet(entities_json))
    assert got == _cedarpy(request, text, entities_json), condition


@settings(max_examples=max(10, EXAMPLES // 5), deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(policies=st.lists(cs.policy(depth=1), min_size=16, max_size=30), entities=cs.entities(),
       requests=st.lists(cs.request(), min_size=1, max_size=6))
def test_large_sets_evaluated_through_the_scope_index_agree_with_cedarpy(
        policies: list[str], entities: list[dict[str, Any]],
        requests: list[dict[str, Any]]) -> None:
    text = "\n".join(policies)
    compiled = pdp.cedar.PolicySet(text)
    entities_json = json.dumps(entities)
    built = pdp.cedar.EntitySet(entities_json)
    for request in requests:
        assert _native(request, compiled, built) == _cedarpy(request, text, entities_json), (
            text, request)


def _scope_only_policy() -> st.SearchStrategy[str]:
    return st.builds(lambda eff, p, a, r: f"{eff}({p}, {a}, {r});",
                     st.sampled_from(["permit", "forbid"]), cs.scope("principal"),
                     cs.scope("action"), cs.scope("resource"))


@settings(max_examples=max(10, EXAMPLES // 5), deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(policies=st.lists(st.one_of(_scope_only_policy(), cs.policy(depth=1)), min_size=16,
                         max_size=40),
       entities=cs.entities(), requests=st.lists(cs.request(), min_size=1, max_size=6))
def test_large_sets_of_mostly_scope_only_policies_agree_with_cedarpy(
        policies: list[str], entities: list[dict[str, Any]],
        requests: list[dict[str, Any]]) -> None:
    # a policy without a condition applies as soon as the scope index lists it
    text = "\n".join(policies)
    compiled = pdp.cedar.PolicySet(text)
    entities_json = json.dumps(entities)
    built = pdp.cedar.EntitySet(entities_json)
    for request in requests:
        assert _native(request, compiled, built) == _cedarpy(request, text, entities_json), (
            text, request)


def _answer(answer: pdp.cedar.Answer) -> tuple[bool, set[str], set[tuple[str, str]]]:
    return answer.allow, set(answer.reasons), set(answer.errors)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(text=cs.policy_set(), entities=cs.entities(), request=cs.request(),
       contexts=st.lists(cs.attributes(), min_size=1, max_size=4))
def test_a_set_bound_to_a_request_with_its_context_free_policies_folded_answers_alike(
        text: str, entities: list[dict[str, Any]], request: dict[str, Any],
        contexts: list[dict[str, Any]]) -> None:
    # the policies that do not read the context are evaluated once, when the set is bound;
    # every context must still get the answer of the whole set evaluated for it
    policies = pdp.cedar.PolicySet(text)
    store = pdp.cedar.EntitySet(json.dumps(entities))
    assert policies.native_reason is None and store.native_reason is None
    principal, action, resource, _ = pdp.cedar.native_request(request)
    folded = policies.bind(principal, action, resource, store.store, fold=True)
    for raw in contexts:
        context = pdp.cedar.native_request({**request, "context": raw})[3]
        expected = policies.evaluate(principal, action, resource, context, store.store)
        assert _answer(folded.evaluate(context)) == _answer(expected), (text, raw)
