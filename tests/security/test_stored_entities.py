"""Stored entities are authoritative: request properties cannot add or change an attribute of
an entity the store holds (evaluation, batch and search alike)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pdp.service import PDPService
from tests.conftest import POLICIES
from tests.security.conftest import EVALUATION, EVALUATIONS, client_of, request, service_on

BOB_CLAIMS_ADMIN = request(("user", "bob"), "delete", ("document", "handbook"),
                           subject_properties={"role": "admin"})
PUBLIC_CONTRACT = request(("user", "bob"), "view", ("document", "contract"),
                          resource_properties={"public": True})


def default_set(**settings: Any) -> PDPService:
    return service_on(POLICIES / "default", **settings)


@pytest.mark.asyncio
@pytest.mark.parametrize("body", [BOB_CLAIMS_ADMIN, PUBLIC_CONTRACT])
async def test_a_property_claimed_for_a_stored_entity_changes_nothing(
        body: dict[str, Any]) -> None:
    async with client_of(default_set()) as client:
        single = await client.post(EVALUATION, json=body)
        batch = await client.post(EVALUATIONS, json={"evaluations": [body, body]})
    assert single.json()["decision"] is False
    assert [e["decision"] for e in batch.json()["evaluations"]] == [False, False]


def test_a_claimed_role_finds_nothing_in_resource_search() -> None:
    found = default_set().search("resource", {
        "subject": {"type": "user", "id": "bob", "properties": {"role": "admin"}},
        "action": {"name": "delete"}, "resource": {"type": "document"}})
    assert found["results"] == [], found


def test_a_claimed_role_via_batch_defaults_changes_nothing() -> None:
    answer = default_set().evaluations({
        "subject": {"type": "user", "id": "bob", "properties": {"role": "admin"}},
        "action": {"name": "delete"},
        "evaluations": [{"resource": {"type": "document", "id": "handbook"}}]})
    assert answer["evaluations"][0]["decision"] is False


def test_an_entity_the_store_does_not_hold_still_takes_request_properties() -> None:
    answer = default_set().evaluations({"evaluations": [request(
        ("user", "bob"), "view", ("document", "new-draft"),
        resource_properties={"public": True})]})
    assert answer["evaluations"][0]["decision"] is True


def test_an_attribute_the_pep_is_trusted_with_may_be_supplied() -> None:
    service = default_set(trusted_properties=["document.public"])
    assert service.evaluations({"evaluations": [PUBLIC_CONTRACT]})["evaluations"][0][
        "decision"] is True
    # only that attribute: the role claim is still ignored
    assert service.evaluations({"evaluations": [BOB_CLAIMS_ADMIN]})["evaluations"][0][
        "decision"] is False


def test_a_schema_annotation_marks_an_attribute_the_pep_may_supply(tmp_path: Path) -> None:
    service = service_on(tmp_path, {
        "s.cedarschema": "entity user { @trusted posture?: String, role?: String };\n"
                         "action view appliesTo { principal: user, resource: user };\n",
        "p.cedar": '@id("healthy-devices")\npermit (principal, action, resource) when '
                   '{ principal has posture && principal.posture == "ok" };\n'
                   '@id("admins")\npermit (principal, action, resource) when '
                   '{ principal has role && principal.role == "admin" };\n',
        "entities.json": '[{"uid": {"type": "user", "id": "bob"}, "attrs": {}, "parents": []}]'})
    posture = request(("user", "bob"), "view", ("user", "alice"),
                      subject_properties={"posture": "ok"})
    role = request(("user", "bob"), "view", ("user", "alice"),
                   subject_properties={"role": "admin"})
    decisions = service.evaluations({"evaluations": [posture, role]})["evaluations"]
    assert [d["decision"] for d in decisions] == [True, False]
