"""JSON has one number type: however a client spells an integral number, it is a Long."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.security.conftest import EVALUATION, TRANSFERS, client_of, service_on

pytestmark = pytest.mark.asyncio


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
