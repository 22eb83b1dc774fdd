"""JSON has one number type: however a client spells an integral number, it is a Long."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import POLICIES, make_service
from tests.gateway.support import RESOURCE, TOOLS, call
from tests.security.conftest import EVALUATION, TRANSFERS, client_of, service_on

pytestmark = pytest.mark.asyncio
NUMBER = "__NUMBER__"


def transfer(amount: str) -> bytes:
    return (b'{"subject": {"type": "user", "id": "bob"}, "action": {"name": "transfer"}, '
            b'"resource": {"type": "account", "id": "a1"}, "context": {"amount": '
            + amount.encode() + b"}}")


@pytest.mark.parametrize("amount", ["20000", "20000.0", "2e4", "2E4", "2e+4", "1e5",
                                    "20000.000", "200000e-1", '"20000"', "10000.5"])
async def test_an_amount_over_the_limit_is_denied_however_it_is_spelt(
        tmp_path: Path, amount: str) -> None:
    async with client_of(service_on(tmp_path, {"p.cedar": TRANSFERS})) as client:
        answer = await client.post(EVALUATION, content=transfer(amount),
                                   headers={"content-type": "application/json"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["decision"] is False, amount


@pytest.mark.parametrize("amount", ["5000", "5000.0", "5e3", "-0.0"])
async def test_an_integral_amount_under_the_limit_is_still_permitted(
        tmp_path: Path, amount: str) -> None:
    async with client_of(service_on(tmp_path, {"p.cedar": TRANSFERS})) as client:
        answer = await client.post(EVALUATION, content=transfer(amount),
                                   headers={"content-type": "application/json"})
    assert answer.json() == {"decision": True}, amount


@pytest.mark.parametrize("amount", ["10000.00001", "1e20", "-1e300", "9007199254740993.0"])
async def test_a_number_cedar_cannot_hold_exactly_is_a_400_naming_the_field(
        tmp_path: Path, amount: str) -> None:
    # (as every value Cedar cannot take: a deny whose error has status 400, so that one
    # item of a batch fails alone)
    async with client_of(service_on(tmp_path, {"p.cedar": TRANSFERS})) as client:
        answer = await client.post(EVALUATION, content=transfer(amount),
                                   headers={"content-type": "application/json"})
        result = answer.json()
        assert result["decision"] is False
        assert result["context"]["error"]["status"] == 400, result
        assert "context.amount" in result["context"]["error"]["message"]
        # and the service keeps serving
        ok = await client.post(EVALUATION, content=transfer("1"),
                               headers={"content-type": "application/json"})
        assert ok.json() == {"decision": True}


@pytest.mark.parametrize(("amount", "allowed"), [
    ("25000", False), ("25000.0", False), ("2.5e4", False), ("25000.000", False),
    ("5000", True), ("5000.0", True), ("5e3", True)])
async def test_a_coaz_transfer_over_the_limit_is_denied_however_it_is_spelt(
        amount: str, allowed: bool) -> None:
    # bob owns acc-bob but is no treasurer: above 10000 is high risk, which he may not send
    body = json.dumps({
        "message": call("transfer_funds", {"from_account": "acc-bob",
                                           "to_account": "acc-alice", "amount": NUMBER}),
        "tools": TOOLS, "claims": {"sub": "bob@example.com", "client_id": "agent-app-1"},
    }).replace(f'"{NUMBER}"', amount)
    service = make_service(POLICIES / "mcp", entity_store="memory", resource_id=RESOURCE)
    async with client_of(service) as client:
        answer = await client.post("/coaz/v1/authorize", content=body,
                                   headers={"content-type": "application/json"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["allow"] is allowed, answer.json()
