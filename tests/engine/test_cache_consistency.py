"""The decision cache never serves a decision made under a superseded policy set or entity
version: a state machine of policy reloads (through the real reloader, ``entities.json``
included, rejected edits too), entity writes (here and through another replica of the SQLite
store) and evaluations, each decision compared with plain cedarpy on the current state."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import cedarpy
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from pdp.authzen.model import Action, Decision, Entity, EvaluationRequest
from pdp.engine import Engine, EngineOptions
from pdp.entities import InMemoryEntityStore, StoredEntity
from pdp.entities.database import sqlite_url
from pdp.entities.sql import SQLEntityStore
from pdp.policies.compiled import compile_directory
from pdp.policies.holder import PolicyHolder
from pdp.service.reload import Reloader
from tests.profiles import examples

Uid = tuple[str, str]

USERS = [("User", f"u{i}") for i in range(3)]
DOCS = [("Doc", f"d{i}") for i in range(2)]
GROUPS = [("Group", f"g{i}") for i in range(2)]  # file-managed: they come from entities.json
ACTIONS = ["read", "write"]

POLICIES = {
    "group-reads": 'permit (principal in Group::"g0", action == Action::"read", resource);',
    "owner-does-all": "permit (principal, action, resource) when "
                      "{ resource has owner && resource.owner == principal };",
    "public-is-readable": 'permit (principal, action == Action::"read", resource) when '
                          "{ resource has public && resource.public };",
    "level-writes": 'permit (principal, action == Action::"write", resource) when '
                    "{ principal has level && principal.level >= 2 };",
    "above-the-owner": "permit (principal, action, resource) when { resource has owner && "
                       "resource.owner has level && principal has level && "
                       "resource.owner.level < principal.level };",
    "blocked-never": "forbid (principal, action, resource) when "
                     "{ principal has blocked && principal.blocked };",
    "g1-never-writes": 'forbid (principal in Group::"g1", action == Action::"write", resource);',
}
NEVER = '@id("never")\nforbid (principal, action in [], resource);\n'


def ref(uid: Uid) -> dict[str, str]:
    return {"type": uid[0], "id": uid[1]}


def cedar_text(chosen: frozenset[str]) -> str:
    return "".join(f'@id("{name}")\n{POLICIES[name]}\n' for name in sorted(chosen)) or NEVER


policy_sets = st.frozensets(st.sampled_from(sorted(POLICIES)))
users = st.sampled_from(USERS)
groups_of = st.lists(st.sampled_from(GROUPS), unique=True, max_size=2)
user_docs = st.builds(
    lambda uid, level, blocked, parents: {
        "uid": ref(uid), "parents": [ref(g) for g in parents],
        "attrs": {k: v for k, v in (("level", level), ("blocked", blocked)) if v is not None}},
    users, st.none() | st.integers(0, 3), st.none() | st.booleans(), groups_of)
doc_docs = st.builds(
    lambda uid, owner, public: {
        "uid": ref(uid), "parents": [],
        "attrs": {k: v for k, v in (("owner", owner and {"__entity": ref(owner)}),
                                    ("public", public)) if v is not None}},
    st.sampled_from(DOCS), st.none() | users, st.none() | st.booleans())
group_files = st.lists(st.sampled_from(GROUPS), unique=True).map(
    lambda present: [{"uid": ref(g), "attrs": {},
                      "parents": [ref(("Group", "g1"))] if g == ("Group", "g0") else []}
                     for g in present])
EVERY_REQUEST = [(u, a, d) for u in USERS for a in ACTIONS for d in DOCS]


class CacheConsistency(RuleBasedStateMachine):
    """The model is the truth: the chosen policies and every entity the store should hold."""

    store_kind = "sqlite"

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory(prefix="pdp-cache-")
        self.directory = Path(self.tmp.name) / "policies"
        self.directory.mkdir()
        self.policies: frozenset[str] = frozenset()
        self.files: list[dict[str, Any]] = []  # entities.json
        self.database: dict[Uid, dict[str, Any]] = {}  # entities written through the API
        self.seen: dict[Uid, dict[str, Any]] = {}  # what this store has synced of them
        self.replica: SQLEntityStore | None = None

    @initialize(chosen=policy_sets, files=group_files)
    def start(self, chosen: frozenset[str], files: list[dict[str, Any]]) -> None:
        self.write_directory(chosen, files)
        holder = PolicyHolder(compile_directory(self.directory))
        if self.store_kind == "sqlite":
            url = sqlite_url(Path(self.tmp.name) / "entities.db")
            # nothing refreshes in the background: this store syncs when told to
            self.store: Any = SQLEntityStore.open(url, poll_interval=3600, max_staleness=3600)
            self.replica = SQLEntityStore.open(url, poll_interval=3600, max_staleness=3600)
        else:
            self.store = InMemoryEntityStore()
        self.store.replace_file_managed(holder.current.entities)
        self.policies, self.files = chosen, files
        self.engine = Engine(holder, self.store, EngineOptions(decision_cache_bytes=64 * 600))
        self.reloader = Reloader(holder, self.store, self.directory, watch=False, grace=0)

    def write_directory(self, chosen: frozenset[str], files: list[dict[str, Any]]) -> None:
        (self.directory / "policies.cedar").write_text(cedar_text(chosen))
        (self.directory / "entities.json").write_text(json.dumps(files))

    def teardown(self) -> None:
        for store in (getattr(self, "store", None), self.replica):
            if isinstance(store, SQLEntityStore):
                store.close()
        self.tmp.cleanup()

    # -- changes ------------------------------------------------------------------------

    @rule(chosen=policy_sets)
    def reload_policies(self, chosen: frozenset[str]) -> None:
        self.reload(chosen, self.files)

    @rule(files=group_files)
    def reload_the_entities_file(self, files: list[dict[str, Any]]) -> None:
        self.reload(self.policies, files)

    def reload(self, chosen: frozenset[str], files: list[dict[str, Any]]) -> None:
        self.write_directory(chosen, files)
        assert self.reloader.reload("test") is not None
        if files != self.files:  # entities.json is applied: a write, after which it syncs
            self.seen = dict(self.database)
        self.policies, self.files = chosen, files

    @rule()
    def a_broken_edit_is_rejected(self) -> None:
        (self.directory / "broken.cedar").write_text("permit (principal, action, resource")
        try:
            assert self.reloader.reload("test") is None  # still serving the previous set
        finally:
            (self.directory / "broken.cedar").unlink()

    @rule(doc=user_docs | doc_docs)
    def put_entity(self, doc: dict[str, Any]) -> None:
        self.store.put_many([StoredEntity.from_cedar_json(doc)])
        self.database[(doc["uid"]["type"], doc["uid"]["id"])] = doc
        self.seen = dict(self.database)  # a store sees its own writes (and syncs) at once

    @rule(uid=st.sampled_from(USERS + DOCS))
    def delete_entity(self, uid: Uid) -> None:
        self.store.delete_many([uid])
        if self.database.pop(uid, None) is not None:  # deleting nothing writes nothing
            self.seen = dict(self.database)

    @precondition(lambda self: self.replica is not None)
    @rule(doc=user_docs | doc_docs)
    def another_replica_writes(self, doc: dict[str, Any]) -> None:
        assert self.replica is not None
        self.replica.put_many([StoredEntity.from_cedar_json(doc)])
        self.database[(doc["uid"]["type"], doc["uid"]["id"])] = doc  # not seen here yet

    @precondition(lambda self: self.replica is not None)
    @rule()
    def this_replica_syncs(self) -> None:
        changed = self.store.sync()
        assert changed or self.seen == self.database
        self.seen = dict(self.database)

    # -- decisions ----------------------------------------------------------------------

    @rule()
    def evaluate_every_request(self) -> None:
        """Every request there is, so that any stale entry left in the cache is asked for."""
        batch = [EvaluationRequest(Entity(*p), Action(a), Entity(*r))
                 for p, a, r in EVERY_REQUEST]
        expected = [self.cedar(*asked) for asked in EVERY_REQUEST]
        assert [outcome(d) for d in self.engine.decide(batch)] == expected
        hits = self.engine.cache.hits  # type: ignore[union-attr]
        assert [outcome(d) for d in self.engine.decide(batch)] == expected  # now cached
        assert self.engine.cache.hits - hits == len(batch)  # type: ignore[union-attr]

    @rule(asked=st.sampled_from(EVERY_REQUEST))
    def evaluate_one(self, asked: tuple[Uid, str, Uid]) -> None:
        """One request alone: the engine's shortcut for a single cached decision."""
        principal, action, resource = asked
        [decision] = self.engine.decide(
            [EvaluationRequest(Entity(*principal), Action(action), Entity(*resource))])
        assert outcome(decision) == self.cedar(*asked)

    def cedar(self, principal: Uid, action: str, resource: Uid) -> tuple[Any, ...]:
        entities = [*self.files, *self.seen.values()]
        result = cedarpy.is_authorized(
            {"principal": f'{principal[0]}::"{principal[1]}"',
             "action": f'Action::"{action}"',
             "resource": f'{resource[0]}::"{resource[1]}"', "context": {}},
            cedar_text(self.policies), json.dumps(entities))
        ids = sorted(self.policies) or ["never"]  # cedarpy names them policy0, policy1, ...
        return (result.allowed, sorted(ids[int(r.removeprefix("policy"))]
                                       for r in result.diagnostics.reasons),
                sorted(result.diagnostics.errors))

    @invariant()
    def the_engine_serves_the_current_policy_set(self) -> None:
        if hasattr(self, "engine"):
            ids = {p.id for p in self.engine.current().policies}
            assert ids == (set(self.policies) or {"never"})


def outcome(decision: Decision) -> tuple[Any, ...]:
    return (decision.allowed, sorted(decision.reasons), sorted(decision.errors))


class InMemoryCacheConsistency(CacheConsistency):
    store_kind = "memory"


STATEFUL = settings(max_examples=examples(15), stateful_step_count=20, deadline=None)
TestTheCacheFollowsTheSQLiteStoreAndReloads = CacheConsistency.TestCase
TestTheCacheFollowsTheSQLiteStoreAndReloads.settings = STATEFUL
TestTheCacheFollowsTheInMemoryStoreAndReloads = InMemoryCacheConsistency.TestCase
TestTheCacheFollowsTheInMemoryStoreAndReloads.settings = STATEFUL
