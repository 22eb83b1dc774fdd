"""The whole engine against Cedar itself: entity slicing, the slice index and batching
together decide every generated request exactly as cedarpy does with the full policy set and
every entity."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cedarpy
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pdp.authzen.model import Action, Entity, EvaluationRequest
from pdp.engine import Engine, EngineOptions
from pdp.entities import InMemoryEntityStore, StoredEntity
from pdp.policies.compiled import compile_directory
from pdp.policies.holder import PolicyHolder
from tests.policies.test_index_differential import (
    Uid,
    answer,
    cedar_request,
    entity_graphs,
    policy,
    requests,
)

EVALUATORS = ["native", "cedarpy"]


def engine_for(policies: list[dict[str, Any]], graph: Mapping[Uid, Mapping[str, Any]],
               directory: Path, cache: int, evaluator: str = "native") -> Engine:
    doc = {"staticPolicies": {f"p{i}": {**est, "annotations": {"id": f"p{i}"}}
                              for i, est in enumerate(policies)},
           "templates": {}, "templateLinks": []}
    (directory / "policies.cedar").write_text(
        cedarpy.policies_from_json_str(orjson.dumps(doc).decode()) if policies else
        '@id("never")\nforbid (principal, action in [], resource);\n')
    holder = PolicyHolder(compile_directory(directory))
    store = InMemoryEntityStore(StoredEntity.from_cedar_json(e) for e in graph.values())
    return Engine(holder, store, EngineOptions(entity_depth=4, decision_cache_size=cache,
                                               evaluator=evaluator))


def authzen(req: tuple[Uid, Uid, Uid, bool], level: int | None = None) -> EvaluationRequest:
    principal, action, resource, flag = req
    properties = None if level is None else {"level": level}
    return EvaluationRequest(Entity(*principal, properties), Action(action[1]),
                             Entity(*resource), {"flag": flag})


def with_properties(graph: Mapping[Uid, Mapping[str, Any]], uid: Uid,
                    level: int | None) -> list[Mapping[str, Any]]:
    """The entities Cedar sees when the request gives the principal a ``level`` (a stored
    entity is authoritative: the property describes only a principal the store lacks)."""
    if level is None or uid in graph:
        return list(graph.values())
    stored = graph.get(uid, {"uid": {"type": uid[0], "id": uid[1]}, "attrs": {},
                             "parents": []})
    merged = {**stored, "attrs": {"level": level, **stored["attrs"]}}
    return [*(e for u, e in graph.items() if u != uid), merged]


@pytest.mark.parametrize("evaluator", EVALUATORS)
@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(policy(), max_size=8), entity_graphs(),
       st.lists(requests, min_size=1, max_size=5), st.sampled_from([0, 16]),
       st.lists(st.none() | st.integers(0, 3), min_size=5, max_size=5))
def test_the_engine_decides_as_cedar_does_with_every_policy_and_entity(
        evaluator: str, policies: list[dict[str, Any]], graph: dict[Uid, dict[str, Any]],
        reqs: list[tuple[Uid, Uid, Uid, bool]], cache: int, levels: list[int | None]) -> None:
    check(policies, graph, reqs, cache, levels, evaluator)


@pytest.mark.parametrize("evaluator", EVALUATORS)
@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(policy(), max_size=8), entity_graphs(),
       st.lists(requests, min_size=2, max_size=24), st.sampled_from([0, 16]))
def test_larger_batches_decide_every_item_as_alone_and_as_cedar_does(
        evaluator: str, policies: list[dict[str, Any]], graph: dict[Uid, dict[str, Any]],
        reqs: list[tuple[Uid, Uid, Uid, bool]], cache: int) -> None:
    """Batches of stored entities only: their groups' parsed entity sets are reused when the
    same batch comes again (twice here), and every item still decides as alone."""
    check(policies, graph, reqs, cache, evaluator=evaluator)


def check(policies: list[dict[str, Any]], graph: dict[Uid, dict[str, Any]],
          reqs: list[tuple[Uid, Uid, Uid, bool]], cache: int,
          levels: list[int | None] | None = None, evaluator: str = "native") -> None:
    """Decide ``reqs`` (the principal of request i carrying ``{"level": levels[i]}`` unless
    None) in a batch, again, and one by one, against cedarpy on every entity."""
    levels = levels or [None] * len(reqs)
    with tempfile.TemporaryDirectory() as tmp:
        engine = engine_for(policies, graph, Path(tmp), cache, evaluator)
    full = engine.current().policy_set
    pairs = list(zip(reqs, levels, strict=False))
    forbids = {f"p{i}" for i, p in enumerate(policies) if p["effect"] == "forbid"}
    expected = [fail_closed(answer(cedarpy.is_authorized(cedar_request(*r), full, orjson.dumps(
        with_properties(graph, r[0], level)).decode())), forbids) for r, level in pairs]
    asked = [authzen(r, level) for r, level in pairs]
    batch = engine.decide(asked)
    again = engine.decide(asked)  # a union of slices, seen twice now
    reversed_ = engine.decide(asked[::-1])[::-1]  # the same groups, found in another order
    singles = [engine.decide([a])[0] for a in asked]  # from the cache, if on
    for want, *got_all in zip(expected, batch, again, reversed_, singles, strict=True):
        for got in got_all:
            assert ("Allow" if got.allowed else "Deny", list(got.reasons),
                    list(got.errors)) == want
    assert (engine.native is not None) is (evaluator == "native")
    assert engine.native is None or engine.native.fallbacks == 0


def fail_closed(want: tuple[str, list[str], list[str]], forbids: set[str],
                ) -> tuple[str, list[str], list[str]]:
    """Cedar's answer under the engine's default PDP_FORBID_ERRORS=deny: a permit stands only
    when no forbid policy errored."""
    decision, _, errors = want
    if decision == "Allow" and any(
            e.removeprefix("error while evaluating policy `").partition("`")[0] in forbids
            for e in errors):
        return ("Deny", [], errors)
    return want


def _when(text: str, pid: str) -> dict[str, Any]:
    """One policy from Cedar text (an unconstrained head, the given condition)."""
    doc = orjson.loads(cedarpy.policies_to_json_str(
        f"permit (principal, action, resource) when {{ {text} }};"))
    return dict(doc["staticPolicies"]["policy0"], annotations={"id": pid})


DATA_PATHS = [
    [_when("resource has owner && resource.owner has level && resource.owner.level > 0",
           "through-owner"),
     _when("resource has owner && resource.owner has level && principal has level && "
           "resource.owner.level == principal.level", "owner-level-is-mine"),
     {**_when("true", "deep-group"), "principal": {"op": "in", "entity": {
         "type": "Group", "id": "g2"}}},
     _when('resource has viewers && resource.viewers in Group::"g2"', "viewers-ancestry")],
    [_when('Group::"g0" in principal || principal in Group::"g1"', "literal-ancestry"),
     _when('User::"u1".level > 0', "literal-data")],
    [_when("(if context.flag then principal else resource.owner).level > 0", "untraceable"),
     _when("resource.owner == principal", "compared-only")],
]


@pytest.mark.parametrize("evaluator", EVALUATORS)
@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.sampled_from(DATA_PATHS), entity_graphs(dense=True),
       st.lists(requests, min_size=1, max_size=5),
       st.lists(st.integers(0, 3) | st.none(), min_size=5, max_size=5))
def test_what_the_policies_read_through_references_and_ancestors_reaches_cedar(
        evaluator: str, policies: list[dict[str, Any]], graph: dict[Uid, dict[str, Any]],
        reqs: list[tuple[Uid, Uid, Uid, bool]], levels: list[int | None]) -> None:
    check(policies, graph, reqs, 0, levels, evaluator)
