"""The COAZ core on its own: it fails closed (no token, a bad token, a decision it cannot
have), hands the request id to whoever decides, and builds the JSON-RPC answer."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from pdp.coaz import DenialStyle, MappingOptions, ToolCatalog, Verdict
from pdp.coaz_service import CoazCore
from pdp.errors import UpstreamError
from pdp.settings import Settings
from tests.gateway.support import RESOURCE, TOOLS, Keys, call, message

CATALOG = ToolCatalog.from_tools_list(TOOLS, server_id=RESOURCE)
ALICE = {"sub": "alice@example.com", "client_id": "agent-app-1", "aud": RESOURCE}
COPY = call("copy_object", {"source": "reports/q1.csv", "destination": "reports/q1-copy.csv"})


class Recorder:
    """Answers every request with ``decision`` (or fails) and records how it was asked."""

    def __init__(self, decision: bool | None) -> None:
        self.decision = decision
        self.asked: list[dict[str, Any]] = []

    async def decide(self, endpoint: str, body: Mapping[str, Any], *, explain: bool = True,
                     request_id: str | None = None) -> Verdict:
        self.asked.append({"endpoint": endpoint, "explain": explain, "request_id": request_id})
        if self.decision is None:
            raise UpstreamError("the PDP could not be reached")
        count = len(body.get("evaluations", [])) or 1
        return Verdict(self.decision, ({"decision": self.decision},) * count,
                       None if self.decision else "no")

    async def aclose(self) -> None:
        return None


def core(decider: Recorder, **kwargs: Any) -> CoazCore:
    return CoazCore(decider, MappingOptions(server_resource=RESOURCE, deny_code_sep=-32401),
                    **kwargs)


@pytest.mark.asyncio
async def test_the_request_id_reaches_the_decider() -> None:
    decider = Recorder(True)
    result = await core(decider).authorize(COPY, CATALOG, claims=ALICE, request_id="r-1")
    assert result.allow and result.request_id == "r-1"
    assert decider.asked == [{"endpoint": "/access/v1/evaluations", "explain": True,
                              "request_id": "r-1"}]


@pytest.mark.asyncio
async def test_a_decision_that_cannot_be_had_is_an_internal_error_never_a_permit() -> None:
    result = await core(Recorder(None)).authorize(COPY, CATALOG, claims=ALICE)
    assert not result.allow and result.kind == "evaluate" and not result.denied
    assert result.error == {"code": -32603,
                            "message": "the authorization decision is unavailable"}
    assert result.answer(COPY, DenialStyle(as_tool_result=True)) == {
        "jsonrpc": "2.0", "id": 1, "error": dict(result.error)}


@pytest.mark.asyncio
async def test_a_policy_denial_is_explained_only_when_asked() -> None:
    decider = Recorder(False)
    plain = await core(decider, ask_policies=False).authorize(COPY, CATALOG, claims=ALICE)
    assert plain.denied and plain.error == {"code": -32001, "message": "no"}
    explained = await core(decider).authorize(COPY, CATALOG, claims=ALICE, explain=True)
    assert explained.error is not None and explained.error["data"]["reason"] == "no"
    assert [a["explain"] for a in decider.asked] == [False, True]
    as_result = explained.answer(COPY, DenialStyle(explain=True, as_tool_result=True))
    assert as_result is not None and as_result["result"]["isError"] is True


@pytest.mark.asyncio
async def test_without_a_valid_token_nothing_is_mapped_or_decided(tmp_path: Path) -> None:
    keys = Keys(tmp_path)
    decider = Recorder(True)
    settings = Settings(resource_id=RESOURCE, authorization_servers=["https://as.example.com"],
                        token_jwks_file=keys.jwks_file)
    checked = core(decider, settings=settings)
    missing = await checked.authorize(message("tools/list"), CATALOG)
    assert missing.kind == "unauthenticated" and not missing.allow
    assert missing.www_authenticate is not None and "invalid_token" not in \
        missing.www_authenticate
    forged = await checked.authorize(message("tools/list"), CATALOG, token="not.a.jwt")
    assert forged.kind == "unauthenticated"
    assert forged.www_authenticate is not None and "invalid_token" in forged.www_authenticate
    assert decider.asked == []
    await checked.aclose()
