"""A small HTTP/1.1 client for the gateway's hot path to the upstream MCP server (RFC 9112:
message framing, persistent connections; MCP "Transports": Streamable HTTP).

Why not httpx here: proxying a ``tools/call`` through httpx's async client costs about five
times the CPU of the rest of the gateway together (its per-request locking, tracing and model
layers), which alone would break the gateway's latency budget. This client does only what the
proxy needs, on asyncio streams with the ``httptools`` response parser uvicorn uses:

* one request per connection at a time; idle keep-alive connections are pooled per upstream;
* the request head and body go out in one write; ``Host`` and ``Content-Length`` are set here;
* the response body is read as it arrives (``Content-Length``, chunked, or until the connection
  closes) and handed out de-chunked, so ``text/event-stream`` answers stream through;
* a connection goes back to the pool only after a complete, keep-alive response; a response
  closed early closes its connection;
* a request on a reused connection that the server had already closed (no byte of an answer
  received) is retried once on a new connection, as HTTP clients do for stale keep-alives;
* ``https`` upstreams use the default TLS context (certificate and host name verified).

Failures raise :class:`~pdp.errors.UpstreamError`.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import deque
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from typing import Final
from urllib.parse import urlsplit

import httptools

from pdp.errors import UpstreamError

__all__ = ["Http1Client", "Http1Response", "Headers"]

log = logging.getLogger("pdp.gateway")

_READ_SIZE: Final = 65_536
_MAX_HEAD: Final = 64 * 1024


class Headers(Mapping[str, str]):
    """Response headers by lowercase name (repeated headers joined with ``, ``)."""

    __slots__ = ("_items",)

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        items: dict[str, str] = {}
        for name, value in pairs:
            key = name.lower()
            items[key] = f"{items[key]}, {value}" if key in items else value
        self._items = items

    def __getitem__(self, key: str) -> str:
        return self._items[key.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


class _Connection:
    __slots__ = ("reader", "writer", "reused")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.reused = False

    def close(self) -> None:
        if not self.writer.is_closing():
            self.writer.close()


class _Parser:
    """httptools callbacks: the status line and headers, then body chunks."""

    __slots__ = ("raw_headers", "chunks", "headers_done", "complete")

    def __init__(self) -> None:
        self.raw_headers: list[tuple[str, str]] = []
        self.chunks: deque[bytes] = deque()
        self.headers_done = False
        self.complete = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.raw_headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.complete = True


class Http1Response:
    """A response whose body has not been read yet."""

    def __init__(self, client: Http1Client, conn: _Connection, parser: _Parser,
                 http: httptools.HttpResponseParser) -> None:
        self._client = client
        self._conn: _Connection | None = conn
        self._parser = parser
        self._http = http
        self.status_code: int = http.get_status_code()
        self.headers = Headers(parser.raw_headers)
        self._until_close = ("content-length" not in self.headers
                             and "chunked" not in (self.headers.get("transfer-encoding") or ""))
        self._closed_by_peer = False

    async def _fill(self) -> None:
        conn = self._conn
        if conn is None:
            raise UpstreamError("the upstream response was already closed")
        try:
            data = await conn.reader.read(_READ_SIZE)
        except (OSError, ssl.SSLError) as exc:
            raise UpstreamError(f"the upstream connection failed: {exc.__class__.__name__}") \
                from None
        if not data:
            if self._until_close:
                self._parser.complete = True
                self._closed_by_peer = True
                return
            raise UpstreamError("the upstream closed the connection mid-response")
        try:
            self._http.feed_data(data)
        except httptools.HttpParserError:
            raise UpstreamError("the upstream sent a malformed HTTP response") from None

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        """The body as it arrives (de-chunked); the connection is released at the end."""
        parser = self._parser
        try:
            while True:
                while parser.chunks:
                    yield parser.chunks.popleft()
                if parser.complete:
                    break
                await self._fill()
        finally:
            await self.aclose()

    async def aread(self) -> bytes:
        return b"".join([chunk async for chunk in self.aiter_raw()])

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        reusable = self._parser.complete and not self._closed_by_peer and self._keep_alive()
        self._client._release(conn, reusable)

    def _keep_alive(self) -> bool:
        tokens = {t.strip().lower() for t in (self.headers.get("connection") or "").split(",")}
        if "close" in tokens or "upgrade" in tokens:
            return False
        return self._http.get_http_version() == "1.1" or "keep-alive" in tokens


class Http1Client:
    """Requests to one origin (``scheme://host:port``) over pooled connections."""

    def __init__(self, url: str, *, connect_timeout: float = 10.0, max_idle: int = 64,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        default_port = self.port == (443 if parts.scheme == "https" else 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.authority = host if default_port else f"{host}:{self.port}"
        self.ssl = (ssl_context or ssl.create_default_context()) if parts.scheme == "https" \
            else None
        self.connect_timeout = connect_timeout
        self.max_idle = max_idle
        self._idle: deque[_Connection] = deque()
        self._closed = False

    async def _connect(self) -> _Connection:
        try:
            async with asyncio.timeout(self.connect_timeout):
                reader, writer = await asyncio.open_connection(
                    self.host, self.port, ssl=self.ssl, limit=_READ_SIZE,
                    server_hostname=self.host if self.ssl else None)
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            raise UpstreamError(f"cannot connect to the upstream: {exc.__class__.__name__}") \
                from None
        return _Connection(reader, writer)

    def _take(self) -> _Connection | None:
        while self._idle:
            conn = self._idle.pop()
            if conn.writer.is_closing() or conn.reader.at_eof():
                conn.close()
                continue
            conn.reused = True
            return conn
        return None

    def _release(self, conn: _Connection, reusable: bool) -> None:
        if reusable and not self._closed and len(self._idle) < self.max_idle:
            self._idle.append(conn)
        else:
            conn.close()

    def _head(self, method: str, headers: Mapping[str, str], body: bytes | None) -> bytes:
        lines = [f"{method} {self.target} HTTP/1.1", f"host: {self.authority}"]
        for name, value in headers.items():
            key = name.lower()
            if key in ("host", "content-length", "transfer-encoding", "connection"):
                continue
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
                raise UpstreamError(f"refusing a header with a line break: {name}")
            lines.append(f"{name}: {value}")
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"content-length: {len(body or b'')}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def request(self, method: str, headers: Mapping[str, str],
                      body: bytes | None = None) -> Http1Response:
        """Send the request; return once the response head has arrived."""
        if self._closed:
            raise UpstreamError("the upstream client is closed")
        payload = self._head(method, headers, body) + (body or b"")
        for attempt in (0, 1):
            conn = self._take() if attempt == 0 else None
            if conn is None:
                conn = await self._connect()
            parser = _Parser()
            http = httptools.HttpResponseParser(parser)
            received = 0
            try:
                conn.writer.write(payload)
                await conn.writer.drain()
                while not parser.headers_done:
                    data = await conn.reader.read(_READ_SIZE)
                    if not data:
                        raise ConnectionResetError("closed before a response")
                    received += len(data)
                    if received > _MAX_HEAD and not parser.headers_done:
                        raise UpstreamError("the upstream's response head is too large")
                    http.feed_data(data)
            except (OSError, ssl.SSLError) as exc:
                conn.close()
                if conn.reused and received == 0 and attempt == 0:
                    log.debug("stale upstream connection; retrying on a new one")
                    continue
                raise UpstreamError(f"the upstream connection failed: "
                                    f"{exc.__class__.__name__}") from None
            except httptools.HttpParserError:
                conn.close()
                raise UpstreamError("the upstream sent a malformed HTTP response") from None
            except BaseException:
                conn.close()
                raise
            return Http1Response(self, conn, parser, http)
        raise UpstreamError("the upstream connection failed")  # pragma: no cover

    async def aclose(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().close()
