"""The engine with the native evaluator (the default) and with ``PDP_EVALUATOR=cedarpy``:
the same decisions, the native share and any fallback reported in ``pdp check`` and
``/metrics``."""

from __future__ import annotations

import json

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from pdp.authzen.model import Action, Entity, EvaluationRequest
from pdp.cli import main
from pdp.engine.metrics import DecisionCollector
from pdp.engine.native import native_reason
from tests.conftest import POLICIES, make_service
from tests.engine.test_metrics import samples

TODO_ACTIONS = ("can_read_user", "can_read_todos", "can_create_todo", "can_update_todo",
                "can_delete_todo")


def todo_requests() -> list[EvaluationRequest]:
    users = json.loads((POLICIES / "todo" / "entities.json").read_text())
    emails = [u["attrs"]["email"] for u in users]
    # can_read_user applies to users (named by email), every other action to todos.
    return [EvaluationRequest(Entity("user", u["uid"]["id"]), Action(a),
                              Entity("user", owner) if a == "can_read_user"
                              else Entity("todo", "1", {"ownerID": owner}))
            for u in users for a in TODO_ACTIONS for owner in (emails[0], emails[1])]


def test_both_evaluators_decide_the_todo_scenario_alike_and_native_needs_no_fallback() -> None:
    native = make_service(POLICIES / "todo", entity_store="memory", decision_cache="off",
                          evaluator="native")
    cedar = make_service(POLICIES / "todo", entity_store="memory", decision_cache="off",
                         evaluator="cedarpy")
    asked = todo_requests()
    got = native.decide(asked)
    want = cedar.decide(asked)
    assert [(d.allowed, d.reasons, d.errors) for d in got] == [
        (d.allowed, d.reasons, d.errors) for d in want]
    assert any(d.allowed for d in got) and not all(d.allowed for d in got)
    assert native.engine.native is not None and cedar.engine.native is None
    assert not [d for d in got if d.outcome == "invalid"]  # every request fits the schema
    assert (native.engine.native.decided, native.engine.native.fallbacks) == (len(asked), 0)


def test_a_set_the_compiler_does_not_take_is_decided_by_cedarpy_and_says_why(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # Cedar's JSON form caps nesting below the compiler's own limit; lowered, the limit
    # makes the Todo set's conditions too deep for it
    monkeypatch.setattr("pdp.cedar.compiler._MAX_DEPTH", 2)
    reason = "expression nested too deeply"
    directory = POLICIES / "todo"
    service = make_service(directory, entity_store="memory", decision_cache="off",
                           evaluator="native")
    reference = make_service(directory, entity_store="memory", decision_cache="off",
                             evaluator="cedarpy")
    assert native_reason(service.policies.current) == reason
    asked = todo_requests()
    assert [(d.allowed, d.reasons) for d in service.decide(asked)] == [
        (d.allowed, d.reasons) for d in reference.decide(asked)]
    assert service.engine.native is not None
    assert service.engine.native.fallbacks > 0
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DecisionCollector(service.engine, service.policies))
    got = samples(generate_latest(registry).decode())
    assert got[("pdp_evaluations_total", (("evaluator", "cedarpy"),))] == \
        service.engine.native.fallbacks
    assert got[("pdp_policy_set_native", (("reason", reason),))] == 0
    assert main(["check", str(directory)]) == 0
    assert f"evaluated by cedarpy, not natively: {reason}" in capsys.readouterr().out
    assert main(["check", "--json", str(directory)]) == 0
    summary = json.loads(capsys.readouterr().out)["summary"]
    assert (summary["native"], summary["native_reason"]) == (False, reason)


def test_the_metrics_say_a_compiled_set_is_native() -> None:
    service = make_service(POLICIES / "todo", entity_store="memory", decision_cache="off",
                           evaluator="native")
    service.decide(todo_requests()[2:5])
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DecisionCollector(service.engine, service.policies))
    got = samples(generate_latest(registry).decode())
    assert got[("pdp_policy_set_native", (("reason", ""),))] == 1
    assert got[("pdp_evaluations_total", (("evaluator", "native"),))] == 3
