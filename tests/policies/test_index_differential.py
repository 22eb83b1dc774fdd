"""The slice index against Cedar itself: for generated policy sets, entity graphs and
requests, evaluating a request against the slice the index selects gives exactly the
decision, determining policies and errors that cedarpy gives with the full set."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cedarpy
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pdp.policies.index import SliceIndex, TemplateLink, _scope_key
from tests.profiles import examples

Uid = tuple[str, str]

USERS = [("User", f"u{i}") for i in range(2)]
GROUPS = [("Group", f"g{i}") for i in range(3)]  # a group may be in a later group
DOCS = [("Doc", f"d{i}") for i in range(2)]
FOLDERS = [("Folder", f"f{i}") for i in range(2)]  # a folder may be in a later folder
ACTIONS = [("Action", f"a{i}") for i in range(2)]
ACTION_GROUPS = [("Action", f"ag{i}") for i in range(2)]
TYPES = ["User", "Group", "Doc", "Folder"]
EVERY_ENTITY = USERS + GROUPS + DOCS + FOLDERS

SETTINGS = settings(max_examples=examples(120), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def ref(uid: Uid) -> dict[str, str]:
    return {"type": uid[0], "id": uid[1]}


# -- policies ---------------------------------------------------------------------------------


def scope(pool: Sequence[Uid], slot: str | None = None) -> st.SearchStrategy[dict[str, Any]]:
    """A principal or resource constraint; with ``slot``, a template constraint on it."""
    if slot is not None:
        return st.one_of(
            st.just({"op": "==", "slot": slot}),
            st.just({"op": "in", "slot": slot}),
            st.sampled_from(TYPES).map(lambda t: {"op": "is", "entity_type": t,
                                                  "in": {"slot": slot}}),
        )
    targets = st.sampled_from([*pool, *GROUPS, *FOLDERS])
    return st.one_of(
        st.just({"op": "All"}),
        st.just({"op": "All"}),
        targets.map(lambda u: {"op": "==", "entity": ref(u)}),
        targets.map(lambda u: {"op": "in", "entity": ref(u)}),
        st.sampled_from(TYPES).map(lambda t: {"op": "is", "entity_type": t}),
        st.tuples(st.sampled_from(TYPES), targets).map(
            lambda x: {"op": "is", "entity_type": x[0], "in": {"entity": ref(x[1])}}),
    )


def action_scope() -> st.SearchStrategy[dict[str, Any]]:
    pool = st.sampled_from(ACTIONS + ACTION_GROUPS)
    return st.one_of(
        st.just({"op": "All"}),
        st.just({"op": "All"}),
        pool.map(lambda a: {"op": "==", "entity": ref(a)}),
        pool.map(lambda a: {"op": "in", "entity": ref(a)}),
        st.lists(pool, max_size=3).map(
            lambda xs: {"op": "in", "entities": [ref(a) for a in xs]}),
    )


def attr(var: str, name: str) -> dict[str, Any]:
    return {".": {"left": {"Var": var}, "attr": name}}


def expressions() -> st.SearchStrategy[dict[str, Any]]:
    entity = st.sampled_from(EVERY_ENTITY).map(lambda u: {"Value": {"__entity": ref(u)}})
    return st.one_of(
        st.just({"Value": True}),
        st.just({"Value": True}),
        st.integers(0, 2).map(lambda n: {">": {"left": attr("principal", "level"),
                                               "right": {"Value": n}}}),  # errors if absent
        st.just({"has": {"left": {"Var": "resource"}, "attr": "owner"}}),
        st.just({"==": {"left": attr("resource", "owner"), "right": {"Var": "principal"}}}),
        st.just({"in": {"left": {"Var": "principal"}, "right": attr("resource", "viewers")}}),
        entity.map(lambda e: {"in": {"left": {"Var": "principal"}, "right": e}}),
        entity.map(lambda e: {"in": {"left": e, "right": {"Var": "resource"}}}),
        st.just({"==": {"left": attr("context", "flag"), "right": {"Value": True}}}),
        entity.map(lambda e: {"==": {"left": {".": {"left": e, "attr": "level"}},
                                     "right": {"Value": 1}}}),
        st.just({"==": {"left": {".": {"left": attr("resource", "owner"), "attr": "level"}},
                        "right": {"Value": 1}}}),  # through a reference
        st.just({"in": {"left": attr("resource", "viewers"), "right": {"Var": "principal"}}}),
        st.just({"has": {"left": {"if-then-else": {
            "if": attr("context", "flag"), "then": {"Var": "principal"},
            "else": attr("resource", "owner")}}, "attr": "level"}}),  # not traceable
    )


def conditions() -> st.SearchStrategy[list[dict[str, Any]]]:
    return st.lists(st.fixed_dictionaries({
        "kind": st.sampled_from(["when", "unless"]), "body": expressions()}), max_size=2)


def policy(template_slots: tuple[bool, bool] = (False, False),
           ) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({
        "effect": st.sampled_from(["permit", "permit", "forbid"]),
        "principal": scope(USERS, "?principal" if template_slots[0] else None),
        "action": action_scope(),
        "resource": scope(DOCS, "?resource" if template_slots[1] else None),
        "conditions": conditions(),
    })


@dataclass(frozen=True)
class Info:
    id: str
    est: Mapping[str, Any]
    template: bool = False


@dataclass(frozen=True)
class PolicySetCase:
    infos: tuple[Info, ...]
    links: tuple[TemplateLink, ...]

    def document(self) -> dict[str, Any]:
        return {
            "staticPolicies": {p.id: p.est for p in self.infos if not p.template},
            "templates": {p.id: p.est for p in self.infos if p.template},
            "templateLinks": [
                {"templateId": link.template_id, "newId": link.new_id,
                 "values": {slot: ref(uid) for slot, uid in link.values.items()}}
                for link in self.links],
        }


@st.composite
def policy_sets(draw: st.DrawFn, max_policies: int = 8) -> PolicySetCase:
    statics = draw(st.lists(policy(), max_size=max_policies))
    infos = [Info(f"p{i}", est) for i, est in enumerate(statics)]
    links: list[TemplateLink] = []
    for t, slots in enumerate(draw(st.lists(
            st.sampled_from([(True, False), (False, True), (True, True)]), max_size=2))):
        tid = f"t{t}"
        infos.append(Info(tid, draw(policy(slots)), template=True))
        for n in range(draw(st.integers(0, 2))):
            values: dict[str, Uid] = {}
            if slots[0]:
                values["?principal"] = draw(st.sampled_from(USERS + GROUPS))
            if slots[1]:
                values["?resource"] = draw(st.sampled_from(DOCS + FOLDERS))
            links.append(TemplateLink(tid, f"{tid}-link{n}", values))
    return PolicySetCase(tuple(infos), tuple(links))


# -- entities and requests ------------------------------------------------------------------


@st.composite
def entity_graphs(draw: st.DrawFn, dense: bool = False) -> dict[Uid, dict[str, Any]]:
    """Cedar entity JSON by uid: an acyclic membership graph and attributes to read
    (``dense``: every entity that can have a parent has one)."""
    graph: dict[Uid, dict[str, Any]] = {}
    for uid in EVERY_ENTITY + ACTIONS + ACTION_GROUPS:
        if draw(st.integers(0, 3)) == 0 and uid not in ACTIONS:
            continue
        if uid[0] == "User" or uid[0] == "Group":
            later = [g for g in GROUPS if uid[0] == "User" or g[1] > uid[1]]
        elif uid[0] == "Doc" or uid[0] == "Folder":
            later = [f for f in FOLDERS if uid[0] == "Doc" or f[1] > uid[1]]
        else:
            later = ACTION_GROUPS if uid in ACTIONS else [
                g for g in ACTION_GROUPS if g[1] > uid[1]]
        parents = draw(st.lists(st.sampled_from(later), min_size=1 if dense else 0,
                                max_size=2, unique=True)) if later else []
        attrs: dict[str, Any] = {}
        if uid[0] in ("User", "Group") and draw(st.integers(0, 3)) > 0:
            attrs["level"] = draw(st.integers(0, 3))
        if uid[0] in ("Doc", "Folder"):
            if draw(st.booleans()):
                attrs["owner"] = {"__entity": ref(draw(st.sampled_from(USERS)))}
            if draw(st.booleans()):
                attrs["viewers"] = {"__entity": ref(draw(st.sampled_from(GROUPS)))}
        graph[uid] = {"uid": ref(uid), "attrs": attrs, "parents": [ref(p) for p in parents]}
    return graph


requests = st.tuples(
    st.sampled_from(USERS + GROUPS),
    st.sampled_from(ACTIONS + ACTION_GROUPS),
    st.sampled_from(DOCS + FOLDERS),
    st.booleans(),
)


def ancestors(uid: Uid, graph: Mapping[Uid, Mapping[str, Any]]) -> set[Uid]:
    seen: set[Uid] = set()
    stack = [uid]
    while stack:
        ent = graph.get(stack.pop())
        for p in (ent or {}).get("parents", ()):
            parent = (p["type"], p["id"])
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return seen


def cedar_request(principal: Uid, action: Uid, resource: Uid, flag: bool) -> dict[str, Any]:
    return {"principal": ref(principal), "action": ref(action), "resource": ref(resource),
            "context": {"flag": flag}}


def answer(result: cedarpy.AuthzResult) -> tuple[str, list[str], list[str]]:
    return (result.decision.value, sorted(result.diagnostics.reasons),
            sorted(result.diagnostics.errors))


def full_and_index(case: PolicySetCase) -> tuple[Any, SliceIndex]:
    full = cedarpy.PolicySet.from_json_str(orjson.dumps(case.document()).decode())
    return full, SliceIndex.build(full, case.infos, case.links)


def decide_with_slice(index: SliceIndex, graph: Mapping[Uid, Any], entities_json: str,
                      req: tuple[Uid, Uid, Uid, bool]) -> tuple[str, list[str], list[str]]:
    principal, action, resource, flag = req
    chosen = index.select(principal, ancestors(principal, graph), action,
                          ancestors(action, graph), resource, ancestors(resource, graph))
    if chosen is None:
        return ("Deny", [], [])
    return answer(cedarpy.is_authorized(cedar_request(*req), chosen.policy_set,
                                        entities_json))


def graph_json(graph: Mapping[Uid, Any]) -> str:
    return orjson.dumps(list(graph.values())).decode()


# -- tests ------------------------------------------------------------------------------------


@SETTINGS
@given(policy_sets(), entity_graphs(), st.lists(requests, min_size=1, max_size=4))
def test_a_request_evaluated_against_its_slice_matches_the_full_set(
        case: PolicySetCase, graph: dict[Uid, dict[str, Any]],
        reqs: list[tuple[Uid, Uid, Uid, bool]]) -> None:
    full, index = full_and_index(case)
    entities_json = graph_json(graph)
    for req in reqs:
        expected = answer(cedarpy.is_authorized(cedar_request(*req), full, entities_json))
        assert decide_with_slice(index, graph, entities_json, req) == expected, req


@settings(max_examples=examples(40), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(policy_sets(max_policies=20), entity_graphs(), requests)
def test_a_slice_holds_every_policy_whose_scope_matches_and_no_other(
        case: PolicySetCase, graph: dict[Uid, dict[str, Any]],
        req: tuple[Uid, Uid, Uid, bool]) -> None:
    """Compared with Cedar's own scope test: each policy alone, its conditions removed."""
    full, index = full_and_index(case)
    entities_json = graph_json(graph)
    principal, action, resource, _ = req
    chosen = index.select(principal, ancestors(principal, graph), action,
                          ancestors(action, graph), resource, ancestors(resource, graph))
    selected = set(chosen.policy_ids) if chosen is not None else set()
    by_id = {p.id: p for p in case.infos}
    scope_matches: set[str] = set()
    for pid, est, links in _concrete(case, by_id):
        alone = {**est, "effect": "permit", "conditions": []}
        doc: dict[str, Any]
        if links is None:
            doc = {"staticPolicies": {pid: alone}, "templates": {}, "templateLinks": []}
        else:
            doc = {"staticPolicies": {}, "templates": {links.template_id: alone},
                   "templateLinks": [{"templateId": links.template_id, "newId": pid,
                                      "values": {s: ref(u) for s, u in links.values.items()}}]}
        ps = cedarpy.PolicySet.from_json_str(orjson.dumps(doc).decode())
        if cedarpy.is_authorized(cedar_request(*req), ps, entities_json).allowed:
            scope_matches.add(pid)
    assert selected == scope_matches
    assert index.select(principal, ancestors(principal, graph), action,
                        ancestors(action, graph), resource,
                        ancestors(resource, graph)) is chosen  # memoised: same object


