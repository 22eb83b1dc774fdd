"""The gateway's HTTP/1.1 client against a scripted socket server (RFC 9112 framing and
persistent connections)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import pytest_asyncio

from pdp.errors import UpstreamError
from pdp.gateway.http1 import Http1Client
from tests.waiting import eventually


@dataclass
class Server:
    """Answers request ``n`` on connection ``c`` with ``responses[n]``: a list of byte strings,
    each after the first written only once ``release`` is set (when given); ``close_after``
    closes the connection after that many responses."""

    responses: list[list[bytes]] = field(default_factory=list)
    release: asyncio.Event | None = None
    close_after: int | None = None
    requests: list[tuple[int, bytes]] = field(default_factory=list)
    connections: int = 0
    closed: int = 0  # connections this server has closed
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        conn = self.connections
        served = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length)
                self.requests.append((conn, head + body))
                parts = self.responses[len(self.requests) - 1]
                for i, part in enumerate(parts):
                    if i and self.release is not None:
                        await self.release.wait()
                    writer.write(part)
                    await writer.drain()
                served += 1
                if self.close_after is not None and served >= self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            self.closed += 1


@pytest_asyncio.fixture
async def server() -> AsyncIterator[Server]:
    srv = Server()
    listener = await asyncio.start_server(srv.handle, "127.0.0.1", 0)
    srv.port = listener.sockets[0].getsockname()[1]
    try:
        yield srv
    finally:
        listener.close()
        await listener.wait_closed()


def _json(body: bytes, extra: bytes = b"") -> list[bytes]:
    return [b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
            + str(len(body)).encode() + b"\r\n" + extra + b"\r\n" + body]


@pytest.mark.asyncio
async def test_keep_alive_connections_are_reused(server: Server) -> None:
    server.responses = [_json(b'{"a":1}'), _json(b'{"b":2}', b"x-extra: 1\r\n")]
    client = Http1Client(f"http://127.0.0.1:{server.port}/mcp")
    try:
        first = await client.request("POST", {"content-type": "application/json"}, b"{}")
        assert first.status_code == 200 and await first.aread() == b'{"a":1}'
        second = await client.request("GET", {"accept": "text/event-stream"})
        assert second.headers["X-Extra"] == "1"
        assert await second.aread() == b'{"b":2}'
    finally:
        await client.aclose()
    assert server.connections == 1
    head = server.requests[0][1]
    assert head.startswith(b"POST /mcp HTTP/1.1\r\nhost: 127.0.0.1:")
    assert b"content-length: 2\r\n" in head and head.endswith(b"\r\n\r\n{}")


@pytest.mark.asyncio
async def test_chunked_bodies_stream_as_they_arrive(server: Server) -> None:
    server.release = asyncio.Event()
    server.responses = [[
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        b"6\r\nevent:\r\n",
        b"7\r\n data\n\n\r\n",
        b"0\r\n\r\n",
    ]]
    client = Http1Client(f"http://127.0.0.1:{server.port}/mcp")
    try:
        response = await client.request("POST", {}, b"{}")
        chunks = response.aiter_raw()
        # arrives while the server still holds the rest back (a buffering client never returns)
        first = await asyncio.wait_for(anext(chunks), timeout=10)
        assert not server.release.is_set()
        server.release.set()
        seen = [first] + [chunk async for chunk in chunks]
        assert b"".join(seen) == b"event: data\n\n"
    finally:
        await client.aclose()


@pytest.mark.asyncio
async def test_a_body_delimited_by_close(server: Server) -> None:
    server.responses = [[b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil ", b"close"]]
    server.close_after = 1
    client = Http1Client(f"http://127.0.0.1:{server.port}/")
    try:
        response = await client.request("DELETE", {})
        assert await response.aread() == b"until close"
        assert len(client._idle) == 0  # not reusable
    finally:
        await client.aclose()


@pytest.mark.asyncio
async def test_a_stale_keep_alive_connection_is_retried_once(server: Server) -> None:
    server.responses = [_json(b"1"), _json(b"2")]
    server.close_after = 1  # the server drops the connection after each answer
    client = Http1Client(f"http://127.0.0.1:{server.port}/")
    try:
        assert await (await client.request("POST", {}, b"a")).aread() == b"1"

        async def dropped() -> bool:
            return server.closed == 1

        await eventually(dropped, message="the server dropping the connection")
        assert await (await client.request("POST", {}, b"b")).aread() == b"2"
    finally:
        await client.aclose()
    assert server.connections == 2


@pytest.mark.asyncio
async def test_closing_early_drops_the_connection(server: Server) -> None:
    server.release = asyncio.Event()
    server.responses = [[b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n12345", b"67890"],
                        _json(b"ok")]
    client = Http1Client(f"http://127.0.0.1:{server.port}/")
    try:
        response = await client.request("GET", {})
        await response.aclose()  # half the body is still to come
        server.release.set()
        assert await (await client.request("GET", {})).aread() == b"ok"
    finally:
        await client.aclose()
    assert server.connections == 2


@pytest.mark.asyncio
async def test_failures_are_upstream_errors(server: Server) -> None:
    server.responses = [[b"NOT HTTP AT ALL\r\n\r\n"],
                        [b"HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\nshort"]]
    server.close_after = 1
    client = Http1Client(f"http://127.0.0.1:{server.port}/")
    try:
        with pytest.raises(UpstreamError):
            await client.request("GET", {})
        truncated = await client.request("GET", {})
        with pytest.raises(UpstreamError):
            await truncated.aread()
        with pytest.raises(UpstreamError):
            await client.request("GET", {"x-bad": "a\r\nInjected: 1"})
    finally:
        await client.aclose()
    closed = Http1Client("http://127.0.0.1:1/")
    with pytest.raises(UpstreamError):
        await closed.request("GET", {})
    with pytest.raises(ValueError):
        Http1Client("ftp://example.com/")
