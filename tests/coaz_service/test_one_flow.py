"""One COAZ flow behind both transports: the same message, token and request id through
``POST /coaz/v1/authorize`` and through the MCP gateway give the same outcome (forwarded or
not, the same JSON-RPC error) and the same decision-log records."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio

from pdp.decision_log import DecisionFilter, DecisionReader
from pdp.gateway import Gateway, LocalDecider
from pdp.http import create_app
from pdp.service import PDPService
from tests.gateway.support import (
    RESOURCE,
    TOOLS,
    FakeUpstream,
    Keys,
    call,
    client_for,
    gateway_settings,
    headers,
    make_gateway,
    message,
    messages_of,
)

MESSAGES = {
    "permitted copy": call("copy_object", {"source": "reports/q1.csv",
                                           "destination": "reports/q1-copy.csv"}),
    "denied copy": call("copy_object", {"source": "reports/q1.csv",
                                        "destination": "archive/2020.csv"}),
    "SEP mapping, denied": call("get_customer", {"id": "cust-67890"}),
    "SEP mapping, permitted": call("get_customer", {"id": "cust-67890", "case": "case-1"}),
    "unknown tool": call("no_such_tool", {}),
    "method no rule allows": message("server/reboot", {}),
    "default mapping": message("resources/list", {}),
}
_VOLATILE = ("id", "at", "latency_ms")
_FULL: dict[str, Any] = {"decision_log_personal_data": "full"}


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return Keys(tmp_path_factory.mktemp("one-flow-keys"))


@pytest_asyncio.fixture
async def both(keys: Keys, tmp_path: Path,
               ) -> AsyncIterator[tuple[httpx.AsyncClient, PDPService, Gateway, FakeUpstream]]:
    settings = gateway_settings(keys, decision_log="on", data_dir=tmp_path / "pdp", **_FULL,
                                resource_id=RESOURCE)
    service = PDPService.from_settings(settings)
    service.start()
    upstream = FakeUpstream()
    gateway = make_gateway(keys, upstream, decision_log="on", data_dir=tmp_path / "gateway",
                           **_FULL)
    gateway.start()
    app = create_app(service)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://pdp.test") as pdp:
        yield pdp, service, gateway, upstream
    await gateway.aclose()
    service.close()


def _rows(service: PDPService) -> list[dict[str, Any]]:
    log = service.decision_log
    assert log is not None and log.flush()
    found = DecisionReader(log.database).latest(100, DecisionFilter())
    return sorted(({k: v for k, v in r.items() if k not in _VOLATILE} for r in found),
                  key=lambda r: r.get("item") or 0)


@pytest.mark.asyncio
@pytest.mark.parametrize("name", list(MESSAGES))
async def test_the_endpoint_and_the_gateway_give_one_outcome_and_one_log(
        both: tuple[httpx.AsyncClient, PDPService, Gateway, FakeUpstream], keys: Keys,
        name: str) -> None:
    pdp, service, gateway, upstream = both
    msg, token, rid = MESSAGES[name], keys.token(), f"one-flow-{name}"
    endpoint = (await pdp.post("/coaz/v1/authorize", headers={"X-Request-ID": rid},
                               json={"message": msg, "tools": TOOLS, "token": token,
                                     "server": RESOURCE})).json()
    async with client_for(gateway) as client:
        answer = await client.post("/mcp", content=orjson.dumps(msg),
                                   headers=headers(token, x_request_id=rid))
    forwarded = [m for m in upstream.posted() if m.get("id") == msg["id"]]
    assert bool(forwarded) is endpoint["allow"]
    if not endpoint["allow"]:
        [reply] = messages_of(answer)
        assert reply["error"] == endpoint["error"]
    decider = gateway.authorizer.decider
    assert isinstance(decider, LocalDecider)
    through_gateway = _rows(decider.service)
    assert bool(through_gateway) is (endpoint["outcome"] == "evaluate")
    assert through_gateway == _rows(service)
    assert all(r["request_id"] == rid for r in through_gateway)