def _concrete(case: PolicySetCase, by_id: Mapping[str, Info],
              ) -> Iterable[tuple[str, Mapping[str, Any], TemplateLink | None]]:
    for p in case.infos:
        if not p.template:
            yield p.id, p.est, None
    for link in case.links:
        yield link.new_id, by_id[link.template_id].est, link


def test_an_unlinked_template_is_in_no_slice() -> None:
    template = Info("t", {"effect": "permit", "principal": {"op": "==", "slot": "?principal"},
                          "action": {"op": "All"}, "resource": {"op": "All"},
                          "conditions": []}, template=True)
    case = PolicySetCase((template,), ())
    _, index = full_and_index(case)
    assert index.select(USERS[0], (), ACTIONS[0], (), DOCS[0], ()) is None
    assert len(index) == 0


def test_a_constraint_the_index_does_not_know_matches_every_request() -> None:
    assert _scope_key({"op": "someday", "entity": ref(USERS[0])}, {}) == _scope_key(
        {"op": "All"}, {})
    assert _scope_key({"op": "==", "slot": "?principal"}, {}) == _scope_key({"op": "All"}, {})


def test_the_memo_of_built_slices_is_bounded() -> None:
    infos = [Info(f"p{i}", {"effect": "permit", "principal": {"op": "All"},
                            "action": {"op": "All"},
                            "resource": {"op": "==", "entity": ref(("Doc", f"d{i}"))},
                            "conditions": []}) for i in range(10)]
    index = SliceIndex.build(None, infos, cache_size=4)
    for i in range(10):
        chosen = index.select(USERS[0], (), ACTIONS[0], (), ("Doc", f"d{i}"), ())
        assert chosen is not None and chosen.policy_ids == (f"p{i}",)
    assert index.memo_size() == 4


def test_a_slice_lists_the_entities_its_conditions_name() -> None:
    bob = {"Value": {"__entity": ref(("User", "bob"))}}
    info = Info("p", {"effect": "permit", "principal": {"op": "All"}, "action": {"op": "All"},
                      "resource": {"op": "All"}, "conditions": [
                          {"kind": "when", "body": {"==": {"left": {".": {
                              "left": bob, "attr": "level"}}, "right": {"Value": 1}}}}]})
    index = SliceIndex.build(None, [info])
    chosen = index.select(USERS[0], (), ACTIONS[0], (), DOCS[0], ())
    assert chosen is not None and chosen.literals == (("User", "bob"),)
    assert index.attributes == frozenset({"level"})
