"""The gateway's edges against real processes: a real MCP server (official SDK, from
tests/gateway/), ``pdp gateway`` in front of it, and requests written byte by byte on a socket
(an HTTP client library would merge or refuse repeated headers before they left).

Shown: a header the gateway decides on, sent twice, is a 400 and nothing reaches the upstream
(so Bob cannot pair his own session id for the owner check with Alice's for the upstream);
``HEAD`` is answered by the gateway at once and never forwarded; a batch larger than
``PDP_GATEWAY_MAX_BATCH`` is refused whole.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from pdp.coaz.verdict import verdict
from pdp.gateway import LocalDecider
from tests.conftest import POLICIES, ROOT, free_port, stop_server
from tests.gateway.support import (
    ISSUER,
    FakeUpstream,
    Keys,
    call,
    client_for,
    headers,
    make_gateway,
    messages_of,
)
from tests.waiting import wait_until

UPSTREAM_TOKEN = "upstream-sessions-s3cret"
MAX_BATCH = 5


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return Keys(tmp_path_factory.mktemp("keys"))


@dataclass
class Stack:
    port: int
    resource: str
    log: Path
    gateway_log: Path

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]


def _wait(proc: subprocess.Popen[bytes], url: str, what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not start in 30 s")


@pytest.fixture(scope="module")
def stack(keys: Keys, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("sessions")
    log = work / "upstream.jsonl"
    log.touch()
    gateway_log = work / "gateway.log"
    server_port, gateway_port = free_port(), free_port()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        server = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "gateway" / "mcp_server.py"),
             "--port", str(server_port), "--log", str(log), "--token", UPSTREAM_TOKEN,
             "--json"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(server)
        _wait(server, f"http://127.0.0.1:{server_port}/health", "the MCP server")
        env = {**os.environ, "PDP_DECISION_LOG": "off", "PDP_WATCH": "false",
               "PDP_DATA_DIR": str(work / "data"), "PDP_GATEWAY_MAX_BATCH": str(MAX_BATCH),
               "PDP_GATEWAY_UPSTREAM_TOKEN": UPSTREAM_TOKEN}
        with gateway_log.open("wb") as stderr:
            gateway = subprocess.Popen(
                [sys.executable, "-m", "pdp", "gateway",
                 "--upstream", f"http://127.0.0.1:{server_port}/mcp",
                 "--port", str(gateway_port), "--policies", str(POLICIES / "mcp"),
                 "--jwks-file", str(keys.jwks_file), "--authorization-server", ISSUER,
                 "--log-level", "info"],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        procs.append(gateway)
        base = f"http://127.0.0.1:{gateway_port}"
        _wait(gateway, base + "/health", "pdp gateway")
        yield Stack(port=gateway_port, resource=base + "/mcp", log=log,
                    gateway_log=gateway_log)
    finally:
        for proc in reversed(procs):
            stop_server(proc)


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


def raw_request(port: int, method: str, headers: list[tuple[str, str]],
                body: bytes = b"", timeout: float = 20.0) -> Answer:
    """One request written as bytes (repeated headers stay repeated), read to the close."""
    head = [f"{method} /mcp HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    head += [f"{name}: {value}" for name, value in headers]
    if body or method == "POST":
        head.append(f"Content-Length: {len(body)}")
    data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    raw = b"".join(chunks)
    head_bytes, _, rest = raw.partition(b"\r\n\r\n")
    lines = head_bytes.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    parsed = [(k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:])]
    return Answer(status, parsed, rest)


def _mcp(token: str, *extra: tuple[str, str]) -> list[tuple[str, str]]:
    return [("Authorization", f"Bearer {token}"), ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"), *extra]


def _initialize(stack: Stack, token: str) -> str:
    body = json.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"}}}).encode()
    answer = raw_request(stack.port, "POST", _mcp(token, ("MCP-Protocol-Version",
                                                          "2025-06-18")), body)
    assert answer.status == 200, answer.body
    session = answer.header("mcp-session-id")
    assert session
    return session


LIST = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/list"}).encode()


def test_two_session_ids_are_refused_and_nothing_reaches_the_upstream(
        stack: Stack, keys: Keys) -> None:
    alice = keys.token(stack.resource, sub="alice@example.com")
    bob = keys.token(stack.resource, sub="bob@example.com")
    alices = _initialize(stack, alice)
    # the owner check itself holds: Bob naming Alice's session once is an unknown session
    alone = raw_request(stack.port, "POST", _mcp(bob, ("Mcp-Session-Id", alices),
                                                 ("MCP-Protocol-Version", "2025-06-18")), LIST)
    assert alone.status == 404
    before = len(stack.entries())
    for method, body in (("POST", LIST), ("GET", b""), ("DELETE", b"")):
        answer = raw_request(stack.port, method, _mcp(
            bob, ("Mcp-Session-Id", "bobs-own"), ("Mcp-Session-Id", alices),
            ("MCP-Protocol-Version", "2025-06-18")), body)
        assert answer.status == 400, (method, answer.body)
        assert b"Mcp-Session-Id" in answer.body
    assert stack.entries()[before:] == []
    # Alice's session is still hers
    mine = raw_request(stack.port, "POST", _mcp(alice, ("Mcp-Session-Id", alices),
                                                ("MCP-Protocol-Version", "2025-06-18")), LIST)
    assert mine.status == 200
    assert json.loads(mine.body)["result"]["tools"]


@pytest.mark.parametrize("name", ["Authorization", "MCP-Protocol-Version", "Content-Type"])
def test_any_header_the_gateway_decides_on_sent_twice_is_a_400(
        stack: Stack, keys: Keys, name: str) -> None:
    token = keys.token(stack.resource)
    values = {"Authorization": f"Bearer {token}", "MCP-Protocol-Version": "2025-03-26",
              "Content-Type": "application/json"}
    headers = [("Authorization", f"Bearer {token}"), ("Content-Type", "application/json"),
               ("Accept", "application/json"), ("MCP-Protocol-Version", "2025-03-26")]
    headers.append((name, values[name]))
    before = len(stack.entries())
    answer = raw_request(stack.port, "POST", headers, LIST)
    assert answer.status == 400
    assert name.lower() in answer.body.decode().lower()
    assert stack.entries()[before:] == []


def test_head_is_answered_by_the_gateway_and_never_forwarded(stack: Stack, keys: Keys) -> None:
    token = keys.token(stack.resource)
    before = len(stack.entries())
    answer = raw_request(stack.port, "HEAD", [("Authorization", f"Bearer {token}")],
                         timeout=5.0)
    assert answer.status == 405
    assert set((answer.header("allow") or "").replace(" ", "").split(",")) == \
        {"GET", "POST", "DELETE"}
    assert answer.body == b""
    assert [e for e in stack.entries()[before:] if e.get("method") == "HEAD"] == []
    assert stack.entries()[before:] == []


def test_a_batch_over_the_limit_is_refused_whole(stack: Stack, keys: Keys) -> None:
    token = keys.token(stack.resource)
    batch = [{"jsonrpc": "2.0", "id": i, "method": "tools/list"} for i in range(MAX_BATCH + 1)]
    before = len(stack.entries())
    answer = raw_request(stack.port, "POST", [
        ("Authorization", f"Bearer {token}"), ("Content-Type", "application/json"),
        ("Accept", "application/json")], json.dumps(batch).encode())
    assert answer.status == 400
    error = json.loads(answer.body)["error"]
    assert error["code"] == -32600
    assert f"at most {MAX_BATCH}" in error["message"]
    assert stack.entries()[before:] == []
    within = raw_request(stack.port, "POST", [
        ("Authorization", f"Bearer {token}"), ("Content-Type", "application/json"),
        ("Accept", "application/json")], json.dumps(batch[:MAX_BATCH]).encode())
    # within the limit the batch is decided and forwarded (this SDK server refuses batches)
    assert b"at most" not in within.body
    assert [e["method"] for e in stack.entries()[before:]] == ["POST"]


def test_an_unknown_method_is_logged_escaped(stack: Stack, keys: Keys) -> None:
    token = keys.token(stack.resource)
    forged = "x\n2026-01-01 00:00:00,000 INFO pdp.gateway: forged\x1b[2J"
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": forged}).encode()
    raw_request(stack.port, "POST", _mcp(token, ("MCP-Protocol-Version", "2025-06-18")), body)
    wait_until(lambda: "forged" in stack.gateway_log.read_text(), timeout=10,
               message="the log line")
    text = stack.gateway_log.read_text()
    assert "forged" in text
    assert not any(line.startswith("2026-01-01") for line in text.splitlines())
    assert "\x1b" not in text


def test_a_remote_pdps_reason_admin_never_reaches_the_client() -> None:
    body = {"evaluations": [{"subject": {"type": "user", "id": "bob"}}]}
    answer = {"evaluations": [{"decision": False, "context": {
        "reason_admin": {"en": "policy 7 on table payroll; DB host db-3.internal"}}}]}
    denied = verdict("/access/v1/evaluations", body, answer)
    assert denied.allowed is False
    assert denied.reason is None  # the client gets "Access denied"
    shown = verdict("/access/v1/evaluation", {}, {"decision": False, "context": {
        "reason_user": {"en": "Not your account"}, "reason_admin": {"en": "secret"}}})
    assert shown.reason == "Not your account"


@pytest.mark.asyncio
async def test_a_batch_is_decided_off_the_event_loop(keys: Keys) -> None:
    upstream = FakeUpstream()
    gateway = make_gateway(keys, upstream)
    decider = gateway.authorizer.decider
    assert isinstance(decider, LocalDecider)
    threads: list[int] = []
    evaluation = decider.service.evaluation

    def recording(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.get_ident())
        return evaluation(*args, **kwargs)

    decider.service.evaluation = recording  # type: ignore[method-assign]
    calls = [call("get_customer", {"id": "cust-67890", "case": "c-1"}, request_id=i)
             for i in range(3)]
    async with client_for(gateway) as client, gateway.lifespan(None):
        await client.post("/mcp", json={"jsonrpc": "2.0", "id": "l", "method": "tools/list"},
                          headers=headers(keys.token()))
        single = await client.post("/mcp", json=calls[0], headers=headers(keys.token()))
        assert "result" in messages_of(single)[0]
        assert set(threads) == {threading.get_ident()}  # one message: inline, the fast path
        inline = len(threads)
        batch = await client.post("/mcp", json=calls, headers=headers(keys.token()))
    assert sorted(m["id"] for m in messages_of(batch) if "result" in m) == [0, 1, 2]
    assert len(threads) > inline
    assert threading.get_ident() not in threads[inline:]


def test_the_gateway_honours_the_json_log_format(keys: Keys, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "gateway.log"
    env = {**os.environ, "PDP_DECISION_LOG": "off", "PDP_WATCH": "false",
           "PDP_DATA_DIR": str(tmp_path / "data"), "PDP_LOG_FORMAT": "json"}
    with log.open("wb") as stderr:
        gateway = subprocess.Popen(
            [sys.executable, "-m", "pdp", "gateway", "--upstream", "http://127.0.0.1:9/mcp",
             "--port", str(port), "--policies", str(POLICIES / "mcp"),
             "--jwks-file", str(keys.jwks_file), "--authorization-server", ISSUER,
             "--log-level", "info"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
            stderr=stderr)
    try:
        _wait(gateway, f"http://127.0.0.1:{port}/health", "pdp gateway")
        token = keys.token(f"http://127.0.0.1:{port}/mcp")
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "no/such\nmethod"}).encode()
        raw_request(port, "POST", _mcp(token, ("MCP-Protocol-Version", "2025-06-18")), body)
        wait_until(lambda: "no/such" in log.read_text(), timeout=10,
                   message="the log line")
    finally:
        stop_server(gateway)
    lines = log.read_text().splitlines()
    assert any("MCP gateway for" in line for line in lines)
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert any("no/such\nmethod" in r["message"] for r in records)
