"""Template links from ``*.links.json`` files (the Cedar CLI's template-linked format): checked
with ``file:line`` diagnostics, linked into the set, deciding exactly as cedarpy decides the
same templates and links, and located (link and template) in explanations."""

from __future__ import annotations

import itertools
import json
import tempfile
from pathlib import Path
from typing import Any

import cedarpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pdp.authzen.model import Action, Entity, EvaluationRequest
from pdp.cli import main
from pdp.engine import Engine
from pdp.entities import InMemoryEntityStore, StoredEntity
from pdp.errors import PolicyLoadError
from pdp.policies.compiled import compile_directory, locate
from pdp.policies.holder import PolicyHolder
from pdp.policies.index import SliceIndex
from pdp.policies.links import LinkInfo, LinkSet
from tests.conftest import POLICIES as POLICIES_DIR

SCHEMA = """\
entity Team;
entity User in [Team];
entity Folder;
entity Doc in [Folder];
action view appliesTo { principal: User, resource: [Doc, Folder] };
"""
POLICIES = """\
@id("share")
permit (principal == ?principal, action == Action::"view", resource in ?resource);

@id("team-share")
permit (principal in ?principal, action, resource == ?resource);

@id("static")
forbid (principal, action, resource) when { resource == Doc::"secret" };
"""
LINKS = [
    {"template_id": "share", "link_id": "alice-q3",
     "args": {"?principal": 'User::"alice"', "?resource": 'Folder::"q3"'}},
    {"template_id": "team-share", "link_id": "sales-plan",
     "args": {"?principal": 'Team::"sales"', "?resource": 'Doc::"plan"'}},
    {"template_id": "share", "link_id": "bob-secret",
     "args": {"?principal": {"type": "User", "id": "bob"}, "?resource": 'Doc::"secret"'}},
]
ENTITIES = [
    StoredEntity.build("User", "alice", {}, (("Team", "eng"),)),
    StoredEntity.build("User", "bob", {}, (("Team", "sales"),)),
    StoredEntity.build("Doc", "report", {}, (("Folder", "q3"),)),
    StoredEntity.build("Doc", "plan", {}, (("Folder", "q4"),)),
    StoredEntity.build("Doc", "secret", {}, (("Folder", "q3"),)),
]


def write_set(directory: Path, links: Any = LINKS, schema: bool = True) -> Path:
    (directory / "p.cedar").write_text(POLICIES)
    if schema:
        (directory / "s.cedarschema").write_text(SCHEMA)
    (directory / "shares.links.json").write_text(
        links if isinstance(links, str) else json.dumps(links, indent=2))
    return directory


def test_links_are_read_checked_and_linked(tmp_path: Path) -> None:
    compiled = compile_directory(write_set(tmp_path))
    assert [(x.link_id, x.template_id, x.file, x.line) for x in compiled.links] == [
        ("alice-q3", "share", "shares.links.json", 2),
        ("sales-plan", "team-share", "shares.links.json", 10),
        ("bob-secret", "share", "shares.links.json", 18)]
    assert compiled.links[2].values == {"?principal": ("User", "bob"),
                                        "?resource": ("Doc", "secret")}
    assert len(compiled.index) == 4  # the static policy and the three links


def test_decisions_with_links_are_cedars(tmp_path: Path) -> None:
    compiled = compile_directory(write_set(tmp_path))
    engine = Engine(PolicyHolder(compiled), InMemoryEntityStore(ENTITIES))
    cedar_set = cedarpy.PolicySet.from_str(POLICIES.replace(
        '@id("share")', '@id("share")').replace("\n\n", "\n")).with_linked_batch([
            {"template_id": x["template_id"], "new_id": x["link_id"], "values": x["args"]}
            for x in LINKS])
    entities = json.dumps([e.to_cedar_json() for e in ENTITIES])
    users = ["alice", "bob", "carol"]
    docs = [("Doc", "report"), ("Doc", "plan"), ("Doc", "secret"), ("Folder", "q3")]
    requests = [EvaluationRequest(Entity("User", u), Action("view"), Entity(*d))
                for u, d in itertools.product(users, docs)]
    ours = engine.decide(requests)
    for req, decision in zip(requests, ours, strict=True):
        expected = cedarpy.is_authorized(
            {"principal": f'User::"{req.subject.id}"', "action": 'Action::"view"',
             "resource": f'{req.resource.type}::"{req.resource.id}"', "context": {}},
            cedar_set, entities)
        assert decision.allowed == expected.allowed, req
    allowed = {(r.subject.id, r.resource.id): d for r, d in zip(requests, ours, strict=True)
               if d.allowed}
    assert set(allowed) == {("alice", "report"), ("alice", "q3"), ("bob", "plan")}
    assert allowed[("alice", "report")].reasons == ("alice-q3",)


