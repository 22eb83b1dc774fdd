"""The gateway in process, in front of a scripted upstream (docs/spec/coaz.md; MCP Streamable HTTP).

Covers: tools learned from proxied tools/list answers (JSON and SSE), the refresh before a call
of an unknown tool and after notifications/tools/list_changed, pass-through of ping,
notifications and client responses, fail-closed answers (unknown method, mapping errors, PDP
unreachable), the remote-PDP mode against the real PDP application, batches, token handling
and session binding.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio

from pdp.auth.keys import entry_for, new_key
from pdp.gateway import Gateway, RemoteDecider, Verdict
from pdp.http import create_app
from tests.conftest import POLICIES, free_port, make_service
from tests.gateway.support import (
    RESOURCE,
    TOOLS,
    UPSTREAM_TOKEN,
    FakeUpstream,
    Keys,
    call,
    client_for,
    headers,
    make_gateway,
    message,
    messages_of,
)

PDP_KEY = new_key()  # the gateway's API key at the remote PDP
ALICE_READS = call("get_customer", {"id": "cust-67890", "case": "case-1"})  # support + case
ALICE_NO_CASE = call("get_customer", {"id": "cust-67890"})  # SEP mapping: denied, -32401
SMALL_TRANSFER = call("transfer_funds", {"from_account": "acc-alice", "to_account": "acc-bob",
                                         "amount": 100})


class CountingDecider:
    """A decider that must not be asked (pass-through) or answers a fixed decision."""

    def __init__(self, allow: bool = True) -> None:
        self.allow = allow
        self.asked: list[Mapping[str, Any]] = []

    async def decide(self, endpoint: str, body: Mapping[str, Any], *, explain: bool = True,
                     request_id: str | None = None) -> Verdict:
        self.asked.append(body)
        return Verdict(self.allow, ({"decision": self.allow},))

    async def aclose(self) -> None:
        return None


@pytest_asyncio.fixture
async def upstream() -> FakeUpstream:
    return FakeUpstream()


async def _post(client: httpx.AsyncClient, keys: Keys, body: Any, *, token: str | None = "",
                **extra: str) -> httpx.Response:
    if token == "":
        token = keys.token()
    return await client.post("/mcp", content=orjson.dumps(body), headers=headers(token, **extra))


@pytest_asyncio.fixture
async def gateway(keys: Keys, upstream: FakeUpstream) -> AsyncIterator[Gateway]:
    gw = make_gateway(keys, upstream)
    yield gw
    await gw.aclose()


@pytest_asyncio.fixture
async def client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(gateway) as c:
        yield c


# -- learning the mappings -----------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("as_sse", [False, True], ids=["json", "sse"])
async def test_tools_are_learned_from_a_proxied_tools_list(
        keys: Keys, upstream: FakeUpstream, gateway: Gateway, client: httpx.AsyncClient,
        as_sse: bool) -> None:
    upstream.sse = as_sse
    listed = await _post(client, keys, message("tools/list", {}, request_id="l1"))
    assert listed.status_code == 200
    assert listed.headers["content-type"].startswith(
        "text/event-stream" if as_sse else "application/json")
    assert [t["name"] for t in messages_of(listed)[0]["result"]["tools"]] == \
        [t["name"] for t in TOOLS]
    assert gateway.tools.knows("get_customer")

    allowed = await _post(client, keys, ALICE_READS)
    denied = await _post(client, keys, ALICE_NO_CASE)
    assert messages_of(allowed)[0]["result"]["content"][0]["text"] == "ran get_customer"
    # -32401 is the SEP dialect's code: the tool's own x-coaz-mapping decided, not the default
    assert denied.status_code == 200
    assert messages_of(denied) == [{"jsonrpc": "2.0", "id": 1,
                                    "error": {"code": -32401, "message": "Access denied"}}]
    assert upstream.calls() == ["get_customer"]
    assert gateway.tools.refreshes == 0
    assert len(upstream.posted("tools/list")) == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("as_sse", [False, True], ids=["json", "sse"])
async def test_an_unknown_tool_refreshes_the_list_before_deciding(
        keys: Keys, upstream: FakeUpstream, gateway: Gateway, client: httpx.AsyncClient,
        as_sse: bool) -> None:
    upstream.sse = as_sse
    denied = await _post(client, keys, ALICE_NO_CASE, mcp_session_id="session-1",
                         mcp_protocol_version="2025-06-18")
    assert messages_of(denied)[0]["error"]["code"] == -32401  # the declared SEP mapping
    refresh = upstream.posted("tools/list")
    assert len(refresh) == 1 and str(refresh[0]["id"]).startswith("pdp-gateway-tools-")
    sent = upstream.requests[0]["headers"]
    assert sent["authorization"] == f"Bearer {UPSTREAM_TOKEN}"
    assert sent["mcp-session-id"] == "session-1"
    assert sent["mcp-protocol-version"] == "2025-06-18"
    assert upstream.calls() == []

    allowed = await _post(client, keys, SMALL_TRANSFER)
    assert "result" in messages_of(allowed)[0]
    assert upstream.calls() == ["transfer_funds"]
    assert gateway.tools.refreshes == 1  # the list is known now


@pytest.mark.asyncio
async def test_a_tool_the_upstream_does_not_list_is_a_mapping_error(
        keys: Keys, upstream: FakeUpstream, client: httpx.AsyncClient) -> None:
    answer = await _post(client, keys, call("no_such_tool", {}))
    assert messages_of(answer)[0]["error"]["code"] == -32602
    assert len(upstream.posted("tools/list")) == 1  # refreshed once before deciding
    again = await _post(client, keys, call("no_such_tool", {}))
    assert messages_of(again)[0]["error"]["code"] == -32602
    assert len(upstream.posted("tools/list")) == 1  # no refresh storm
    assert upstream.calls() == []


@pytest.mark.asyncio
async def test_modern_refresh_sends_the_per_request_envelope(
        keys: Keys, upstream: FakeUpstream, client: httpx.AsyncClient) -> None:
    modern = {**ALICE_READS, "params": {**ALICE_READS["params"], "_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}}}}
    answer = await _post(client, keys, modern, mcp_protocol_version="2026-07-28",
                         mcp_method="tools/call", mcp_name="get_customer")
    assert "result" in messages_of(answer)[0]
    refresh = upstream.posted("tools/list")[0]
    assert refresh["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] == "2026-07-28"
    assert upstream.requests[0]["headers"]["mcp-method"] == "tools/list"
    forwarded = upstream.requests[1]["headers"]
    assert forwarded["mcp-method"] == "tools/call" and forwarded["mcp-name"] == "get_customer"


@pytest.mark.asyncio
async def test_list_changed_on_the_get_stream_forces_a_refresh(
        keys: Keys, upstream: FakeUpstream, gateway: Gateway, client: httpx.AsyncClient) -> None:
    await _post(client, keys, message("tools/list", {}))
    # the upstream now declares a stricter mapping for echo and announces the change
    strict = {"name": "echo", "inputSchema": {
        "type": "object", "properties": {"text": {"type": "string"}},
        "x-authzen-mapping": {"evaluation": {
            "action": {"name": "tools/call"}, "resource": {"type": "tool", "id": "echo-v2"}}}}}
    upstream.tools = [t for t in TOOLS if t["name"] != "echo"] + [strict]
    upstream.stream = [message("notifications/tools/list_changed", request_id=None)]
    stream = await client.get("/mcp", headers=headers(keys.token()))
    assert stream.status_code == 200 and "tools/list_changed" in stream.text
    assert gateway.tools.stale

    answer = await _post(client, keys, call("echo", {"text": "hi"}))
    assert messages_of(answer)[0]["error"]["code"] == -32401  # tool::"echo-v2" is not public
    assert gateway.tools.refreshes == 1 and not gateway.tools.stale
    assert upstream.calls() == []


@pytest.mark.asyncio
async def test_pinned_tools_file_is_the_only_source(
        keys: Keys, upstream: FakeUpstream, tmp_path: Path) -> None:
    pinned = tmp_path / "tools.json"
    pinned.write_text(orjson.dumps({"tools": [t for t in TOOLS if t["name"] != "echo"]}).decode())
    gw = make_gateway(keys, upstream, gateway_tools_file=pinned)
    try:
        async with client_for(gw) as c:
            await _post(c, keys, message("tools/list", {}))  # lists echo: not learned
            answer = await _post(c, keys, call("echo", {"text": "hi"}))
            assert messages_of(answer)[0]["error"]["code"] == -32602  # unknown tool
            assert len(upstream.posted("tools/list")) == 1  # only the client's own
            assert upstream.calls() == []
    finally:
        await gw.aclose()


# -- pass-through and fail-closed -------------------------------------------------------------


@pytest.mark.asyncio
async def test_ping_notifications_and_client_responses_pass_without_a_decision(
        keys: Keys, upstream: FakeUpstream) -> None:
    decider = CountingDecider(allow=False)
    gw = make_gateway(keys, upstream, decider=decider)
    try:
        async with client_for(gw) as c:
            ping = await _post(c, keys, message("ping"))
            note = await _post(c, keys, message("notifications/initialized", request_id=None))
            reply = await _post(c, keys, {"jsonrpc": "2.0", "id": "s-1", "result": {}})
        assert messages_of(ping) == [{"jsonrpc": "2.0", "id": 1, "result": {}}]
        assert note.status_code == 202 and reply.status_code == 202
        assert [m.get("method") for m in upstream.posted()] == \
            ["ping", "notifications/initialized", None]
        assert decider.asked == []
    finally:
        await gw.aclose()


@pytest.mark.asyncio
async def test_an_unknown_method_is_denied_and_not_forwarded(
        keys: Keys, upstream: FakeUpstream, client: httpx.AsyncClient) -> None:
    answer = await _post(client, keys, message("server/reboot", {}, request_id="x"))
    assert answer.status_code == 200
    error = messages_of(answer)[0]
    assert error["id"] == "x" and error["error"]["code"] == -32401
    assert upstream.posted() == []


@pytest.mark.asyncio
@pytest.mark.parametrize(("version", "status"), [("2025-06-18", 200), ("2026-07-28", 400)])
async def test_an_input_schema_violation_is_a_mapping_error(
        keys: Keys, upstream: FakeUpstream, client: httpx.AsyncClient,
        version: str, status: int) -> None:
    await _post(client, keys, message("tools/list", {}))
    bad = call("transfer_funds", {"from_account": "acc-alice", "to_account": "x",
                                  "amount": "lots"})
    answer = await _post(client, keys, bad, mcp_protocol_version=version)
    assert answer.status_code == status  # 2026-07-28 maps -32602 to HTTP 400
    assert messages_of(answer)[0]["error"]["code"] == -32602
    assert upstream.calls() == []


@pytest.mark.asyncio
async def test_pdp_unreachable_is_an_internal_error_and_nothing_is_forwarded(
        keys: Keys, upstream: FakeUpstream) -> None:
    gw = make_gateway(keys, upstream, gateway_pdp_url=f"http://127.0.0.1:{free_port()}",
                      gateway_pdp_timeout=2.0)
    try:
        async with client_for(gw) as c:
            answer = await _post(c, keys, call("echo", {"text": "hi"}))
            assert messages_of(answer)[0]["error"]["code"] == -32603
            assert upstream.calls() == []
    finally:
        await gw.aclose()


@pytest.mark.asyncio
async def test_an_invalid_pdp_answer_is_an_internal_error(
        keys: Keys, upstream: FakeUpstream) -> None:
    bogus = httpx.AsyncClient(transport=httpx.MockTransport(
        lambda _: httpx.Response(200, json={"decision": "yes"})))
    gw = make_gateway(keys, upstream, decider=RemoteDecider(bogus, "http://pdp.test"))
    try:
        async with client_for(gw) as c:
            answer = await _post(c, keys, call("echo", {"text": "hi"}))
            assert messages_of(answer)[0]["error"]["code"] == -32603
            assert upstream.calls() == []
    finally:
        await gw.aclose()


@pytest.mark.asyncio
async def test_remote_pdp_mode_against_the_pdp_application(
        keys: Keys, upstream: FakeUpstream) -> None:
    pdp = create_app(make_service(POLICIES / "mcp", api_keys=[entry_for("gateway", PDP_KEY)],
                                  entity_store="memory"))
    seen: list[str] = []

    async def spy(request: httpx.Request) -> None:
        seen.append(f"{request.url.path} {request.headers.get('authorization')}")

    pdp_client = httpx.AsyncClient(transport=httpx.ASGITransport(app=pdp),
                                   event_hooks={"request": [spy]})
    gw = make_gateway(keys, upstream, gateway_pdp_url="http://pdp.test",
                      gateway_pdp_token=PDP_KEY, pdp_client=pdp_client)
    try:
        async with client_for(gw) as c:
            await _post(c, keys, message("tools/list", {}))
            ok = await _post(c, keys, call("copy_object", {
                "source": "reports/q1.csv", "destination": "reports/q1-copy.csv"}))
            locked = await _post(c, keys, call("copy_object", {
                "source": "reports/q1.csv", "destination": "archive/2020.csv"}))
        assert "result" in messages_of(ok)[0]
        assert messages_of(locked)[0]["error"]["code"] == -32401
        assert upstream.calls() == ["copy_object"]
        # one /access/v1/evaluations call per copy_object, authenticated as the PEP
        assert seen.count(f"/access/v1/evaluations Bearer {PDP_KEY}") == 2
    finally:
        await gw.aclose()


@pytest.mark.asyncio
async def test_the_decision_reason_becomes_the_error_message(
        keys: Keys, upstream: FakeUpstream) -> None:
    reasons = httpx.AsyncClient(transport=httpx.MockTransport(lambda _: httpx.Response(
        200, json={"decision": False, "context": {"reason_user": {"en": "Outside office hours"}}}
    )))
    gw = make_gateway(keys, upstream, decider=RemoteDecider(reasons, "http://pdp.test"))
    try:
        async with client_for(gw) as c:
            answer = await _post(c, keys, call("echo", {"text": "hi"}))
        assert messages_of(answer)[0]["error"] == {"code": -32401,
                                                   "message": "Outside office hours"}
    finally:
        await gw.aclose()


# -- batches -----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_batch_forwards_only_the_permitted_messages(
        keys: Keys, upstream: FakeUpstream, client: httpx.AsyncClient) -> None:
    await _post(client, keys, message("tools/list", {}))
    batch = [ALICE_READS | {"id": "a"}, ALICE_NO_CASE | {"id": "b"},
             message("notifications/progress", {"progressToken": 1, "progress": 1},
                     request_id=None)]
    answer = await _post(client, keys, batch, mcp_protocol_version="2025-03-26")
    assert answer.status_code == 200
    by_id = {m["id"]: m for m in messages_of(answer)}
    assert "result" in by_id["a"] and by_id["b"]["error"]["code"] == -32401
    forwarded = upstream.requests[-1]["body"]
    assert [m.get("id") for m in forwarded] == ["a", None]


@pytest.mark.asyncio
@pytest.mark.parametrize("version", ["2025-06-18", "2025-11-25", "2026-07-28"])
async def test_batches_are_refused_where_the_protocol_has_none(
        keys: Keys, upstream: FakeUpstream, client: httpx.AsyncClient, version: str) -> None:
    answer = await _post(client, keys, [message("ping")], mcp_protocol_version=version)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == -32600
    assert upstream.requests == []


@pytest.mark.asyncio
async def test_a_body_that_is_not_json_is_a_parse_error(
        keys: Keys, upstream: FakeUpstream, client: httpx.AsyncClient) -> None:
    answer = await client.post("/mcp", content=b"{nope", headers=headers(keys.token()))
    assert answer.status_code == 400
    assert answer.json() == {"jsonrpc": "2.0", "id": None,
                             "error": {"code": -32700, "message": "Parse error: the body is "
                                       "not JSON"}}


# -- tokens, credentials, sessions ------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("method", ["POST", "GET", "DELETE"])
async def test_missing_and_invalid_tokens_get_401_and_never_reach_upstream(
        keys: Keys, upstream: FakeUpstream, client: httpx.AsyncClient, method: str) -> None:
    metadata = "https://gw.example.com/.well-known/oauth-protected-resource/mcp"
    wrong_audience = keys.token("https://elsewhere.example.com/mcp")
    expired = keys.token(lifetime=-3600)
    for token, error in [(None, False), ("not-a-jwt", True), (wrong_audience, True),
                         (expired, True)]:
        answer = await client.request(method, "/mcp", headers=headers(token),
                                      content=orjson.dumps(message("ping")))
        assert answer.status_code == 401
        expected = (f'Bearer error="invalid_token", resource_metadata="{metadata}"' if error
                    else f'Bearer resource_metadata="{metadata}"')
        assert answer.headers["www-authenticate"] == expected
        assert answer.json() == {"error": "unauthorized"}
    assert upstream.requests == []


@pytest.mark.asyncio
async def test_protected_resource_metadata(client: httpx.AsyncClient) -> None:
    for path in ("/.well-known/oauth-protected-resource",
                 "/.well-known/oauth-protected-resource/mcp"):
        answer = await client.get(path)
        assert answer.status_code == 200
        assert answer.json() == {"resource": RESOURCE,
                                 "authorization_servers": ["https://as.example.com"],
                                 "bearer_methods_supported": ["header"]}


@pytest.mark.asyncio
async def test_the_client_token_never_goes_upstream(
        keys: Keys, upstream: FakeUpstream, client: httpx.AsyncClient) -> None:
    token = keys.token()
    await client.post("/mcp", content=orjson.dumps(message("initialize", {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}})),
        headers={**headers(token), "cookie": "sid=1", "x-api-key": "k"})
    await _post(client, keys, ALICE_READS, token=token)
    await client.get("/mcp", headers=headers(token, mcp_session_id="session-1"))
    await client.delete("/mcp", headers=headers(token, mcp_session_id="session-1"))
    assert len(upstream.requests) >= 4
    for r in upstream.requests:
        assert r["headers"]["authorization"] == f"Bearer {UPSTREAM_TOKEN}"
        assert token not in str(r["headers"])
        assert "cookie" not in r["headers"] and "x-api-key" not in r["headers"]


@pytest.mark.asyncio
async def test_a_session_belongs_to_whoever_opened_it(
        keys: Keys, upstream: FakeUpstream, client: httpx.AsyncClient) -> None:
    opened = await _post(client, keys, message("initialize", {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}}))
    assert opened.headers["mcp-session-id"] == "session-1"
    bob = keys.token(sub="bob@example.com")
    hijack = await _post(client, keys, message("tools/list", {}), token=bob,
                         mcp_session_id="session-1")
    assert hijack.status_code == 404
    own = await _post(client, keys, message("tools/list", {}), mcp_session_id="session-1")
    assert own.status_code == 200 and "result" in messages_of(own)[0]


@pytest.mark.asyncio
async def test_upstream_refusing_the_gateway_credentials_is_a_bad_gateway(
        keys: Keys, upstream: FakeUpstream, client: httpx.AsyncClient) -> None:
    upstream.status = 401
    answer = await _post(client, keys, message("ping"))
    assert answer.status_code == 502
    assert "www-authenticate" not in answer.headers
    assert answer.json()["error"]["code"] == -32603


@pytest.mark.asyncio
async def test_a_body_with_a_duplicate_key_never_reaches_the_upstream(
        keys: Keys, upstream: FakeUpstream, client: httpx.AsyncClient) -> None:
    # duplicate keys: one parser keeps the last "name", another the first: refused outright
    raw = (b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":'
           b'{"name":"delete_customer","name":"echo","arguments":{"text":"hi"}}}')
    answer = await client.post("/mcp", content=raw, headers=headers(keys.token()))
    error = messages_of(answer)[0]["error"]
    assert "duplicate key 'name'" in error["message"]
    assert upstream.calls() == []
