"""The engine's entity slice, policy slices, batching, decision cache and counters."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from pdp.authzen.model import Action, Decision, Entity, EvaluationRequest
from pdp.engine import Engine, EngineOptions
from pdp.entities import InMemoryEntityStore, StoredEntity
from pdp.policies.compiled import compile_directory
from pdp.policies.holder import PolicyHolder


def ref(t: str, i: str) -> dict[str, Any]:
    return {"__entity": {"type": t, "id": i}}


def ent(t: str, i: str, attrs: Mapping[str, Any] | None = None,
        parents: Sequence[tuple[str, str]] = ()) -> StoredEntity:
    return StoredEntity.build(t, i, dict(attrs or {}), tuple(parents))


def make_engine(tmp_path: Path, policies: str, entities: Iterable[StoredEntity] = (),
                schema: str | None = None, **options: Any) -> Engine:
    (tmp_path / "p.cedar").write_text(policies)
    if schema is not None:
        (tmp_path / "s.cedarschema").write_text(schema)
    return Engine(PolicyHolder(compile_directory(tmp_path)), InMemoryEntityStore(entities),
                  EngineOptions(**options))


def request(subject: tuple[str, str], action: str, resource: tuple[str, str],
            context: Mapping[str, Any] | None = None,
            resource_properties: Mapping[str, Any] | None = None) -> EvaluationRequest:
    return EvaluationRequest(Entity(*subject), Action(action),
                             Entity(*resource, resource_properties), context)


ALLOW_ALL_WHEN = '@id("p")\npermit (principal, action, resource) when {{ {} }};\n'
# a context attribute that names a stored entity
DELEGATE_SCHEMA = """
entity User { level: Long };
entity Doc;
action read appliesTo { principal: User, resource: Doc, context: { delegate: User } };
"""


def test_an_entity_reached_two_ways_counts_at_its_shortest_distance(tmp_path: Path) -> None:
    # User::"x" is first found two references from the principal (the limit: its own
    # references are not followed), then as a literal of the chosen policy (distance 0),
    # which puts its `z` one reference away.
    entities = [
        ent("User", "p", {"a": ref("Thing", "a")}),
        ent("Thing", "a", {"b": ref("User", "x")}),
        ent("User", "x", {"z": ref("Thing", "z")}),
        ent("Thing", "z", {"ok": True}),
    ]
    engine = make_engine(tmp_path, ALLOW_ALL_WHEN.format(
        'principal.a.b has z && User::"x".z.ok'), entities, entity_depth=2)
    decision = engine.decide([request(("User", "p"), "read", ("Doc", "d"))])[0]
    assert decision.allowed, decision


def test_only_what_the_policies_can_read_reaches_cedar(tmp_path: Path) -> None:
    # `owner` is compared, never dereferenced: the owner is not fetched. The groups are
    # ancestors only; the one without parents of its own is left out (its membership is
    # in the principal's parent list).
    entities = [
        ent("User", "p", {"dept": "x"}, [("Group", "g1"), ("Group", "leaf")]),
        ent("Group", "g1", {"name": "one"}, [("Group", "top")]),
        ent("Group", "leaf", {"name": "leaf"}),
        ent("Group", "top", {}),
        ent("Doc", "d", {"owner": ref("User", "o"), "folder": ref("Folder", "f")}),
        ent("User", "o", {"dept": "x"}),
        ent("Folder", "f", {}),
    ]
    engine = make_engine(tmp_path, ALLOW_ALL_WHEN.format(
        'resource.owner != principal && principal in Group::"top" && principal.dept == "x"'),
        entities)
    req = request(("User", "p"), "read", ("Doc", "d"))
    assert engine.decide([req])[0].allowed
    given = {(e["uid"]["type"], e["uid"]["id"]) for e in engine.cedar_input(req).entities}
    assert given == {("User", "p"), ("Doc", "d"), ("Group", "g1")}


def test_a_reference_past_the_depth_limit_dangles_and_is_an_error(tmp_path: Path) -> None:
    entities = [
        ent("User", "p", {"a": ref("Thing", "a")}),
        ent("Thing", "a", {"b": ref("Thing", "b")}),
        ent("Thing", "b", {"ok": True}),
    ]
    engine = make_engine(tmp_path, ALLOW_ALL_WHEN.format("principal.a.b.ok"), entities,
                         entity_depth=1)
    decision = engine.decide([request(("User", "p"), "read", ("Doc", "d"))])[0]
    assert not decision.allowed and decision.outcome == "error" and decision.errors


def test_ancestors_are_complete_whatever_the_depth(tmp_path: Path) -> None:
    entities = [ent("User", "p", {}, [("Group", "g1")]), ent("Group", "g1", {}, [("Group", "g2")]),
                ent("Group", "g2", {}, [("Group", "g3")])]
    engine = make_engine(
        tmp_path, '@id("p")\npermit (principal in Group::"g3", action, resource);\n', entities,
        entity_depth=0)
    assert engine.decide([request(("User", "p"), "read", ("Doc", "d"))])[0].allowed


def test_entities_named_in_a_condition_reach_cedar(tmp_path: Path) -> None:
    entities = [ent("User", "boss", {"on_duty": True}), ent("Team", "a", {}, [("Team", "b")])]
    engine = make_engine(
        tmp_path, ALLOW_ALL_WHEN.format('User::"boss".on_duty && Team::"a" in Team::"b"'),
        entities, entity_depth=0)
    assert engine.decide([request(("User", "p"), "read", ("Doc", "d"))])[0].allowed


def test_entities_the_context_references_reach_cedar(tmp_path: Path) -> None:
    engine = make_engine(
        tmp_path, ALLOW_ALL_WHEN.format("context.delegate.level > 2"),
        [ent("User", "d", {"level": 3}), ent("User", "p", {"level": 0})],
        schema=DELEGATE_SCHEMA)
    ctx = {"delegate": {"type": "User", "id": "d"}}
    assert engine.decide([request(("User", "p"), "read", ("Doc", "x"), ctx)])[0].allowed


def test_a_schema_action_group_matches_its_members(tmp_path: Path) -> None:
    schema = """
