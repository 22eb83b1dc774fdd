"""Search over generated data: the results are exactly the candidates the evaluation API
permits, in id order, whatever the page size; membership is transitive; large sets page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pdp.entities import InMemoryEntityStore, StoredEntity
from pdp.service import PDPService
from tests.conftest import POLICIES, make_service
from tests.profiles import examples

USER_IDS = ["ann", "bo", "cy", "di", "ed", "fay", "gus"]
DEPARTMENTS = ["Sales", "Legal", "Finance"]
ACTIONS = ["view", "edit", "delete"]


@pytest.fixture(scope="module")
def service() -> Iterator[PDPService]:
    svc = make_service(POLICIES / "search", entity_store="memory")
    yield svc
    svc.close()


users = st.dictionaries(st.sampled_from(USER_IDS), st.tuples(
    st.sampled_from(["manager", "employee", "contractor"]), st.sampled_from(DEPARTMENTS)),
    min_size=1, max_size=len(USER_IDS))
records = st.dictionaries(st.integers(100, 140).map(str), st.tuples(
    st.sampled_from([*USER_IDS, "ghost"]), st.sampled_from(DEPARTMENTS)), min_size=1,
    max_size=25)


def load(service: PDPService, people: dict[str, Any], docs: dict[str, Any]) -> None:
    entities = [StoredEntity.build("user", u, {"role": r, "department": d})
                for u, (r, d) in people.items()]
    entities += [StoredEntity.build("record", i, {
        "title": "t", "department": d, "owner": {"__entity": {"type": "user", "id": o}}})
        for i, (o, d) in docs.items()]
    store = service.store
    assert isinstance(store, InMemoryEntityStore)
    store.replace_all(entities)


def walk(service: PDPService, kind: str, body: dict[str, Any], limit: int) -> list[Any]:
    found: list[Any] = []
    token: str | None = None
    for _ in range(100):
        page: dict[str, Any] = {"limit": limit, **({"token": token} if token else {})}
        answer = service.search(kind, {**body, "page": page})
        assert len(answer["results"]) <= limit
        found.extend(answer["results"])
        token = answer["page"]["next_token"]
        if not token:
            return found
    raise AssertionError("paging did not end")


@settings(max_examples=examples(80), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(people=users, docs=records, kind=st.sampled_from(["subject", "resource", "action"]),
       action=st.sampled_from(ACTIONS), limit=st.integers(1, 12), data=st.data())
def test_results_are_exactly_the_permitted_candidates_in_order_at_any_page_size(
        service: PDPService, people: dict[str, Any], docs: dict[str, Any], kind: str,
        action: str, limit: int, data: st.DataObject) -> None:
    load(service, people, docs)
    who = data.draw(st.sampled_from([*sorted(people), "nobody"]))  # mostly stored users
    what = data.draw(st.sampled_from([*sorted(docs), "999"]))
    subject = {"type": "user", "id": who}
    resource = {"type": "record", "id": what}
    if kind == "subject":
        body: dict[str, Any] = {"subject": {"type": "user"}, "action": {"name": action},
                                "resource": resource}
        candidates = sorted(people)
    elif kind == "resource":
        body = {"subject": subject, "action": {"name": action}, "resource": {"type": "record"}}
        candidates = sorted(docs)
    else:
        body = {"subject": subject, "resource": resource}
        candidates = sorted(ACTIONS)

    def permitted(candidate: str) -> bool:
        request = {"subject": subject, "action": {"name": action}, "resource": resource}
        if kind == "action":
            request["action"] = {"name": candidate}
        else:
            request[kind] = {"type": body[kind]["type"], "id": candidate}
        return bool(service.evaluations(request)["decision"])

    unpaged = service.search(kind, body)
    assert list(unpaged) == ["results"]
    ids = [r["name"] if kind == "action" else r["id"] for r in unpaged["results"]]
    assert ids == [c for c in candidates if permitted(c)]
    assert walk(service, kind, body, limit) == unpaged["results"]


@pytest.fixture(scope="module")
def groups_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PDPService]:
    directory: Path = tmp_path_factory.mktemp("groups")
    (directory / "groups.cedarschema").write_text("""
        entity group in [group];
        entity user in [group];
        entity folder in [folder];
        entity doc in [folder];
        action read appliesTo { principal: user, resource: doc };
    """)
    (directory / "groups.cedar").write_text("""
        // Readers (directly or through nested groups) read what is filed under "shared".
        @id("readers-read-shared")
        permit (principal in group::"readers", action == Action::"read",
                resource in folder::"shared");
    """)

    def entity(t: str, i: str, *parents: tuple[str, str]) -> dict[str, Any]:
        return {"uid": {"type": t, "id": i}, "attrs": {},
                "parents": [{"type": pt, "id": pi} for pt, pi in parents]}

    import json

    (directory / "entities.json").write_text(json.dumps([
        entity("group", "readers"), entity("group", "team", ("group", "readers")),
        entity("group", "squad", ("group", "team")), entity("group", "others"),
        entity("user", "u1", ("group", "squad")), entity("user", "u2", ("group", "readers")),
        entity("user", "u3", ("group", "others")),
        entity("folder", "shared"), entity("folder", "sub", ("folder", "shared")),
        entity("folder", "private"),
        entity("doc", "d1", ("folder", "sub")), entity("doc", "d2", ("folder", "shared")),
        entity("doc", "d3", ("folder", "private")),
    ]))
    svc = make_service(directory)
    yield svc
    svc.close()


def test_membership_is_transitive_through_nested_groups_and_folders(
        groups_service: PDPService) -> None:
    read = {"name": "read"}
    subjects = groups_service.search("subject", {
        "subject": {"type": "user"}, "action": read, "resource": {"type": "doc", "id": "d1"}})
    assert subjects == {"results": [{"type": "user", "id": "u1"}, {"type": "user", "id": "u2"}]}
    resources = groups_service.search("resource", {
        "subject": {"type": "user", "id": "u1"}, "action": read, "resource": {"type": "doc"}})
    assert resources == {"results": [{"type": "doc", "id": "d1"}, {"type": "doc", "id": "d2"}]}
    actions = groups_service.search("action", {
        "subject": {"type": "user", "id": "u1"}, "resource": {"type": "doc", "id": "d3"}})
    assert actions == {"results": []}


def test_a_large_result_set_is_cut_into_pages_even_when_no_page_was_asked_for(
        service: PDPService) -> None:
    load(service, {"ann": ("manager", "Sales")},
         {f"{i:05d}": ("bo", "Legal") for i in range(1, 1301)})
    body = {"subject": {"type": "user", "id": "ann"}, "action": {"name": "view"},
            "resource": {"type": "record"}}
    first = service.search("resource", body)
    assert list(first) == ["page", "results"] and len(first["results"]) == 1000
    assert first["page"]["next_token"]
    second = service.search("resource", {**body, "page": {"token": first["page"]["next_token"]}})
    assert second["page"]["next_token"] == "" and len(second["results"]) == 300
    assert second["results"][0]["id"] == "01001"


def test_a_namespace_is_hidden_from_search_results(tmp_path: Path) -> None:
    (tmp_path / "ns.cedarschema").write_text("""
        namespace Acme {
          entity user;
          entity doc { owner: user };
          action read appliesTo { principal: user, resource: doc };
        }
    """)
    (tmp_path / "ns.cedar").write_text("""
        // Owners read their documents.
        @id("owners-read")
        permit (principal, action == Acme::Action::"read", resource)
        when { resource.owner == principal };
    """)
    (tmp_path / "entities.json").write_text("""[
        {"uid": {"type": "Acme::user", "id": "ann"}, "attrs": {}, "parents": []},
        {"uid": {"type": "Acme::doc", "id": "a"}, "parents": [],
         "attrs": {"owner": {"__entity": {"type": "Acme::user", "id": "ann"}}}},
        {"uid": {"type": "Acme::doc", "id": "b"}, "parents": [],
         "attrs": {"owner": {"__entity": {"type": "Acme::user", "id": "bo"}}}}]""")
    service = make_service(tmp_path, namespace="Acme")
    try:
        found = service.search("resource", {"subject": {"type": "user", "id": "ann"},
                                            "action": {"name": "read"},
                                            "resource": {"type": "doc"}})
        assert found == {"results": [{"type": "doc", "id": "a"}]}
        assert service.search("action", {"subject": {"type": "user", "id": "ann"},
                                          "resource": {"type": "doc", "id": "a"}}) == {
            "results": [{"name": "read"}]}
    finally:
        service.close()
