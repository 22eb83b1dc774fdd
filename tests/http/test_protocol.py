"""``pdp serve``'s HTTP protocol (pdp.http.protocol) served in-process on a real socket, with
small deadlines: each connection's one deadline (the head, the body on the direct lane, the
keep-alive wait) is the one that applies at each moment, however the previous request on the
connection went; and an unexpected failure of a check on the direct lane is a 500, like any
unexpected failure, on a connection that goes on serving."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

import pytest
from uvicorn.server import ServerState

from pdp.http import create_app
from pdp.http.direct import DirectLane
from pdp.http.exposure import Exposure
from pdp.http.protocol import GuardedConfig, GuardedHttpToolsProtocol
from pdp.http.responses import error_parts
from tests.conftest import POLICIES, RICK_READS_TODOS, make_service
from tests.waiting import eventually

BODY = json.dumps(RICK_READS_TODOS).encode()
HEAD = (b"POST /access/v1/evaluation HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: "
        + str(len(BODY)).encode() + b"\r\n\r\n")
HEALTH = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
LONG = 30.0  # a deadline that must not be the one that acts


class Served:
    def __init__(self, port: int, lane: DirectLane, fired: list[int],
                 protocol: Callable[[], GuardedHttpToolsProtocol]) -> None:
        self.port = port
        self.lane = lane
        self._fired = fired
        self.protocol = protocol  # a new connection's protocol, as the server makes it

    async def deadline_fired(self, times: int) -> None:
        """Wait until connections' deadline timers have fired ``times`` times in all (each
        firing acts on a deadline that is due, or re-arms for one that moved on)."""

        async def fired() -> bool:
            return self._fired[0] >= times

        await eventually(fired, message=f"{times} firings of the deadline timer")

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[tuple[asyncio.StreamReader,
                                                   asyncio.StreamWriter]]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            yield reader, writer
        finally:
            writer.close()
            with suppress(OSError):
                await writer.wait_closed()


@asynccontextmanager
async def serving(*, header_timeout: float = LONG, keep_alive: float = LONG,
                  request_timeout: float = LONG, **settings: Any) -> AsyncIterator[Served]:
    service = make_service(POLICIES / "todo", entity_store="memory",
                           request_timeout=request_timeout, **settings)
    app = create_app(service)
    lane = app.state.direct_lane.behind(Exposure(service.settings, authenticated=False))
    app.direct_lane = lane  # type: ignore[attr-defined]
    config = GuardedConfig(app, header_timeout=header_timeout, timeout_keep_alive=keep_alive,
                           proxy_headers=False, lifespan="off", log_config=None)
    config.load()
    state = ServerState()
    loop = asyncio.get_running_loop()
    fired = [0]

    class Watched(GuardedHttpToolsProtocol):  # counts the timer's firings, acts as the real one
        def _deadline(self) -> None:
            fired[0] += 1
            super()._deadline()

    server = await loop.create_server(lambda: Watched(config, state, {}, loop), "127.0.0.1", 0)
    try:
        yield Served(server.sockets[0].getsockname()[1], lane, fired,
                     lambda: Watched(config, state, {}, loop))
    finally:
        server.close()
        for protocol in list(state.connections):
            protocol.transport.close()
        await server.wait_closed()
        service.close()


async def _response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in
               (line.split(":", 1) for line in lines[1:] if line)}
    body = await asyncio.wait_for(reader.readexactly(int(headers.get("content-length", "0"))),
                                  10)
    return int(lines[0].split()[1]), headers, body


async def _closed(reader: asyncio.StreamReader) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and when it closed."""
    data = await asyncio.wait_for(reader.read(), 10)
    return data, time.monotonic()


# -- one deadline per connection --------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_silent_connection_is_closed_at_the_head_deadline() -> None:
    async with serving(header_timeout=0.2) as served:
        async with served.connect() as (reader, writer):
            data, _ = await _closed(reader)
    assert data == b""