entity User;
entity Doc;
action read appliesTo { principal: User, resource: Doc };
action view in [read] appliesTo { principal: User, resource: Doc };
action edit appliesTo { principal: User, resource: Doc };
"""
    engine = make_engine(
        tmp_path, '@id("readers")\npermit (principal, action in Action::"read", resource);\n',
        schema=schema)
    decisions = engine.decide([request(("User", "p"), name, ("Doc", "d"))
                               for name in ("view", "read", "edit")])
    assert [d.allowed for d in decisions] == [True, True, False]
    assert decisions[0].reasons == ("readers",)


def test_a_request_no_policy_scope_matches_is_denied_without_calling_cedar(
        tmp_path: Path) -> None:
    engine = make_engine(
        tmp_path, '@id("p")\npermit (principal, action == Action::"read", resource);\n')
    decision = engine.decide([request(("User", "p"), "write", ("Doc", "d"))])[0]
    assert decision == Decision(False, "no_permit")


def test_a_batch_decides_every_item_as_it_would_alone(tmp_path: Path) -> None:
    # Alone, the first request cannot see User::"boss" (two references away, limit 1); the
    # second request has it as its principal. In one Cedar call the first would see it.
    entities = [
        ent("Doc", "d", {"owner": ref("User", "o")}),
        ent("User", "o", {"boss": ref("User", "boss")}),
        ent("User", "boss", {"ok": True, "boss": ref("User", "boss")}),
    ]
    engine = make_engine(tmp_path, ALLOW_ALL_WHEN.format("resource.owner.boss.ok"), entities,
                         entity_depth=1)
    first = request(("User", "x"), "read", ("Doc", "d"))
    second = request(("User", "boss"), "read", ("Doc", "d"))
    alone = [engine.decide([first])[0], engine.decide([second])[0]]
    assert engine.decide([first, second]) == alone
    assert engine.decide([second, first]) == alone[::-1]
    assert not alone[0].allowed


def test_reasons_are_sorted_whatever_order_cedar_reports_them(tmp_path: Path) -> None:
    policies = "".join(f'@id("p{i:02}")\npermit (principal, action, resource);\n'
                       for i in range(20))
    engine = make_engine(tmp_path, policies)
    decision = engine.decide([request(("User", "p"), "read", ("Doc", "d"))])[0]
    assert decision.reasons == tuple(f"p{i:02}" for i in range(20))


# -- decision cache --------------------------------------------------------------------------

OWNER = ('@id("owner")\npermit (principal, action, resource) '
         "when { resource has owner && resource.owner == principal };\n")


def cached_engine(tmp_path: Path, **options: Any) -> tuple[Engine, InMemoryEntityStore]:
    engine = make_engine(tmp_path, OWNER, [ent("Doc", "d", {"owner": ref("User", "alice")})],
                         decision_cache_bytes=8_000, **options)
    assert isinstance(engine.store, InMemoryEntityStore)
    return engine, engine.store


def test_a_repeated_request_is_answered_from_the_cache(tmp_path: Path) -> None:
    engine, _ = cached_engine(tmp_path)
    req = request(("User", "alice"), "read", ("Doc", "d"))
    first = engine.decide([req])
    assert engine.decide([req]) == first and first[0].allowed
    assert engine.cache is not None
    assert (engine.cache.hits, engine.cache.misses) == (1, 1)


def test_an_entity_change_invalidates_cached_decisions(tmp_path: Path) -> None:
    engine, store = cached_engine(tmp_path)
    req = request(("User", "alice"), "read", ("Doc", "d"))
    assert engine.decide([req])[0].allowed
    store.put_many([ent("Doc", "d", {"owner": ref("User", "bob")})])
    assert not engine.decide([req])[0].allowed
    assert engine.cache is not None and engine.cache.hits == 0


def test_a_policy_swap_invalidates_cached_decisions(tmp_path: Path) -> None:
    holder = PolicyHolder(compile_directory(_write(tmp_path / "a", OWNER)))
    engine = Engine(holder, InMemoryEntityStore([ent("Doc", "d", {"owner": ref("User", "a")})]),
                    EngineOptions(decision_cache_bytes=8_000))
    req = request(("User", "a"), "read", ("Doc", "d"))
    assert engine.decide([req])[0].allowed
    holder.swap(compile_directory(_write(tmp_path / "b", '@id("none")\nforbid (principal, '
                                                         "action, resource);\n")))
    decision = engine.decide([req])[0]
    assert decision.outcome == "forbid" and decision.reasons == ("none",)


def _write(directory: Path, text: str) -> Path:
    directory.mkdir()
    (directory / "p.cedar").write_text(text)
    return directory


def test_requests_differing_only_in_context_or_properties_are_different_keys(
        tmp_path: Path) -> None:
    engine = make_engine(tmp_path, ALLOW_ALL_WHEN.format(
        "context.hour < 18 && resource.level < 3"), decision_cache_bytes=8_000)
    base = request(("User", "a"), "read", ("Doc", "d"), {"hour": 9}, {"level": 1})
    late = request(("User", "a"), "read", ("Doc", "d"), {"hour": 20}, {"level": 1})
    secret = request(("User", "a"), "read", ("Doc", "d"), {"hour": 9}, {"level": 5})
    assert [d.allowed for d in engine.decide([base, late, secret])] == [True, False, False]
    assert [d.allowed for d in engine.decide([base, late, secret])] == [True, False, False]


class _UnknownVersionStore(InMemoryEntityStore):
    @property
    def version(self) -> int:  # a store that cannot tell when its data changes
        return None  # type: ignore[return-value]


def test_a_store_with_an_unknown_version_bypasses_the_cache(tmp_path: Path) -> None:
    (tmp_path / "p.cedar").write_text(OWNER)
    store = _UnknownVersionStore([ent("Doc", "d", {"owner": ref("User", "alice")})])
    engine = Engine(PolicyHolder(compile_directory(tmp_path)), store,
                    EngineOptions(decision_cache_bytes=8_000))
    req = request(("User", "alice"), "read", ("Doc", "d"))
    engine.decide([req])
    engine.decide([req])
    assert engine.cache is not None
    assert engine.cache.stats()["bypasses"] == 2 and engine.cache.hits == 0


def test_failed_evaluations_are_not_cached(tmp_path: Path) -> None:
    engine, _ = cached_engine(tmp_path)
    bad = request(("not a type", "x"), "read", ("Doc", "d"))
    assert engine.decide([bad])[0].error is not None
    assert engine.decide([bad])[0].error is not None
    assert engine.cache is not None and engine.cache.hits == 0 and len(engine.cache) == 0


def test_without_a_cache_size_there_is_no_cache(tmp_path: Path) -> None:
    assert make_engine(tmp_path, OWNER).cache is None


def test_decisions_are_counted_by_outcome_with_their_latency(tmp_path: Path) -> None:
    engine, _ = cached_engine(tmp_path)
    engine.decide([request(("User", "alice"), "read", ("Doc", "d")),
                   request(("User", "bob"), "read", ("Doc", "d")),
                   request(("bad type", "x"), "read", ("Doc", "d"))])
    stats = engine.stats
    assert stats.outcomes == {"permit": 1, "forbid": 0, "no_permit": 1, "error": 1,
                              "invalid": 0}
    assert stats.calls == 1 and sum(stats.latency_buckets) == 1 and stats.latency_sum_ns > 0


@pytest.mark.parametrize("depth", [0, 3])
def test_request_properties_never_override_stored_attributes(tmp_path: Path,
                                                             depth: int) -> None:
    engine = make_engine(tmp_path, ALLOW_ALL_WHEN.format('resource.owner == User::"mallory"'),
                         [ent("Doc", "d", {"owner": ref("User", "alice")})],
                         entity_depth=depth)
    claimed = request(("User", "mallory"), "read", ("Doc", "d"),
                      resource_properties={"owner": {"type": "User", "id": "mallory"}})
    assert not engine.decide([claimed])[0].allowed


def test_request_properties_hold_even_when_another_root_reaches_the_same_entity(
        tmp_path: Path) -> None:
    # The resource's owner is the principal: the resource's closure holds the stored
    # principal, the principal's own closure the stored one plus the request's properties
    # (`level`, which the PEP is trusted to supply for a stored entity).
    entities = [ent("User", "p", {"dept": "x"}), ent("Doc", "d", {"owner": ref("User", "p")})]
    engine = make_engine(tmp_path, ALLOW_ALL_WHEN.format(
        'principal.level == 5 && resource.owner.dept == "x"'), entities,
        trusted_properties=frozenset({"User.level"}))
    req = EvaluationRequest(Entity("User", "p", {"level": 5}), Action("read"),
                            Entity("Doc", "d"))
    for _ in range(3):  # cold, then from the memo of closures
        decision = engine.decide([req])[0]
        assert decision.allowed, decision


def test_an_entity_named_in_a_tag_is_in_the_slice_when_the_policies_read_tags(
        tmp_path: Path) -> None:
    # the manager is reachable only through a tag: were it left out of the slice, reading
    # its attribute would be an error and the forbid would be skipped (a permit)
    policies = ('@id("all")\npermit (principal, action, resource);\n'
                '@id("suspended-manager")\nforbid (principal, action, resource) when {\n'
                '  principal.hasTag("manager") && principal.getTag("manager").suspended };\n')
    tagged = StoredEntity.build("User", "ann", {}, (), {"manager": ref("User", "boss")})
    for suspended, allowed in ((True, False), (False, True)):
        directory = tmp_path / str(suspended)
        directory.mkdir()
        engine = make_engine(directory, policies,
                             [tagged, ent("User", "boss", {"suspended": suspended})])
        decision = engine.decide([request(("User", "ann"), "read", ("Doc", "d"))])[0]
        assert decision.allowed is allowed, decision
        assert decision.errors == ()
