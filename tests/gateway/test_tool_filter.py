"""Optional ``tools/list`` filtering: a tool whose request does not depend on its arguments is
listed only if the caller may call it; one whose request does is listed marked ``per-call``;
without the setting the list passes unchanged. JSON and SSE answers alike."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from pdp.coaz.visibility import VISIBILITY_META
from tests.gateway.support import (
    TOOLS,
    FakeUpstream,
    Keys,
    client_for,
    headers,
    make_gateway,
    message,
    messages_of,
)

PER_CALL = {"get_customer", "transfer_funds", "copy_object"}  # mappings read the arguments


async def _listed(keys: Keys, token: str, *, sse: bool, **settings: Any,
                  ) -> dict[str, dict[str, Any]]:
    gateway = make_gateway(keys, FakeUpstream(sse=sse), **settings)
    try:
        async with client_for(gateway) as client:
            answer = await client.post("/mcp", content=orjson.dumps(message("tools/list")),
                                       headers=headers(token))
    finally:
        await gateway.aclose()
    [reply] = [m for m in messages_of(answer) if m.get("id") == 1]
    return {t["name"]: t for t in reply["result"]["tools"]}


@pytest.mark.parametrize("sse", [False, True], ids=["json", "sse"])
@pytest.mark.asyncio
async def test_a_person_sees_the_tools_they_may_call_and_the_per_call_ones(
        keys: Keys, sse: bool) -> None:
    tools = await _listed(keys, keys.token(), sse=sse, gateway_filter_tools=True)
    assert set(tools) == PER_CALL | {"echo"}  # delete_customer: nobody may call it
    for name in PER_CALL:
        assert tools[name]["_meta"][VISIBILITY_META] == "per-call"
    assert "_meta" not in tools["echo"]
    original = {t["name"]: t for t in TOOLS}
    assert tools["echo"] == original["echo"]


@pytest.mark.asyncio
async def test_a_client_token_sees_no_tool_it_may_not_call(keys: Keys) -> None:
    token = keys.token(sub="batch-job", client_id="batch-job")
    tools = await _listed(keys, token, sse=False, gateway_filter_tools=True)
    assert set(tools) == PER_CALL  # echo is for people only; per-call ones are marked


@pytest.mark.asyncio
async def test_without_the_setting_the_list_is_unchanged(keys: Keys) -> None:
    tools = await _listed(keys, keys.token(), sse=True)
    assert list(tools.values()) == TOOLS