def test_an_explanation_locates_the_link_and_its_template(tmp_path: Path) -> None:
    compiled = compile_directory(write_set(tmp_path))
    assert locate(compiled, "alice-q3") == {
        "id": "alice-q3", "link": {"file": "shares.links.json", "line": 2},
        "template": {"id": "share", "file": "p.cedar", "line": 1, "column": 1}}


BAD_LINKS = """\
[
  {"template_id": "nope", "link_id": "a", "args": {"?principal": "User::\\"x\\""}},
  {"template_id": "share", "link_id": "b", "args": {"?principal": "User::\\"x\\""}},
  {"template_id": "team-share", "link_id": "c",
   "args": {"?principal": "Team::\\"t\\"", "?resource": "Doc::\\"d\\"", "?other": "X::\\"y\\""}},
  {"template_id": "share", "link_id": "d",
   "args": {"?principal": "Robot::\\"r\\"", "?resource": "Doc::\\"d\\""}},
  {"template_id": "share", "link_id": "static",
   "args": {"?principal": "User::\\"x\\"", "?resource": "Doc::\\"d\\""}},
  {"template_id": "share", "link_id": "e",
   "args": {"?principal": "User::\\"x\\", action, resource); permit(principal",
            "?resource": "Doc::\\"d\\""}}
]
"""


def test_every_wrong_link_is_reported_at_its_line(tmp_path: Path) -> None:
    with pytest.raises(PolicyLoadError) as caught:
        compile_directory(write_set(tmp_path, BAD_LINKS))
    found = [(d.file, d.line, d.message) for d in caught.value.diagnostics]
    assert [(f, line) for f, line, _ in found] == [("shares.links.json", n)
                                                   for n in (2, 3, 4, 6, 8, 10)]
    messages = [m for _, _, m in found]
    assert "no template 'nope'" in messages[0]
    assert "slot ?resource of template share is not filled" in messages[1]
    assert "has no slot ?other" in messages[2]
    assert 'Robot::"r", of a type the schema does not declare' in messages[3]
    assert "already a policy's" in messages[4]
    assert "is not a Cedar entity uid" in messages[5]


