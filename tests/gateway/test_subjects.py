"""Who a request is for, through the gateway and into the decision log: a client
(machine) token — no ``sub``, or ``sub`` equal to its client (RFC 9068 §2.2) — has the client
as its subject, so ``principal is client`` policies hold; the client (``client_id``, else
``azp``) and the RFC 8693 actor reach the default mappings' context and the decision log."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import pytest_asyncio

from pdp.decision_log import DecisionFilter, DecisionReader
from pdp.gateway import Gateway, LocalDecider
from tests.gateway.support import (
    FakeUpstream,
    Keys,
    call,
    client_for,
    headers,
    make_gateway,
    message,
    messages_of,
)


@pytest_asyncio.fixture
async def logged(keys: Keys, tmp_path: Path) -> AsyncIterator[tuple[Gateway, FakeUpstream]]:
    upstream = FakeUpstream()
    gateway = make_gateway(keys, upstream, decision_log="on",
                           decision_log_personal_data="full", data_dir=tmp_path)
    gateway.start()
    yield gateway, upstream
    await gateway.aclose()


def _rows(gateway: Gateway) -> list[dict[str, Any]]:
    decider = gateway.authorizer.decider
    assert isinstance(decider, LocalDecider)
    log = decider.service.decision_log
    assert log is not None and log.flush()
    return DecisionReader(log.database).latest(100, DecisionFilter())


async def _send(gateway: Gateway, token: str, body: dict[str, Any]) -> dict[str, Any]:
    async with client_for(gateway) as client:
        answer = await client.post("/mcp", content=orjson.dumps(body), headers=headers(token))
    [reply] = messages_of(answer)
    return reply


@pytest.mark.parametrize("sub", ["batch-job", None], ids=["sub-is-client", "no-sub"])
@pytest.mark.asyncio
async def test_a_client_credentials_token_may_only_list_tools(
        logged: tuple[Gateway, FakeUpstream], keys: Keys, sub: str | None) -> None:
    gateway, upstream = logged
    token = keys.token(sub=sub, client_id="batch-job")
    listed = await _send(gateway, token, message("tools/list"))
    assert "tools" in listed["result"]
    denied = await _send(gateway, token, call("echo", {"text": "hi"}))
    assert denied["error"]["code"] == -32401
    assert upstream.calls() == []
    rows = _rows(gateway)
    assert [(r["subject"], r["action"], r["decision"]) for r in rows] == [
        ({"type": "client", "id": "batch-job"}, "tools/list", True),
        ({"type": "client", "id": "batch-job"}, "tools/call", False)]
    assert rows[0]["context"] == {"agent": "batch-job"}


@pytest.mark.asyncio
async def test_the_client_and_the_actor_reach_the_decision_log(
        logged: tuple[Gateway, FakeUpstream], keys: Keys,
        caplog: pytest.LogCaptureFixture) -> None:
    gateway, _ = logged
    act = {"sub": "agent-7", "act": {"sub": "orchestrator"}}
    token = keys.token(client_id=None, azp="assistant-app", act=act)
    with caplog.at_level(logging.DEBUG, logger="pdp.coaz.decisions"):
        await _send(gateway, token, message("tools/list"))
    [row] = _rows(gateway)
    assert row["subject"] == {"type": "identity", "id": "alice@example.com"}
    assert row["context"] == {"agent": "assistant-app", "act": act}
    assert "subject='identity:alice@example.com' client='assistant-app' actor='agent-7'" \
        in caplog.text