@pytest.mark.asyncio
@pytest.mark.parametrize("first", [HEAD + BODY, HEALTH], ids=["lane", "application"])
async def test_an_idle_kept_alive_connection_is_closed_at_the_keep_alive_timeout(
        first: bytes) -> None:
    async with serving(keep_alive=0.2) as served:
        async with served.connect() as (reader, writer):
            writer.write(first)
            status, _, _ = await _response(reader)
            data, _ = await _closed(reader)
    assert status == 200 and data == b""


@pytest.mark.asyncio
async def test_a_connection_sending_only_blank_lines_is_still_closed_when_idle() -> None:
    async with serving(keep_alive=0.3) as served:
        async with served.connect() as (reader, writer):
            writer.write(HEAD + BODY)
            await _response(reader)
            # bytes after the response, but never the start of a request (uvicorn alone
            # stops its keep-alive timer at any byte)
            writer.write(b"\r\n\r\n\r\n")
            data, _ = await _closed(reader)
    assert data == b""


@pytest.mark.asyncio
@pytest.mark.parametrize("first", [HEAD + BODY, HEALTH], ids=["lane", "application"])
async def test_the_next_head_on_a_kept_alive_connection_has_its_own_deadline(
        first: bytes) -> None:
    timeout = 0.5
    async with serving(header_timeout=timeout) as served:
        async with served.connect() as (reader, writer):
            writer.write(first)
            await _response(reader)
            await served.deadline_fired(1)  # the first head's deadline has passed
            writer.write(HEAD[:20])
            started = time.monotonic()
            data, closed = await _closed(reader)
    assert data.startswith(b"HTTP/1.1 408 ")
    assert closed - started >= timeout * 0.9  # counted from this head, not the first


@pytest.mark.asyncio
async def test_a_stalled_body_on_the_lane_is_a_408_at_the_request_timeout() -> None:
    timeout = 0.4
    async with serving(request_timeout=timeout, header_timeout=0.2) as served:
        async with served.connect() as (reader, writer):
            writer.write(HEAD + BODY)
            await _response(reader)
            writer.write(HEAD + BODY[:10])  # a body stalled past the head deadline
            started = time.monotonic()
            status, headers, body = await _response(reader)
            data, closed = await _closed(reader)
    assert status == 408 and json.loads(body)["error"] == "request_timeout"
    assert headers["connection"] == "close" and data == b""
    assert closed - started >= timeout * 0.9


@pytest.mark.asyncio
async def test_a_kept_alive_connection_in_use_is_not_closed_by_an_earlier_deadline() -> None:
    async with serving(header_timeout=0.3, keep_alive=0.3) as served:
        async with served.connect() as (reader, writer):
            answered = 0
            firings = asyncio.ensure_future(served.deadline_fired(3))  # past several deadlines
            try:
                while not firings.done():
                    writer.write(HEAD + BODY)
                    status, _, _ = await _response(reader)
                    assert status == 200
                    answered += 1
                await firings  # (raises if the deadlines never came)
            finally:
                firings.cancel()
    assert answered > 1


# -- an unexpected failure on the lane ----------------------------------------------------------


