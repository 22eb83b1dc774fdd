"""The scope index: the policies it lists are those whose `==`/`in` scopes hold, however
policies with an open action scope are held."""

from __future__ import annotations

import json
from typing import Any

import cedarpy
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pdp.cedar
from pdp.cedar.runtime import EMPTY
from pdp.cedar.scopes import ScopeIndex
from tests.cedar import strategies as cs


def _scope_only_policy() -> st.SearchStrategy[str]:
    return st.builds(lambda eff, p, a, r: f"{eff}({p}, {a}, {r});",
                     st.sampled_from(["permit", "forbid"]), cs.scope("principal"),
                     cs.scope("action"), cs.scope("resource"))


@settings(max_examples=20, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(policies=st.lists(_scope_only_policy(), min_size=1, max_size=30),
       entities=cs.entities(), requests=st.lists(cs.request(), min_size=1, max_size=6))
def test_open_action_policies_are_listed_the_same_whether_copied_per_action_or_not(
        policies: list[str], entities: list[dict[str, Any]],
        requests: list[dict[str, Any]]) -> None:
    text = "\n".join(policies)
    est = orjson.loads(cedarpy.policies_to_json_str(text))["staticPolicies"]
    scopes = [est[f"policy{i}"] for i in range(len(policies))]
    spread = ScopeIndex(scopes, [None] * len(scopes))
    apart = ScopeIndex(scopes, [None] * len(scopes), max_spread=0)
    anc = pdp.cedar.EntitySet(json.dumps(entities)).store.ancestors
    for request in requests:
        p, a, r, _ = pdp.cedar.native_request(request)
        sides = (p, a, r, anc.get(p, EMPTY), anc.get(a, EMPTY), anc.get(r, EMPTY))
        listed = list(spread.candidates(*sides))
        assert listed == list(apart.candidates(*sides))
        # every policy that applies (as Cedar says) is listed (`is` is left to the code)
        reference = cedarpy.is_authorized(request, text, json.dumps(entities))
        assert set(reference.diagnostics.reasons) <= {f"policy{i}" for i in listed}, (
            text, request)


def test_a_remembered_lookup_is_only_reused_for_the_same_entities_and_ancestors() -> None:
    text = ('permit(principal in Group::"g", action, resource);\n'
            'permit(principal == User::"u", action, resource in Folder::"f");\n'
            'permit(principal, action, resource);\n')
    est = orjson.loads(cedarpy.policies_to_json_str(text))["staticPolicies"]
    index = ScopeIndex([est[f"policy{i}"] for i in range(3)], [None] * 3)
    user, read, doc = (pdp.cedar.native_request(
        {"principal": {"type": "User", "id": "u"}, "action": {"type": "Action", "id": "r"},
         "resource": {"type": "Doc", "id": "d"}, "context": {}})[:3])
    in_group = frozenset({pdp.cedar.native_request(
        {"principal": {"type": "Group", "id": "g"}, "action": {"type": "Action", "id": "r"},
         "resource": {"type": "Folder", "id": "f"}, "context": {}})[0]})
    in_folder = frozenset({pdp.cedar.native_request(
        {"principal": {"type": "Folder", "id": "f"}, "action": {"type": "Action", "id": "r"},
         "resource": {"type": "Doc", "id": "d"}, "context": {}})[0]})
    alone = list(index.candidates(user, read, doc, EMPTY, EMPTY, EMPTY))
    assert alone == [2]
    assert list(index.candidates(user, read, doc, in_group, EMPTY, EMPTY)) == [0, 2]
    assert list(index.candidates(user, read, doc, EMPTY, EMPTY, in_folder)) == [1, 2]
    assert list(index.candidates(user, read, doc, in_group, EMPTY, in_folder)) == [0, 1, 2]
    assert list(index.candidates(user, read, doc, EMPTY, EMPTY, EMPTY)) == alone