def test_pdp_check_counts_the_links_of_a_good_set(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(write_set(tmp_path))]) == 0
    assert ", 3 template links, schema: yes" in capsys.readouterr().out
    assert main(["check", "--json", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out)["summary"]["links"] == 3


def test_pdp_check_reports_a_wrong_link_with_file_and_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_set(tmp_path, BAD_LINKS)
    assert main(["check", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path}/shares.links.json:2: link a: no template 'nope'" in err


def test_without_a_schema_any_entity_type_may_fill_a_slot(tmp_path: Path) -> None:
    compiled = compile_directory(write_set(tmp_path, [
        {"template_id": "share", "link_id": "r",
         "args": {"?principal": 'Robot::"r"', "?resource": 'Doc::"d"'}}], schema=False))
    assert [x.values["?principal"] for x in compiled.links] == [("Robot", "r")]


def test_pdp_test_decides_with_the_links_and_names_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_set(tmp_path)
    (tmp_path / "entities.json").write_text(json.dumps([e.to_cedar_json() for e in ENTITIES]))
    (tmp_path / "shares.test.yaml").write_text(
        "cases:\n"
        "  - name: alice sees the q3 report through her link\n"
        "    request: {subject: {type: User, id: alice}, action: {name: view},\n"
        "              resource: {type: Doc, id: report}}\n"
        "    decision: permit\n"
        "    policies: [alice-q3]\n"
        "  - name: carol has no link\n"
        "    request: {subject: {type: User, id: carol}, action: {name: view},\n"
        "              resource: {type: Doc, id: report}}\n"
        "    decision: deny\n")
    assert main(["test", str(tmp_path)]) == 0, capsys.readouterr()


INDEX_POLICIES = """\
@id("t1")
permit (principal == ?principal, action == Action::"view", resource in ?resource);
@id("t2")
permit (principal in ?principal, action in [Action::"view", Action::"edit"],
        resource == ?resource);
@id("s")
permit (principal, action == Action::"edit", resource in Folder::"f0");
"""
USERS = [("User", f"u{i}") for i in range(3)] + [("Team", "t0")]
TARGETS = [("Folder", "f0"), ("Folder", "f1"), ("Doc", "d0"), ("Doc", "d1")]
LINK_OPS = st.lists(st.tuples(st.booleans(), st.integers(0, 5), st.sampled_from(["t1", "t2"]),
                              st.sampled_from(USERS), st.sampled_from(TARGETS)), max_size=12)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(ops=LINK_OPS)
def test_an_index_changed_link_by_link_selects_as_one_built_from_scratch(
        ops: list[tuple[bool, int, str, tuple[str, str], tuple[str, str]]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "p.cedar").write_text(INDEX_POLICIES)
        compiled = compile_directory(tmp)
    index, live = compiled.index, {}
    for add, n, template, principal, target in ops:
        link_id = f"l{n}"
        if add:
            link = LinkInfo(link_id, template, {"?principal": principal, "?resource": target})
            live[link_id] = link
            index = index.linked([link])
        else:
            live.pop(link_id, None)
            index = index.linked(remove=[link_id])
    fresh = SliceIndex.build(compiled.policy_set, compiled.policies, live.values())
    assert len(index) == len(fresh)
    lineage = {("User", "u0"): (("Team", "t0"),), ("Doc", "d0"): (("Folder", "f0"),),
               ("Doc", "d1"): (("Folder", "f1"),)}
    for principal in USERS:
        for action in ("view", "edit"):
            for resource in TARGETS:
                got = [index.select(principal, lineage.get(principal, ()),
                                    ("Action", action), (), resource,
                                    lineage.get(resource, ())) for index in (index, fresh)]
                ids = [set(s.policy_ids) if s is not None else set() for s in got]
                assert ids[0] == ids[1], (principal, action, resource)


def test_a_link_set_says_what_changed_since_an_earlier_snapshot() -> None:
    a = LinkInfo("a", "t1", {"?principal": ("User", "u0"), "?resource": ("Folder", "f0")})
    b = LinkInfo("b", "t1", {"?principal": ("User", "u1"), "?resource": ("Folder", "f0")})
    first = LinkSet({}).changed([a], [])
    second = first.changed([b], [])
    third = second.changed([], ["a"])
    assert third.changed_since(first) == {"a", "b"}
    assert third.changed_since(third) == frozenset()
    assert dict(third.by_id) == {"b": b}
    assert third.replaced([a]).changed_since(third) is None  # a full reload: unknown
    long = LinkSet({})
    for i in range(LinkSet.LOG_SIZE + 1):
        long = long.changed([LinkInfo(f"x{i}", "t1", {})], [])
    assert long.changed_since(LinkSet({})) is None  # past the log: compare everything


DIFF_POLICIES = """\
@id("view-share")
permit (principal == ?principal, action == Action::"view", resource in ?resource);
@id("team-edit")
permit (principal in ?principal, action in [Action::"view", Action::"edit"],
        resource == ?resource) when { resource has owner && resource.owner != principal };
@id("block")
forbid (principal == ?principal, action, resource in ?resource);
@id("owners")
permit (principal, action, resource) when { resource has owner && resource.owner == principal };
"""
DIFF_ENTITIES = [
    StoredEntity.build("User", "u0", {}, (("Team", "t0"),)),
    StoredEntity.build("User", "u1", {}, (("Team", "t0"), ("Team", "t1"))),
    StoredEntity.build("User", "u2", {}, ()),
    StoredEntity.build("Team", "t1", {}, (("Team", "t0"),)),
    StoredEntity.build("Doc", "d0", {"owner": {"__entity": {"type": "User", "id": "u0"}}},
                       (("Folder", "f0"),)),
    StoredEntity.build("Doc", "d1", {"owner": {"__entity": {"type": "User", "id": "u2"}}},
                       (("Folder", "f1"),)),
    StoredEntity.build("Folder", "f1", {}, (("Folder", "f0"),)),
]
PRINCIPALS = [("User", "u0"), ("User", "u1"), ("User", "u2"), ("Team", "t0"), ("Team", "t1")]
RESOURCES = [("Doc", "d0"), ("Doc", "d1"), ("Folder", "f0"), ("Folder", "f1")]
DIFF_LINKS = st.lists(st.tuples(st.sampled_from(["view-share", "team-edit", "block"]),
                                st.sampled_from(PRINCIPALS), st.sampled_from(RESOURCES)),
                      max_size=6)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(links=DIFF_LINKS)
def test_a_set_with_generated_links_decides_as_cedarpy_does(
        links: list[tuple[str, tuple[str, str], tuple[str, str]]]) -> None:
    docs = [{"template_id": t, "link_id": f"link-{n}",
             "args": {"?principal": f'{p[0]}::"{p[1]}"', "?resource": f'{r[0]}::"{r[1]}"'}}
            for n, (t, p, r) in enumerate(links)]
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "p.cedar").write_text(DIFF_POLICIES)
        (Path(tmp) / "x.links.json").write_text(json.dumps(docs))
        compiled = compile_directory(tmp)
    engine = Engine(PolicyHolder(compiled), InMemoryEntityStore(DIFF_ENTITIES))
    cedar_set = cedarpy.PolicySet.from_str(DIFF_POLICIES)
    if docs:
        cedar_set = cedar_set.with_linked_batch([
            {"template_id": d["template_id"], "new_id": d["link_id"], "values": d["args"]}
            for d in docs])
    entities = json.dumps([e.to_cedar_json() for e in DIFF_ENTITIES])
    requests = [EvaluationRequest(Entity(*p), Action(a), Entity(*r))
                for p in PRINCIPALS for a in ("view", "edit") for r in RESOURCES]
    for req, ours in zip(requests, engine.decide(requests), strict=True):
        theirs = cedarpy.is_authorized(
            {"principal": f'{req.subject.type}::"{req.subject.id}"',
             "action": f'Action::"{req.action.name}"',
             "resource": f'{req.resource.type}::"{req.resource.id}"', "context": {}},
            cedar_set, entities)
        assert ours.allowed == theirs.allowed, req
        linked = {r for r in theirs.diagnostics.reasons if r.startswith("link-")}
        assert {r for r in ours.reasons if r.startswith("link-")} == linked, req


def test_a_link_whose_policy_the_schema_cannot_validate_is_reported_at_its_line(
        tmp_path: Path) -> None:
    # Team is declared, but no action takes a Team principal with `==`: Cedar's validator
    # refuses the linked policy, as `cedar validate` refuses it
    links = [LINKS[0], {"template_id": "share", "link_id": "team-views",
                        "args": {"?principal": 'Team::"sales"', "?resource": 'Folder::"q3"'}}]
    with pytest.raises(PolicyLoadError) as caught:
        compile_directory(write_set(tmp_path, links))
    [d] = caught.value.diagnostics
    assert (d.file, d.line) == ("shares.links.json", 10)
    assert d.message.startswith("link team-views: schema validation: ")
    assert "unable to find an applicable action" in d.message


@pytest.mark.parametrize("policy_set", ["links", "shipped"])
def test_the_full_document_is_what_reading_the_whole_sets_json_gives(
        tmp_path: Path, policy_set: str) -> None:
    directories = [write_set(tmp_path)] if policy_set == "links" else [
        p for p in sorted(POLICIES_DIR.iterdir()) if p.is_dir()]
    for directory in directories:
        index = compile_directory(directory).index
        whole, _, _ = index._json(set(range(len(index._entries))))  # a slice of every policy
        assert index.full_document() == json.loads(whole)
