"""Plans: what preparing a request finds from its roots and request properties (the policy
slice and the entity closures) is kept for the generation and reused by the requests that
repeat them, never by one that differs, names an entity in its context, or comes after a
change of entities or policies."""

from __future__ import annotations

from pathlib import Path

import pytest

from pdp.authzen.model import EvaluationRequest
from pdp.engine import Engine, closures
from pdp.engine.prepare import Prepared, prepare
from pdp.entities import InMemoryEntityStore
from tests.engine.test_engine import (
    ALLOW_ALL_WHEN,
    DELEGATE_SCHEMA,
    ent,
    make_engine,
    request,
)

OWNER_READS = ALLOW_ALL_WHEN.format('principal.email == resource.owner')


def _prepared(engine: Engine, req: EvaluationRequest) -> Prepared | None:
    state = engine._version_state(engine.current())
    return prepare(0, req, state, engine._closures_for(state), engine.options.entity_depth)


def test_a_repeated_request_follows_the_plan_its_first_preparation_kept(
        tmp_path: Path) -> None:
    engine = make_engine(tmp_path, OWNER_READS, [ent("User", "u", {"email": "u@x"})])
    asked = request(("User", "u"), "read", ("Doc", "d"), resource_properties={"owner": "u@x"})
    first, again = _prepared(engine, asked), _prepared(engine, asked)
    assert first is not None and again is not None
    assert first.plan is not None and again.plan is first.plan
    assert [engine.decide([asked])[0].allowed for _ in range(3)] == [True, True, True]


def test_requests_differing_only_in_properties_follow_their_own_plans(tmp_path: Path) -> None:
    engine = make_engine(tmp_path, OWNER_READS, [ent("User", "u", {"email": "u@x"})])
    mine = request(("User", "u"), "read", ("Doc", "d"), resource_properties={"owner": "u@x"})
    theirs = request(("User", "u"), "read", ("Doc", "d"), resource_properties={"owner": "v@x"})
    assert [d.allowed for _ in range(3) for d in engine.decide([mine, theirs])] == \
        [True, False] * 3
    assert [engine.decide([r])[0].allowed for r in (theirs, mine, theirs)] == \
        [False, True, False]
    p_mine, p_theirs = _prepared(engine, mine), _prepared(engine, theirs)
    assert p_mine is not None and p_theirs is not None and p_mine.plan is not p_theirs.plan


def test_a_change_of_entities_starts_plans_afresh(tmp_path: Path) -> None:
    engine = make_engine(tmp_path, OWNER_READS, [ent("User", "u", {"email": "u@x"})])
    asked = request(("User", "u"), "read", ("Doc", "d"), resource_properties={"owner": "u@x"})
    assert engine.decide([asked])[0].allowed
    store = engine.store
    assert isinstance(store, InMemoryEntityStore)
    store.put_many([ent("User", "u", {"email": "w@x"})])
    assert not engine.decide([asked])[0].allowed
    store.put_many([ent("User", "u", {"email": "u@x"})])
    assert engine.decide([asked])[0].allowed


def test_a_request_whose_context_names_an_entity_is_prepared_afresh(tmp_path: Path) -> None:
    engine = make_engine(
        tmp_path, ALLOW_ALL_WHEN.format("context.delegate.level > 2"),
        [ent("User", "hi", {"level": 3}), ent("User", "lo", {"level": 0}),
         ent("User", "p", {"level": 0})], schema=DELEGATE_SCHEMA)

    def asked(delegate: str) -> EvaluationRequest:
        return request(("User", "p"), "read", ("Doc", "x"),
                       {"delegate": {"type": "User", "id": delegate}})

    assert [engine.decide([asked(d)])[0].allowed for d in ("hi", "lo", "hi", "lo")] == \
        [True, False, True, False]
    prepared, again = _prepared(engine, asked("hi")), _prepared(engine, asked("hi"))
    assert prepared is not None and again is not None
    assert again.plan is not prepared.plan  # each its own plan: none was kept


def test_a_request_no_policy_matches_keeps_a_plan_that_denies_it_again(tmp_path: Path) -> None:
    engine = make_engine(tmp_path, '@id("p")\npermit (principal, action == Action::"read", '
                                   'resource);\n')
    asked = request(("User", "u"), "write", ("Doc", "d"))
    assert [engine.decide([asked])[0].outcome for _ in range(2)] == ["no_permit"] * 2
    assert _prepared(engine, asked) is None
    assert engine.decide([request(("User", "u"), "read", ("Doc", "d"))])[0].allowed


