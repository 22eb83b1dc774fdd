"""uvicorn's httptools HTTP/1.1 protocol with the bounds it lacks (``pdp serve``).

* **Head deadline** (``PDP_HEADER_TIMEOUT``): a request head (request line and headers) must
  arrive whole within this many seconds of the connection opening, or of its first byte on a
  kept-alive connection; otherwise the connection is closed (after a 408 if any of it came).
  uvicorn alone waits forever for a head sent a byte at a time (slowloris).
* **Head size** (``PDP_MAX_HEADER_BYTES``): a longer request line plus headers is answered
  431 and the connection closed.
* **Graceful stop**: at SIGTERM uvicorn closes every connection not inside a request; one
  whose next request has begun arriving (part of its head is here) is kept until that request
  is answered, within the head deadline and ``PDP_SHUTDOWN_TIMEOUT``.
* **The direct lane**: ``POST`` to the decision endpoints is answered here, from the parsed
  bytes, by the application's :class:`~pdp.http.direct.DirectLane` (its checks and why are
  described there); anything the lane declines goes to the application through ASGI.

:class:`GuardedConfig` is the uvicorn configuration that carries the two limits and selects
this protocol (a class at module level, so that worker processes can unpickle it).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from pdp.http.direct import DirectLane, DirectRequest, Reply

__all__ = ["GuardedConfig", "GuardedHttpToolsProtocol"]

log = logging.getLogger("pdp.http")

DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_MAX_HEADER_BYTES = 32_768


class _HeadTooLarge(Exception):
    pass


class GuardedConfig(uvicorn.Config):
    def __init__(self, app: Any, *, header_timeout: float = DEFAULT_HEADER_TIMEOUT,
                 max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES, **options: Any) -> None:
        super().__init__(app, http=GuardedHttpToolsProtocol, **options)
        self.header_timeout = header_timeout
        self.max_header_bytes = max_header_bytes


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, config: uvicorn.Config, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._head_timeout = float(getattr(config, "header_timeout", DEFAULT_HEADER_TIMEOUT))
        self._max_head = int(getattr(config, "max_header_bytes", DEFAULT_MAX_HEADER_BYTES))
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._in_head = False
        self._too_large = False
        self._begun = False  # a request's first bytes are here, its response is not sent
        self._stopping = False
        self._lane = _lane_of(config)
        self._direct: DirectRequest | None = None  # a request the lane is collecting
        self._direct_keep_alive = True
        self._direct_done = False  # answered early (413, 408): the rest of it is dropped
        self._direct_timer: asyncio.TimerHandle | None = None

    # -- the head deadline ------------------------------------------------------------------

    def _start_head(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self._head_timeout, self._head_expired)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_expired(self) -> None:
        self._head_timer = None
        if not self._in_head or self.transport.is_closing():
            return
        if self._begun:
            self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n"
                                 b"connection: close\r\n\r\n")
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        self._cancel_direct_timer()
        self._direct = None
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._begun = True
        if not self._in_head:  # the next request on a kept-alive connection
            self._start_head()

    # -- the head size ----------------------------------------------------------------------

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self._max_head:
            self._too_large = True
            raise _HeadTooLarge

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._cancel_head_timer()
        if self._lane is not None and self._take_direct(self._lane):
            return
        super().on_headers_complete()
        if self._stopping and self.cycle is not None:
            self.cycle.keep_alive = False  # answer it, then close

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a parser error; a head over the limit is a 431 instead."""
        if not self._too_large:
            super().send_400_response(msg)
            return
        self._cancel_head_timer()
        text = f"the request head is larger than {self._max_head} bytes"
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: text/plain; charset=utf-8\r\n"
            + f"content-length: {len(text)}\r\n".encode()
            + b"connection: close\r\n\r\n" + text.encode())
        self.transport.close()

    # -- graceful stop ----------------------------------------------------------------------

    def on_response_complete(self) -> None:
        self._begun = False
        super().on_response_complete()

    def shutdown(self) -> None:
        if self._direct is not None:
            self._stopping = True  # the lane is reading a request: answer it, then close
            return
        between = self.cycle is None or self.cycle.response_complete
        if between and self._begun and self._in_head:
            self._stopping = True  # a request is arriving: answer it, then close
            return
        super().shutdown()

    # -- the direct lane --------------------------------------------------------------------

    def _take_direct(self, lane: DirectLane) -> bool:
        """Whether the lane takes the request whose head just ended (else the application
        answers it, through ASGI)."""
        parser = self.parser
        if (parser.get_method() != b"POST" or self.expect_100_continue
                or parser.should_upgrade() or self.pipeline
                or (self.cycle is not None and not self.cycle.response_complete)):
            return False
        parsed = httptools.parse_url(self.url)
        path: bytes = parsed.path
        if path not in lane.endpoints:
            return False
        scope: Any = self.scope
        version = parser.get_http_version()
        scope["method"] = "POST"
        if version != "1.1":
            scope["http_version"] = version
        scope["path"] = path.decode("ascii")
        scope["raw_path"] = path
        scope["query_string"] = parsed.query or b""
        admitted = lane.admit(scope, path)
        if admitted is None:
            return False
        self._direct_keep_alive = version != "1.0" and parser.should_keep_alive()
        self._direct_done = False
        self._direct = admitted
        if admitted.at_once:
            self._direct_reply(lane.respond(admitted), close=True)
        return True

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._direct is not None and self._direct_timer is None and not self._direct_done:
            # the body is still arriving: bounded like the application's body reads
            self._direct_timer = self.loop.call_later(self._direct.timeout,
                                                      self._direct_expired)

    def on_body(self, body: bytes) -> None:
        direct = self._direct
        if direct is None:
            super().on_body(body)
            return
        if self._direct_done or self._lane is None:
            return
        refusal = self._lane.receive(direct, body)
        if refusal is not None:
            self._direct_reply(refusal, close=True)

    def on_message_complete(self) -> None:
        direct = self._direct
        if direct is None:
            super().on_message_complete()
            return
        self._direct = None
        self._cancel_direct_timer()
        if self._direct_done:  # answered already
            self.on_response_complete()
            return
        assert self._lane is not None
        self._direct_reply(self._lane.respond(direct), close=False)
        self.on_response_complete()

    def _direct_expired(self) -> None:
        self._direct_timer = None
        if self._direct is None or self._direct_done or self._lane is None:
            return
        self._direct_reply(self._lane.expired(self._direct), close=True)

    def _cancel_direct_timer(self) -> None:
        if self._direct_timer is not None:
            self._direct_timer.cancel()
            self._direct_timer = None

    def _direct_reply(self, reply: Reply, *, close: bool) -> None:
        status, headers, body = reply
        self._direct_done = True
        close = close or self._stopping or not self._direct_keep_alive
        parts = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            parts += [name, b": ", value, b"\r\n"]
        for name, value in headers:
            parts += [name, b": ", value, b"\r\n"]
        parts += [b"content-length: ", str(len(body)).encode(), b"\r\n"]
        if close:
            parts.append(b"connection: close\r\n")
        parts += [b"\r\n", body]
        self.transport.write(b"".join(parts))
        if close:
            self._cancel_direct_timer()
            self.transport.close()
        elif self.flow.write_paused:  # the client is not reading: stop reading its requests
            self.flow.pause_reading()

    def resume_writing(self) -> None:
        super().resume_writing()
        if self.cycle is None or self.cycle.response_complete:
            self.flow.resume_reading()


def _lane_of(config: uvicorn.Config) -> DirectLane | None:
    """The loaded application's direct lane, if the application is served as it was built."""
    if config.root_path or config.limit_concurrency is not None:
        return None
    lane = getattr(config.loaded_app, "direct_lane", None)
    return lane if isinstance(lane, DirectLane) else None