def _fail_once(monkeypatch: pytest.MonkeyPatch, target: object, name: str) -> None:
    original = getattr(target, name)
    calls = []

    def failing(self: object, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a broken check")
        return original(*args, **kwargs)

    monkeypatch.setattr(type(target), name, failing)


@pytest.mark.asyncio
@pytest.mark.parametrize("check", ["exposure", "authentication", "rate limit"])
async def test_an_unexpected_failure_of_a_check_is_a_500_and_the_connection_serves_on(
        check: str, monkeypatch: pytest.MonkeyPatch) -> None:
    key = "k" * 40
    settings: dict[str, Any] = {"rate_limit": 1000.0, "rate_limit_burst": 1000}
    headers = b""
    if check == "authentication":
        from pdp.auth.keys import entry_for
        settings["api_keys"] = [entry_for("pep", key)]
        headers = b"X-API-Key: " + key.encode() + b"\r\n"
    async with serving(**settings) as served:
        lane = served.lane
        target: object = {"exposure": lane.exposure, "authentication": lane.pep,
                          "rate limit": lane.limiter}[check]
        name = {"exposure": "refusal", "authentication": "authenticate_now",
                "rate limit": "take"}[check]
        _fail_once(monkeypatch, target, name)
        request = HEAD[:-2] + headers + b"X-Request-ID: r-1\r\n\r\n" + BODY
        async with served.connect() as (reader, writer):
            writer.write(request)
            failed = await _response(reader)
            writer.write(request)
            answered = await _response(reader)
    status, sent, body = error_parts(RuntimeError("a broken check"), "POST",
                                     "/access/v1/evaluation")
    assert failed[0] == status == 500
    assert failed[2] == body
    assert failed[1]["content-type"] == "application/json"
    assert failed[1]["cache-control"] == sent["Cache-Control"]
    assert "connection" not in failed[1]
    assert answered[0] == 200 and json.loads(answered[2]) == {"decision": True}


# -- answers on the loop's next turn ----------------------------------------------------------


class _Transport(asyncio.Transport):
    """A connection's transport that keeps what is written, closed when told."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8080)}.get(
            name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closed, "written after the connection was lost"
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


@pytest.mark.asyncio
async def test_a_lane_request_is_answered_after_the_turn_that_read_it() -> None:
    async with serving() as served:
        protocol, transport = served.protocol(), _Transport()
        protocol.connection_made(transport)
        protocol.data_received(HEAD + BODY)
        assert transport.written == []  # decided with the other connections' requests

        async def answered() -> bool:
            return len(transport.written) == 1

        await eventually(answered, message="the answer")
    assert transport.written[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.written[0].endswith(b'{"decision":true}')


@pytest.mark.asyncio
async def test_requests_read_in_one_turn_are_all_decided_before_their_answers_are_written(
        ) -> None:
    async with serving() as served:
        stats = served.lane.stats["/access/v1/evaluation"]
        before = stats.direct
        decided_at_write: list[int] = []

        class Counting(_Transport):  # how many were decided when each answer was written
            def write(self, data: bytes | bytearray | memoryview) -> None:
                decided_at_write.append(stats.direct - before)
                super().write(data)

        transports = [Counting() for _ in range(5)]
        for transport in transports:
            protocol = served.protocol()
            protocol.connection_made(transport)
            protocol.data_received(HEAD + BODY)

        async def answered() -> bool:
            return all(len(t.written) == 1 for t in transports)

        await eventually(answered, message="the five answers")
    assert decided_at_write == [5] * 5  # the client is woken once for all five
    assert all(t.written[0].endswith(b'{"decision":true}') for t in transports)


@pytest.mark.asyncio
async def test_a_request_whose_connection_is_lost_before_its_answer_is_still_decided() -> None:
    async with serving() as served:
        stats = served.lane.stats["/access/v1/evaluation"]
        before = stats.direct
        protocol, transport = served.protocol(), _Transport()
        protocol.connection_made(transport)
        protocol.data_received(HEAD + BODY)
        transport.close()
        protocol.connection_lost(None)

        async def decided() -> bool:
            return stats.direct == before + 1

        await eventually(decided, message="the decision of the request")
    assert transport.written == []  # nothing written on the lost connection


@pytest.mark.asyncio
async def test_a_fault_while_answering_closes_that_connection_and_is_logged(
        caplog: pytest.LogCaptureFixture) -> None:
    async with serving() as served:
        protocol, transport = served.protocol(), _Transport()
        protocol.connection_made(transport)

        def broken(*args: Any, **kwargs: Any) -> None:
            raise RuntimeError("a broken writer")

        protocol._direct_reply = broken  # type: ignore[method-assign]
        protocol.data_received(HEAD + BODY)

        async def closed() -> bool:
            return transport.closed

        await eventually(closed, message="the connection closed")
        async with served.connect() as (reader, writer):  # the server serves on
            writer.write(HEAD + BODY)
            status, _, body = await _response(reader)
    assert status == 200 and json.loads(body) == {"decision": True}
    assert any("answering a request on the direct lane failed" in r.getMessage()
               and r.exc_info is not None for r in caplog.records)
