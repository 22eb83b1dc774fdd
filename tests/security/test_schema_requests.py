"""With a schema, a request naming what the schema does not declare is denied with an
explanation, never evaluated against wildcard policies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pdp.service import PDPService
from tests.security.conftest import EVALUATION, client_of, request, service_on

SCHEMA = """\
entity role;
entity staff in [role];
entity record;
entity spaceship;
action read, write appliesTo { principal: staff, resource: record };
action transfer appliesTo {
  principal: staff, resource: record,
  context: { amount: Long, note?: String }
};
"""
POLICY = """\
@id("admins")
permit (principal in role::"admin", action, resource);

@id("big-transfers")
forbid (principal, action == Action::"transfer", resource) when { context.amount > 10000 };
"""
ENTITIES = """[
 {"uid": {"type": "role", "id": "admin"}, "attrs": {}, "parents": []},
 {"uid": {"type": "staff", "id": "ann"}, "attrs": {}, "parents": [{"type": "role", "id": "admin"}]}
]"""


def schema_service(tmp_path: Path) -> PDPService:
    return service_on(tmp_path, {"p.cedar": POLICY, "s.cedarschema": SCHEMA,
                                 "entities.json": ENTITIES})


def ann(action: str, resource: tuple[str, str] = ("record", "r1"),
        **kwargs: Any) -> dict[str, Any]:
    return request(("staff", "ann"), action, resource, **kwargs)


@pytest.mark.asyncio
@pytest.mark.parametrize(("body", "named"), [
    (ann("launch_missiles"), "launch_missiles"),
    (ann("raed"), "raed"),
    (ann("read", ("spaceship", "enterprise")), "spaceship"),
    (request(("role", "admin"), "read", ("record", "r1")), "role"),
    (ann("transfer", context={"amount": "20000"}), "context.amount"),
    (ann("transfer", context={"amount": 5, "note": 7}), "context.note"),
    (ann("transfer", context={}), "context.amount"),
])
async def test_a_request_the_schema_does_not_declare_is_denied_with_a_reason(
        tmp_path: Path, body: dict[str, Any], named: str) -> None:
    service = schema_service(tmp_path)
    async with client_of(service) as client:
        answer = await client.post(EVALUATION, json=body)
        assert answer.status_code == 200
        result = answer.json()
        assert result["decision"] is False, result
        assert named in str(result["context"]), result
        metrics = (await client.get("/metrics")).text
    assert 'pdp_decisions_total{outcome="invalid"} 1.0' in metrics, metrics


@pytest.mark.asyncio
async def test_declared_requests_are_decided_as_before(tmp_path: Path) -> None:
    async with client_of(schema_service(tmp_path)) as client:
        read = await client.post(EVALUATION, json=ann("read"))
        small = await client.post(EVALUATION, json=ann("transfer", context={
            "amount": 10, "undeclared": "dropped"}))
    assert read.json() == {"decision": True}
    assert small.json() == {"decision": True}


def test_in_a_batch_only_the_undeclared_item_is_denied(tmp_path: Path) -> None:
    service = schema_service(tmp_path)
    answer = service.evaluations({"evaluations": [ann("read"), ann("raed"), ann("write")]})
    assert [e["decision"] for e in answer["evaluations"]] == [True, False, True]
    assert "raed" in str(answer["evaluations"][1]["context"])