def test_a_request_with_context_is_translated_whatever_plan_its_bare_twin_left(
        tmp_path: Path) -> None:
    engine = make_engine(tmp_path, ALLOW_ALL_WHEN.format("context has urgent"))
    bare = request(("User", "u"), "read", ("Doc", "d"))
    urgent = request(("User", "u"), "read", ("Doc", "d"), {"urgent": True})
    reserved = request(("User", "u"), "read", ("Doc", "d"), {"action_properties": {}})
    assert [engine.decide([r])[0].outcome for r in (bare, urgent, bare, reserved, urgent)] == \
        ["no_permit", "permit", "no_permit", "error", "permit"]
    prepared = _prepared(engine, bare)
    assert prepared is not None and prepared.context == {} and prepared.plan is not None
    with_context = _prepared(engine, urgent)
    assert with_context is not None and with_context.plan is prepared.plan
    assert with_context.context == {"urgent": True}


def test_a_context_following_a_plan_is_still_checked_in_full(tmp_path: Path) -> None:
    schema = """
entity User;
entity Doc;
action read appliesTo { principal: User, resource: Doc, context: { ticket: Long } };
"""
    engine = make_engine(tmp_path, ALLOW_ALL_WHEN.format("context.ticket > 5"), schema=schema)

    def asked(context: dict[str, object]) -> EvaluationRequest:
        return request(("User", "u"), "read", ("Doc", "d"), context)

    outcomes = [engine.decide([asked(c)])[0] for c in (
        {"ticket": 7}, {"ticket": 1}, {"ticket": "seven"}, {"ticket": 2**70},
        {"ticket": 7, "extra": {"__entity": {"type": "User", "id": "x"}}},
        {"ticket": 7, "action_properties": {}}, {"ticket": 9})]
    assert [d.outcome for d in outcomes] == [
        "permit", "no_permit", "invalid", "error", "error", "error", "permit"]
    assert [d.error is not None for d in outcomes] == [False, False, True, True, True, True,
                                                       False]


def test_a_request_the_schema_refuses_keeps_no_plan_and_is_refused_every_time(
        tmp_path: Path) -> None:
    schema = """
entity User;
entity Doc;
action read appliesTo { principal: User, resource: Doc, context: { ticket: Long } };
"""
    engine = make_engine(tmp_path, ALLOW_ALL_WHEN.format("true"), schema=schema)
    missing = request(("User", "u"), "read", ("Doc", "d"))
    with_ticket = request(("User", "u"), "read", ("Doc", "d"), {"ticket": 7})
    assert [engine.decide([r])[0].outcome for r in (missing, with_ticket, missing)] == \
        ["invalid", "permit", "invalid"]


def test_a_repeated_request_without_context_is_prepared_once_for_its_plan(
        tmp_path: Path) -> None:
    engine = make_engine(tmp_path, OWNER_READS, [ent("User", "u", {"email": "u@x"})])
    asked = request(("User", "u"), "read", ("Doc", "d"), resource_properties={"owner": "u@x"})
    assert _prepared(engine, asked) is not None  # the plan is made
    first = _prepared(engine, asked)  # and followed
    assert first is not None and _prepared(engine, asked) is first
    state = engine._version_state(engine.current())
    second = prepare(1, asked, state, engine._closures_for(state), engine.options.entity_depth)
    assert second is not None and second is not first and second.index == 1
    assert second.plan is first.plan
    assert [d.allowed for d in engine.decide([asked, asked])] == [True, True]


def test_a_recurring_request_keeps_its_plan_through_a_stream_of_requests_seen_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(closures, "_PLAN_MEMO", 16)
    engine = make_engine(tmp_path, OWNER_READS, [ent("User", "u", {"email": "u@x"})])
    recurring = request(("User", "u"), "read", ("Doc", "d"), resource_properties={"owner": "u@x"})
    assert engine.decide([recurring])[0].allowed
    first = _prepared(engine, recurring)
    assert first is not None
    for i in range(100):  # many more one-off requests than plans are kept, the recurring
        once = request(("User", "u"), "read", ("Doc", f"once-{i}"),  # one among them
                       resource_properties={"owner": "u@x"})
        assert [d.allowed for d in engine.decide([once])] == [True]
        again = _prepared(engine, recurring)
        assert again is not None and again.plan is first.plan
