"""The gateway records each message's decisions with the client's ``X-Request-ID`` (as the
PDP's own endpoints do), and passes it on to a remote PDP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio

from pdp.decision_log import DecisionFilter, DecisionReader
from pdp.gateway import Gateway, LocalDecider, RemoteDecider
from tests.gateway.support import (
    FakeUpstream,
    Keys,
    call,
    client_for,
    headers,
    make_gateway,
    messages_of,
)

COPY = call("copy_object", {"source": "reports/q1.csv", "destination": "archive/2020.csv"})


@pytest_asyncio.fixture
async def logged(keys: Keys, tmp_path: Path) -> AsyncIterator[Gateway]:
    gateway = make_gateway(keys, FakeUpstream(), decision_log="on", data_dir=tmp_path)
    gateway.start()
    yield gateway
    await gateway.aclose()


def rows(gateway: Gateway) -> list[dict[str, Any]]:
    decider = gateway.authorizer.decider
    assert isinstance(decider, LocalDecider)
    log = decider.service.decision_log
    assert log is not None and log.flush()
    return sorted(DecisionReader(log.database).latest(100, DecisionFilter()),
                  key=lambda r: r["item"])


@pytest.mark.asyncio
async def test_the_decisions_of_a_message_carry_the_clients_request_id(
        logged: Gateway, keys: Keys) -> None:
    async with client_for(logged) as client:
        answer = await client.post("/mcp", content=orjson.dumps(COPY),
                                   headers=headers(keys.token(), x_request_id="gw-req-3"))
    [reply] = messages_of(answer)
    assert reply["error"]["code"] == -32401
    assert [(r["request_id"], r["item"], r["decision"]) for r in rows(logged)] == [
        ("gw-req-3", 0, True), ("gw-req-3", 1, False)]


@pytest.mark.asyncio
async def test_a_remote_pdp_is_asked_with_the_request_id(keys: Keys) -> None:
    seen: list[Mapping[str, str]] = []

    def pdp(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        return httpx.Response(200, json={"evaluations": [{"decision": True}] * 2})

    remote = RemoteDecider(httpx.AsyncClient(transport=httpx.MockTransport(pdp)),
                           "http://pdp.test")
    gateway = make_gateway(keys, FakeUpstream(), decider=remote)
    async with client_for(gateway) as client:
        await client.post("/mcp", content=orjson.dumps(COPY),
                          headers=headers(keys.token(), x_request_id="gw-req-4"))
    await gateway.aclose()
    assert [h.get("x-request-id") for h in seen] == ["gw-req-4"]
