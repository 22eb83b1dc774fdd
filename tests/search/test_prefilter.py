"""The search prefilter (partial evaluation + residuals over candidates) never changes an
answer: with and without it, every search over generated data finds the same results, on a
policy set that uses every construct the residual compiler knows and some it does not."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pdp.engine import Translator
from pdp.entities import InMemoryEntityStore, StoredEntity
from pdp.search import PageTokens, Searcher, SearchKind, SearchOptions, parse_search
from pdp.search.prefilter import Prefilter
from pdp.service import PDPService
from tests.conftest import POLICIES, make_service
from tests.profiles import examples

SCHEMA = """
entity group in [group];
entity user in [group] {
  level: Long,
  tags: Set<String>,
  name: String,
  manager?: user,
};
entity folder in [folder];
entity doc in [folder] {
  owner: user,
  level: Long,
  labels: Set<String>,
  meta: { public: Bool, kind: String },
  title: String,
  reviewer?: user,
};
action read, write, admin appliesTo { principal: user, resource: doc };
"""

POLICY_TEXT = """
// Public documents are readable by anyone.
@id("public-read")
permit (principal, action == Action::"read", resource) when { resource.meta.public };

// Staff read what is filed under "shared" (nested groups and folders).
@id("staff-read-shared")
permit (principal in group::"staff", action == Action::"read", resource in folder::"shared");

// Owners and reviewers write.
@id("owner-or-reviewer-writes")
permit (principal, action == Action::"write", resource)
when { resource.owner == principal || (resource has reviewer && resource.reviewer == principal) };

// Clearance and a shared label give every action.
@id("cleared-and-labelled")
permit (principal, action, resource is doc)
when { resource.level <= principal.level && resource.labels.containsAny(principal.tags) };

// Admin: secrets need level 9, other documents must be drafts (a pattern).
@id("admin-secret-or-draft")
permit (principal, action == Action::"admin", resource)
when { if resource.meta.kind == "secret" then principal.level >= 9
       else resource.title like "draft*" };

// Managers of an owner read the owner's documents (an attribute of another entity).
@id("managers-read-reports")
permit (principal, action == Action::"read", resource)
when { resource.owner has manager && resource.owner.manager == principal };

// Frozen documents are never written.
@id("frozen-is-frozen")
forbid (principal, action == Action::"write", resource)
when { resource.labels.contains("frozen") };

