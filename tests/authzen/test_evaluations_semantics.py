"""The Access Evaluations API (AuthZEN 1.0 section 7) as properties over the Todo policies:
batches against single evaluations, the three semantics, defaults and per-item errors."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pdp.authzen import EvaluationRequest, parse_evaluation, parse_evaluations
from pdp.errors import RequestError
from tests.conftest import POLICIES, make_service
from tests.profiles import examples

SERVICE = make_service(POLICIES / "todo")
TODO_ENTITIES = json.loads((POLICIES / "todo" / "entities.json").read_text())
USER_IDS = [e["uid"]["id"] for e in TODO_ENTITIES]
EMAILS = [e["attrs"]["email"] for e in TODO_ENTITIES]
MORTY = next(e for e in TODO_ENTITIES if e["attrs"]["name"] == "Morty Smith")
BETH = next(e for e in TODO_ENTITIES if e["attrs"]["name"] == "Beth Smith")
ACTION_NAMES = ["can_read_user", "can_read_todos", "can_create_todo", "can_update_todo",
                "can_delete_todo", "can_teleport"]
KEYS = ("subject", "action", "resource", "context")

# -- strategies -------------------------------------------------------------------------------

GOOD_SUBJECTS = st.builds(
    lambda i, props: {"type": "user", "id": i, **({"properties": props} if props else {})},
    st.sampled_from([*USER_IDS, "newcomer"]),
    st.none() | st.fixed_dictionaries({}, optional={
        "roles": st.lists(st.sampled_from(["viewer", "editor", "admin", "evil_genius"]),
                          max_size=2, unique=True),
        "email": st.sampled_from(EMAILS)}))
BAD_SUBJECTS = st.sampled_from([
    {"type": "user"}, {"id": USER_IDS[0]}, {"type": "user", "id": 7}, "user",
    {"type": "not a type", "id": "x"}, {"type": "user", "id": "x", "properties": []}])
GOOD_ACTIONS = st.builds(lambda n: {"name": n}, st.sampled_from(ACTION_NAMES))
BAD_ACTIONS = st.sampled_from([{}, {"name": 5}, ["can_read_todos"], {"name": "x",
                                                                     "properties": 1}])
GOOD_RESOURCES = st.builds(
    lambda i, owner: {"type": "todo", "id": i,
                      **({"properties": {"ownerID": owner}} if owner else {})},
    st.sampled_from(["1", "2"]), st.none() | st.sampled_from(EMAILS))
BAD_RESOURCES = st.sampled_from([{"type": "todo"}, {"id": "1"}, {"type": 1, "id": "1"},
                                 {"type": "todo item", "id": "1"}])
CONTEXTS = st.sampled_from([{"ip": "10.0.0.1"}, {}, [1], "now"])


def _items(good_weight: int) -> st.SearchStrategy[dict[str, Any]]:
    """Evaluation bodies, mostly valid, sometimes with a bad part or a missing key."""
    def part(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> Any:
        return st.one_of(*([good] * good_weight), bad)

    return st.fixed_dictionaries(
        {"subject": part(GOOD_SUBJECTS, BAD_SUBJECTS),
         "action": part(GOOD_ACTIONS, BAD_ACTIONS),
         "resource": part(GOOD_RESOURCES, BAD_RESOURCES)},
        optional={"context": st.one_of(*([CONTEXTS] * good_weight), st.none())},
    ).flatmap(lambda item: st.sampled_from([None] * 6 + list(KEYS)).map(
        lambda drop: {k: v for k, v in item.items() if k != drop}))


ITEMS = _items(good_weight=4)
VALID_ITEMS = st.fixed_dictionaries(
    {"subject": GOOD_SUBJECTS, "action": GOOD_ACTIONS, "resource": GOOD_RESOURCES},
    optional={"context": st.just({"ip": "10.0.0.1"})})


def single(body: Any) -> dict[str, Any]:
    """What one evaluation gives for ``body``; a body that cannot be parsed is the deny with
    the error that a batch item carries (AuthZEN 1.0 section 7)."""
    try:
        return SERVICE.evaluation(parse_evaluation(body))
    except RequestError as exc:
        return {"decision": False, "context": {"error": {"status": 400,
                                                          "message": exc.message}}}


def batch(body: dict[str, Any], explain: bool = False) -> list[dict[str, Any]]:
    result = SERVICE.evaluations(body, explain=explain)
    assert set(result) == {"evaluations"}
    evaluations: list[dict[str, Any]] = result["evaluations"]
    return evaluations


def _is_permit(decision: dict[str, Any]) -> bool:
    return decision["decision"] is True


# -- execute_all ------------------------------------------------------------------------------


@settings(max_examples=examples(120), deadline=None)
@given(items=st.lists(ITEMS, min_size=1, max_size=8),
       options=st.sampled_from([None, {}, {"evaluations_semantic": "execute_all"},
                                {"evaluations_semantic": "execute_all", "other": 1}]))
def test_execute_all_over_n_items_equals_n_single_evaluations(
        items: list[dict[str, Any]], options: dict[str, Any] | None) -> None:
    body: dict[str, Any] = {"evaluations": items}
    if options is not None:
        body["options"] = options
    assert batch(body) == [single(item) for item in items]


@settings(max_examples=examples(40), deadline=None)
@given(items=st.lists(VALID_ITEMS, min_size=1, max_size=6))
def test_execute_all_with_explanations_equals_explained_single_evaluations(
        items: list[dict[str, Any]]) -> None:
    explained = [SERVICE.evaluation(parse_evaluation(i), explain=True) for i in items]
    assert batch({"evaluations": items}, explain=True) == explained


# -- the short-circuit semantics ---------------------------------------------------------------


def _prefix_through_first(decisions: list[dict[str, Any]], permit: bool) -> list[dict[str, Any]]:
    for i, d in enumerate(decisions):
        if _is_permit(d) is permit:
            return decisions[: i + 1]
    return decisions


@settings(max_examples=examples(120), deadline=None)
@given(items=st.lists(ITEMS, min_size=1, max_size=8))
def test_deny_on_first_deny_returns_the_prefix_through_the_first_deny(
        items: list[dict[str, Any]]) -> None:
    everything = [single(item) for item in items]
    got = batch({"evaluations": items, "options": {"evaluations_semantic": "deny_on_first_deny"}})
    assert got == _prefix_through_first(everything, permit=False)
    assert all(_is_permit(d) for d in got[:-1])
    if len(got) < len(items):
        assert not _is_permit(got[-1])


@settings(max_examples=examples(120), deadline=None)
@given(items=st.lists(ITEMS, min_size=1, max_size=8))
def test_permit_on_first_permit_returns_the_prefix_through_the_first_permit(
        items: list[dict[str, Any]]) -> None:
    everything = [single(item) for item in items]
    got = batch({"evaluations": items,
                 "options": {"evaluations_semantic": "permit_on_first_permit"}})
    assert got == _prefix_through_first(everything, permit=True)
    assert not any(_is_permit(d) for d in got[:-1])
    if len(got) < len(items):
        assert _is_permit(got[-1])


def test_the_semantics_cut_a_known_batch_where_the_specification_says() -> None:
    rick = USER_IDS[0]
    items = [
        {"subject": {"type": "user", "id": rick}, "action": {"name": "can_read_todos"},
         "resource": {"type": "todo", "id": "1"}},                          # permit
        {"subject": {"type": "user", "id": BETH["uid"]["id"]},
         "action": {"name": "can_create_todo"}, "resource": {"type": "todo", "id": "1"}},  # deny
        {"subject": {"type": "user", "id": rick}, "action": {"name": "can_delete_todo"},
         "resource": {"type": "todo", "id": "1"}},                          # permit
    ]
    decisions = [{"decision": True}, {"decision": False}, {"decision": True}]
    for semantic, expected in [("execute_all", decisions), ("deny_on_first_deny", decisions[:2]),
                               ("permit_on_first_permit", decisions[:1])]:
        body = {"evaluations": items, "options": {"evaluations_semantic": semantic}}
        assert batch(body) == expected, semantic
    reversed_body = {"evaluations": items[1:], "options": {
        "evaluations_semantic": "permit_on_first_permit"}}
    assert batch(reversed_body) == [{"decision": False}, {"decision": True}]


# -- defaults ----------------------------------------------------------------------------------


@settings(max_examples=examples(120), deadline=None)
@given(defaults=ITEMS, overrides=st.lists(ITEMS, min_size=1, max_size=6).flatmap(
    lambda items: st.tuples(*[st.sets(st.sampled_from(KEYS)) for _ in items]).map(
        lambda keep: [{k: v for k, v in item.items() if k in ks}
                      for item, ks in zip(items, keep, strict=True)])))
def test_an_item_key_replaces_the_default_key_as_a_whole(
        defaults: dict[str, Any], overrides: list[dict[str, Any]]) -> None:
    got = batch({**defaults, "evaluations": overrides})
    assert got == [single({**defaults, **item}) for item in overrides]


def test_an_item_resource_without_properties_does_not_inherit_the_defaults_properties() -> None:
    owner = MORTY["attrs"]["email"]
    body = {
        "subject": {"type": "user", "id": MORTY["uid"]["id"]},
        "action": {"name": "can_update_todo"},
        "resource": {"type": "todo", "id": "1", "properties": {"ownerID": owner}},
        "evaluations": [{}, {"resource": {"type": "todo", "id": "1"}},
                        {"resource": {"type": "todo", "id": "2",
                                      "properties": {"ownerID": owner}}}],
    }
    assert batch(body) == [{"decision": True}, {"decision": False}, {"decision": True}]


def test_an_item_subject_without_type_is_not_completed_from_the_default() -> None:
    body = {"subject": {"type": "user", "id": USER_IDS[0]}, "action": {"name": "can_read_todos"},
            "resource": {"type": "todo", "id": "1"},
            "evaluations": [{"subject": {"id": USER_IDS[1]}}, {}]}
    first, second = batch(body)
    assert first["decision"] is False
    assert "subject.type" in first["context"]["error"]["message"]
    assert second == {"decision": True}


def test_the_default_context_is_replaced_not_merged() -> None:
    body = {"subject": {"type": "user", "id": "u"}, "action": {"name": "read"},
            "resource": {"type": "doc", "id": "d"}, "context": {"a": 1},
            "evaluations": [{"context": {"b": 2}}, {}]}
    first, second = parse_evaluations(body).items
    assert isinstance(first, EvaluationRequest) and isinstance(second, EvaluationRequest)
    assert first.context == {"b": 2}
    assert second.context == {"a": 1}


# -- no evaluations: a single evaluation -------------------------------------------------------


def _outcome(call: Any) -> Any:
    try:
        return ("ok", call())
    except RequestError as exc:
        return ("error", type(exc).__name__, exc.field, exc.message)


@settings(max_examples=examples(150), deadline=None)
@given(body=ITEMS, evaluations=st.sampled_from(["absent", None, []]), explain=st.booleans())
def test_no_or_empty_evaluations_behaves_exactly_like_a_single_evaluation(
        body: dict[str, Any], evaluations: Any, explain: bool) -> None:
    request = dict(body)
    if evaluations != "absent":
        request["evaluations"] = evaluations
    expected = _outcome(lambda: SERVICE.evaluation(parse_evaluation(body), explain=explain))
    assert _outcome(lambda: SERVICE.evaluations(request, explain=explain)) == expected
    if expected[0] == "ok":
        assert set(expected[1]) <= {"decision", "context"}


# -- bad items ---------------------------------------------------------------------------------


@settings(max_examples=examples(100), deadline=None)
@given(items=st.lists(st.one_of(VALID_ITEMS, ITEMS, st.sampled_from([1, "x", None, []])),
                      min_size=1, max_size=8))
def test_a_bad_item_yields_exactly_its_own_error_and_the_rest_are_decided(
        items: list[Any]) -> None:
    got = batch({"evaluations": items})
    assert len(got) == len(items)
    for i, (item, decision) in enumerate(zip(items, got, strict=True)):
        if isinstance(item, dict):
            assert decision == single(item)
        else:
            assert decision == {"decision": False, "context": {"error": {
                "status": 400, "message": f"evaluations[{i}] must be an object"}}}


def test_a_bad_item_error_names_the_missing_field() -> None:
    good = {"subject": {"type": "user", "id": USER_IDS[0]}, "action": {"name": "can_read_todos"},
            "resource": {"type": "todo", "id": "1"}}
    got = batch({"evaluations": [good, {k: v for k, v in good.items() if k != "action"}, good]})
    assert got[0] == got[2] == {"decision": True}
    assert got[1]["decision"] is False
    assert got[1]["context"]["error"]["status"] == 400
    assert "action" in got[1]["context"]["error"]["message"]


@pytest.mark.parametrize("cut", [slice(0, 1), slice(0, 0), slice(0, 3)])  # fewer or more
def test_a_batch_fails_rather_than_answer_with_decisions_for_other_items(
        monkeypatch: pytest.MonkeyPatch, cut: slice) -> None:
    good = {"subject": {"type": "user", "id": USER_IDS[0]}, "action": {"name": "can_read_todos"},
            "resource": {"type": "todo", "id": "1"}}
    decide = SERVICE.engine.decide
    monkeypatch.setattr(SERVICE.engine, "decide",
                        lambda requests: (decide(requests) * 2)[cut])
    with pytest.raises(ValueError, match="decisions"):
        SERVICE.evaluations({"evaluations": [good, 1, good]})


# -- through HTTP ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def http(todo_server: str) -> Any:
    with httpx.Client(base_url=todo_server, timeout=10) as client:
        yield client


@settings(max_examples=examples(25), deadline=None)
@given(items=st.lists(ITEMS, min_size=1, max_size=5),
       semantic=st.sampled_from(["execute_all", "deny_on_first_deny",
                                 "permit_on_first_permit"]))
def test_batches_over_http_answer_as_the_service_does(
        http: httpx.Client, items: list[dict[str, Any]], semantic: str) -> None:
    body = {"evaluations": items, "options": {"evaluations_semantic": semantic}}
    response = http.post("/access/v1/evaluations", json=body)
    assert response.status_code == 200
    assert response.json() == SERVICE.evaluations(body)


@settings(max_examples=examples(15), deadline=None)
@given(body=VALID_ITEMS)
def test_an_evaluations_request_without_items_over_http_is_a_single_decision(
        http: httpx.Client, body: dict[str, Any]) -> None:
    single_response = http.post("/access/v1/evaluation", json=body)
    for variant in (body, {**body, "evaluations": []}):
        response = http.post("/access/v1/evaluations", json=variant)
        assert response.status_code == 200
        assert response.json() == single_response.json()
