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

:class:`GuardedConfig` is the uvicorn configuration that carries the two limits and selects
this protocol (a class at module level, so that worker processes can unpickle it).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

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
        between = self.cycle is None or self.cycle.response_complete
        if between and self._begun and self._in_head:
            self._stopping = True  # a request is arriving: answer it, then close
            return
        super().shutdown()
