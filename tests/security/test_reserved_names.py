"""The context key that carries action.properties, and Cedar's escapes, are reserved."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import POLICIES
from tests.security.conftest import EVALUATION, client_of, request, service_on

ALICE_DELETES = request(("user", "alice"), "delete", ("record", "record-1"))


@pytest.mark.asyncio
@pytest.mark.parametrize("body", [
    {**ALICE_DELETES, "context": {"action_properties": {"soft": True}}},
    {**ALICE_DELETES, "context": {"action_properties": {"soft": True}},
     "action": {"name": "delete", "properties": {}}},
    {**ALICE_DELETES, "context": {"__entity": {"type": "user", "id": "bob"}}},
    {**ALICE_DELETES, "context": {"x": {"__extn": {"fn": "decimal", "arg": "1.0"}}}},
    {**ALICE_DELETES, "resource": {"type": "record", "id": "record-9",
                                   "properties": {"status": {"__entity": {
                                       "type": "group", "id": "editors"}}}}},
])
async def test_a_reserved_name_sent_by_the_client_is_refused(body: dict[str, Any]) -> None:
    async with client_of(service_on(POLICIES / "certification")) as client:
        answer = await client.post(EVALUATION, json=body)
    result = answer.json()
    assert result["decision"] is False, result
    assert "reserved" in str(result), result


@pytest.mark.asyncio
async def test_a_soft_delete_said_in_action_properties_is_still_permitted() -> None:
    body = {**ALICE_DELETES, "action": {"name": "delete", "properties": {"soft": True}}}
    async with client_of(service_on(POLICIES / "certification")) as client:
        answer = await client.post(EVALUATION, json=body)
    assert answer.json() == {"decision": True}