// Sets, records and negation.
@id("exact-labels")
permit (principal, action == Action::"read", resource)
when { !(resource.labels == ["x", "y"]) && resource.meta == {public: false, kind: "memo"} };
"""

USERS = ["u1", "u2", "u3", "u4", "u5"]
DOCS = [f"d{i}" for i in range(12)]
TAGS = ["x", "y", "frozen", "z"]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PDPService]:
    directory: Path = tmp_path_factory.mktemp("constructs")
    (directory / "constructs.cedarschema").write_text(SCHEMA)
    (directory / "constructs.cedar").write_text(POLICY_TEXT)
    svc = make_service(directory, entity_store="memory")
    yield svc
    svc.close()


def ref(t: str, i: str) -> dict[str, Any]:
    return {"__entity": {"type": t, "id": i}}


users = st.fixed_dictionaries({u: st.fixed_dictionaries({
    "level": st.integers(0, 10), "tags": st.lists(st.sampled_from(TAGS), unique=True),
    "manager": st.none() | st.sampled_from(USERS),
    "group": st.sampled_from(["staff", "team", "others"])}) for u in USERS})
docs = st.dictionaries(st.sampled_from(DOCS), st.fixed_dictionaries({
    "owner": st.sampled_from([*USERS, "ghost"]), "level": st.integers(0, 10),
    "labels": st.lists(st.sampled_from(TAGS), unique=True), "public": st.booleans(),
    "kind": st.sampled_from(["secret", "memo", "note"]),
    "title": st.sampled_from(["draft one", "final", "drafty", "x"]),
    "reviewer": st.none() | st.sampled_from(USERS),
    "folder": st.sampled_from(["shared", "sub", "private"])}), min_size=1)


def load(service: PDPService, people: dict[str, Any], papers: dict[str, Any]) -> None:
    entities = [
        StoredEntity.build("group", "staff", {}),
        StoredEntity.build("group", "team", {}, (("group", "staff"),)),
        StoredEntity.build("group", "others", {}),
        StoredEntity.build("folder", "shared", {}),
        StoredEntity.build("folder", "sub", {}, (("folder", "shared"),)),
        StoredEntity.build("folder", "private", {}),
    ]
    for uid, u in people.items():
        attrs: dict[str, Any] = {"level": u["level"], "tags": u["tags"], "name": uid}
        if u["manager"]:
            attrs["manager"] = ref("user", u["manager"])
        entities.append(StoredEntity.build("user", uid, attrs, (("group", u["group"]),)))
    for did, d in papers.items():
        attrs = {"owner": ref("user", d["owner"]), "level": d["level"], "labels": d["labels"],
                 "meta": {"public": d["public"], "kind": d["kind"]}, "title": d["title"]}
        if d["reviewer"]:
            attrs["reviewer"] = ref("user", d["reviewer"])
        entities.append(StoredEntity.build("doc", did, attrs, (("folder", d["folder"]),)))
    store = service.store
    assert isinstance(store, InMemoryEntityStore)
    store.replace_all(entities)


def both(service: PDPService, kind: str, body: dict[str, Any]) -> tuple[Any, Any]:
    with_filter = Searcher(service.engine, PageTokens(), SearchOptions())
    without = Searcher(service.engine, PageTokens(), SearchOptions(prefilter=False))
    request = parse_search(SearchKind(kind), body, max_limit=1000)
    return (with_filter.search(request).results, without.search(request).results)


@settings(max_examples=examples(150), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(people=users, papers=docs, kind=st.sampled_from(["subject", "resource"]),
       action=st.sampled_from(["read", "write", "admin"]), data=st.data())
def test_searches_find_the_same_results_with_and_without_the_prefilter(
        service: PDPService, people: dict[str, Any], papers: dict[str, Any], kind: str,
        action: str, data: st.DataObject) -> None:
    load(service, people, papers)
    who = data.draw(st.sampled_from([*USERS, "nobody"]))
    what = data.draw(st.sampled_from([*sorted(papers), "missing"]))
    props = data.draw(st.none() | st.fixed_dictionaries({"level": st.integers(0, 10)}))
    if kind == "subject":
        body: dict[str, Any] = {"subject": {"type": "user"}, "action": {"name": action},
                                "resource": {"type": "doc", "id": what}}
        if props:
            body["resource"]["properties"] = props
    else:
        body = {"subject": {"type": "user", "id": who, **({"properties": props} if props
                                                          else {})},
                "action": {"name": action}, "resource": {"type": "doc"}}
    filtered, full = both(service, kind, body)
    assert filtered == full


def test_the_prefilter_drops_exactly_the_records_no_policy_permits() -> None:
    service = make_service(POLICIES / "search", entity_store="memory")
    compiled = service.engine.current()
    translator = Translator(compiled.schema_types)
    prefilter = Prefilter.build(compiled, service.store, translator, "resource",
                                parse_search(SearchKind.RESOURCE, {
                                    "subject": {"type": "user", "id": "bob"},
                                    "action": {"name": "delete"},
                                    "resource": {"type": "record"}}, max_limit=10).subject,
                                "delete", parse_search(SearchKind.RESOURCE, {
                                    "subject": {"type": "user", "id": "bob"},
                                    "action": {"name": "delete"},
                                    "resource": {"type": "record"}}, max_limit=10).resource,
                                None)
    assert prefilter is not None
    ids = [str(i) for i in range(101, 121)]
    kept = [i for i, keep in zip(ids, prefilter.keep(ids, "record"), strict=True) if keep]
    owners = {str(r["id"]): r["owner"] for r in json.loads(
        (POLICIES.parent / "tests" / "conformance" / "authzen" / "search" / "records.json")
        .read_text())}
    assert kept == [i for i in ids if owners[i] == "bob"]


def test_a_policy_that_may_permit_everything_leaves_nothing_to_filter(tmp_path: Path) -> None:
    (tmp_path / "open.cedar").write_text(
        '// Everyone reads everything.\n@id("all")\npermit (principal, action, resource);\n')
    service = make_service(tmp_path, entity_store="memory")
    compiled = service.engine.current()
    request = parse_search(SearchKind.RESOURCE, {
        "subject": {"type": "user", "id": "a"}, "action": {"name": "read"},
        "resource": {"type": "doc"}}, max_limit=10)
    assert Prefilter.build(compiled, service.store, Translator(None), "resource",
                           request.subject, "read", request.resource, None) is None
