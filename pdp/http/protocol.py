"""uvicorn's httptools HTTP/1.1 protocol with the bounds it lacks (``pdp serve``).

* **Head deadline** (``PDP_HEADER_TIMEOUT``): a request head (request line and headers) must
  arrive whole within this many seconds of the connection opening, or of its first byte on a
  kept-alive connection; otherwise the connection is closed (after a 408 if any of it came).
  uvicorn alone waits forever for a head sent a byte at a time (slowloris).
* **Head size** (``PDP_MAX_HEADER_BYTES``): a longer request line plus headers is answered
  431 and the connection closed.
* **Keep-alive**: a connection waiting for its next request is closed after uvicorn's
  keep-alive timeout from the last response, whatever bytes arrive that begin no request
  (uvicorn alone waits forever for a client sending blank lines).
* **One deadline per connection**: the head's, the body's on the direct lane or the
  keep-alive wait, whichever applies; one timer serves them all (see ``_deadline``).
* **Graceful stop**: at SIGTERM uvicorn closes every connection not inside a request; one
  whose next request has begun arriving (part of its head is here) is kept until that request
  is answered, within the head deadline and ``PDP_SHUTDOWN_TIMEOUT``.
* **The direct lane**: ``POST`` to the decision endpoints is answered here, from the parsed
  bytes, by the application's :class:`~pdp.http.direct.DirectLane` (its checks and why are
  described there); anything the lane declines goes to the application through ASGI.
* **Answers on the loop's next turn**: a lane request whose body is in is answered by one
  callback (``loop.call_soon``) for the whole server, not while its bytes are being read.
  The requests that every connection brought in one turn of the loop are then decided one
  after another, with the decision's code and data still in the processor's caches, instead
  of each between two reads of the network; then their answers are written one after
  another (32 at most are decided before they are written). A client waiting on many
  connections is so woken once for many answers: waking a process on another CPU costs the
  writer a few microseconds (an interprocessor interrupt, dearer on a virtual machine), as
  much as a third of a decision when paid for every answer. The wait is the rest of that
  turn and the decisions before the answer is written. A request pipelined behind it on the
  same connection has it answered first; one whose connection is lost meanwhile is still
  decided (and logged), with nothing written.

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


#: What the connection's one deadline is for: nothing, a request head, a body the direct lane
#: is reading, the wait for the next request on a kept-alive connection.
_NONE, _HEAD, _BODY, _IDLE = 0, 1, 2, 3
#: A timer may fire this much before its time (the loops count in milliseconds).
_EARLY = 0.001

_TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, config: uvicorn.Config, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._head_timeout = float(getattr(config, "header_timeout", DEFAULT_HEADER_TIMEOUT))
        self._max_head = int(getattr(config, "max_header_bytes", DEFAULT_MAX_HEADER_BYTES))
        self._head_bytes = 0
        self._in_head = False
        self._too_large = False
        self._begun = False  # a request's first bytes are here, its response is not sent
        self._stopping = False
        self._lane = _lane_of(config)
        self._turn = _turn_of(server_state, self.loop)
        self._direct: DirectRequest | None = None  # a request the lane is collecting
        self._ready: DirectRequest | None = None  # its body is in: answered on the next turn
        self._direct_keep_alive = True
        self._direct_done = False  # answered early (413, 408): the rest of it is dropped
        # the connection's one deadline: what it is for, when it is due, and the one timer,
        # armed at or before that (see _deadline)
        self._due_kind = _NONE
        self._due = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        # server_state.default_headers (a new list each second: the date), as written
        self._defaults: list[tuple[bytes, bytes]] | None = None
        self._defaults_head = b""

    # -- the connection's deadline ----------------------------------------------------------
    #
    # One at a time applies: the head's (PDP_HEADER_TIMEOUT, from the connection's opening or
    # the request's first byte), the body's on the direct lane (the endpoint's timeout, from
    # the end of its head), or the keep-alive wait for the next request (uvicorn's
    # timeout_keep_alive, from the last response). Moving it costs no timer: the one timer
    # fires at or before the due time, and re-arms itself for the due time if it moved on.

    def _wait(self, kind: int, seconds: float) -> None:
        """From now, ``kind``'s deadline applies, due ``seconds`` from now."""
        due = self.loop.time() + seconds
        self._due_kind = kind
        self._due = due
        timer = self._timer
        if timer is None or due < self._timer_at:
            if timer is not None:
                timer.cancel()
            self._timer = self.loop.call_at(due, self._deadline)
            self._timer_at = due

    def _deadline(self) -> None:
        self._timer = None
        kind = self._due_kind
        if kind == _NONE or self.transport.is_closing():
            return
        due = self._due
        if due - self.loop.time() > _EARLY:  # moved on since the timer was armed
            self._timer = self.loop.call_at(due, self._deadline)
            self._timer_at = due
            return
        self._due_kind = _NONE
        if kind == _HEAD:  # after a 408 if any of the head came
            if self._begun:
                self.transport.write(_TIMED_OUT)
            self.transport.close()
        elif kind == _BODY:
            direct, lane = self._direct, self._lane
            if direct is not None and not self._direct_done and lane is not None:
                self._direct_reply(lane.expired(direct), close=True)
        else:  # idle past the keep-alive timeout
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._in_head = True
        self._head_bytes = 0
        self._wait(_HEAD, self._head_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._due_kind = _NONE
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._direct = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # uvicorn's, without its keep-alive timer (never armed here: see _deadline)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        direct = self._direct
        if direct is not None and self._due_kind != _BODY and not self._direct_done:
            # the body is still arriving: bounded like the application's body reads
            self._wait(_BODY, direct.timeout)

    # -- the head: its deadline and size ----------------------------------------------------

    def on_message_begin(self) -> None:
        # uvicorn's, but the scope is made once the head is in (by the lane or for ASGI)
        if self._ready is not None:  # pipelined: the request before it is answered first
            self._answer()
        self.url = b""
        self.expect_100_continue = False
        self.headers = []
        self._head_bytes = 0
        self._begun = True
        if not self._in_head:  # the next request on a kept-alive connection
            self._in_head = True
            self._wait(_HEAD, self._head_timeout)

    def on_url(self, url: bytes) -> None:
        size = self._head_bytes + len(url)
        self._head_bytes = size
        if size > self._max_head:
            self._too_large = True
            raise _HeadTooLarge
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        size = self._head_bytes + len(name) + len(value) + 4
        self._head_bytes = size
        if size > self._max_head:
            self._too_large = True
            raise _HeadTooLarge
        name = name.lower()  # uvicorn's, from here
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._due_kind = _NONE
        lane = self._lane
        if lane is not None and self._take_direct(lane):
            return
        self.scope = {  # type: ignore[typeddict-item]  # uvicorn's on_message_begin's
            "type": "http",
            "asgi": {"version": self.asgi_version, "spec_version": "2.3"},
            "http_version": "1.1",
            "server": self.server,
            "client": self.client,
            "scheme": self.scheme,  # type: ignore[typeddict-item]
            "root_path": self.root_path,
            "headers": self.headers,
            "state": self.app_state.copy(),
        }
        super().on_headers_complete()
        if self._stopping and self.cycle is not None:
            self.cycle.keep_alive = False  # answer it, then close

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a parser error; a head over the limit is a 431 instead."""
        if not self._too_large:
            super().send_400_response(msg)
            return
        self._due_kind = _NONE
        text = f"the request head is larger than {self._max_head} bytes"
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: text/plain; charset=utf-8\r\n"
            + f"content-length: {len(text)}\r\n".encode()
            + b"connection: close\r\n\r\n" + text.encode())
        self.transport.close()

    # -- responses, graceful stop -----------------------------------------------------------

    def on_response_complete(self) -> None:
        # uvicorn's (for the lane and ASGI alike), the keep-alive wait as the deadline
        self._begun = False
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        elif not self._in_head:  # (the next head, already arriving, keeps its deadline)
            self._wait(_IDLE, self.timeout_keep_alive)

    def shutdown(self) -> None:
        if self._direct is not None or self._ready is not None:
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
        path = self.url
        query = b""
        if path not in lane.endpoints:  # (an endpoint's path is its own parsed path)
            parsed = httptools.parse_url(path)
            path = parsed.path
            if path not in lane.endpoints:
                return False
            query = parsed.query or b""
        version = parser.get_http_version()
        scope: Any = {
            "type": "http", "http_version": version, "server": self.server,
            "client": self.client, "scheme": self.scheme, "root_path": self.root_path,
            "headers": self.headers, "state": self.app_state.copy(), "method": "POST",
            "path": path.decode("ascii"), "raw_path": path, "query_string": query}
        admitted = lane.admit(scope, path)
        if admitted is None:
            return False
        self.scope = scope
        self._direct_keep_alive = version != "1.0" and parser.should_keep_alive()
        self._direct_done = False
        self._direct = admitted
        if admitted.at_once:
            self._direct_reply(lane.respond(admitted), close=True)
        return True

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
        self._due_kind = _NONE
        if self._direct_done:
            self.on_response_complete()
            return
        self._ready = direct
        self._turn.add(self)

    def _answer(self) -> None:
        """Answer the request whose body is in, now (one pipelined behind it has begun)."""
        reply = self._decide()
        if reply is not None:
            self._send(reply)

    def _decide(self) -> Reply | None:
        """The reply to the request whose body is in (None: none is waiting, or its
        connection is gone: then it is still decided and logged, and nothing is written)."""
        direct = self._ready
        if direct is None:
            return None
        self._ready = None
        assert self._lane is not None
        try:
            reply = self._lane.respond(direct)  # decided (and logged) even if the client left
        except Exception:  # a fault here, not in the decision (respond answers those)
            log.exception("answering a request on the direct lane failed")
            self.transport.close()
            return None
        return None if self.transport.is_closing() else reply

    def _send(self, reply: Reply) -> None:
        try:
            self._direct_reply(reply, close=False)
            self.on_response_complete()
        except Exception:
            log.exception("answering a request on the direct lane failed")
            self.transport.close()

    def _direct_reply(self, reply: Reply, *, close: bool) -> None:
        status, headers, body = reply
        self._direct_done = True
        close = close or self._stopping or not self._direct_keep_alive
        defaults = self.server_state.default_headers
        if defaults is not self._defaults:
            self._defaults = defaults
            self._defaults_head = b"".join(b"%s: %s\r\n" % header for header in defaults)
        parts = [STATUS_LINE[status], self._defaults_head]
        for name, value in headers:
            parts += [name, b": ", value, b"\r\n"]
        parts += [b"content-length: ", str(len(body)).encode(), b"\r\n"]
        if close:
            parts.append(b"connection: close\r\n")
        parts += [b"\r\n", body]
        self.transport.write(b"".join(parts))
        if close:
            self.transport.close()
        elif self.flow.write_paused:  # the client is not reading: stop reading its requests
            self.flow.pause_reading()

    def resume_writing(self) -> None:
        super().resume_writing()
        if self.cycle is None or self.cycle.response_complete:
            self.flow.resume_reading()


#: At most this many answers are decided before they are written (see _Turn).
_TOGETHER = 32


class _Turn:
    """The lane requests whose bodies came in during one turn of the loop, shared by the
    server's connections. On the next turn they are decided one after another, then their
    answers are written one after another, ``_TOGETHER`` at a time: a client waiting for
    several of them is woken once for the lot, not between two decisions for each."""

    __slots__ = ("loop", "_waiting")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._waiting: list[GuardedHttpToolsProtocol] = []

    def add(self, protocol: GuardedHttpToolsProtocol) -> None:
        waiting = self._waiting
        waiting.append(protocol)
        if len(waiting) == 1:
            self.loop.call_soon(self._run)

    def _run(self) -> None:
        waiting = self._waiting
        self._waiting = []
        for start in range(0, len(waiting), _TOGETHER):
            group = waiting[start:start + _TOGETHER]
            replies = [protocol._decide() for protocol in group]
            for protocol, reply in zip(group, replies, strict=True):
                if reply is not None:
                    protocol._send(reply)


def _turn_of(server_state: Any, loop: asyncio.AbstractEventLoop) -> _Turn:
    """The server's :class:`_Turn` (uvicorn's ``ServerState`` is what its connections
    share)."""
    turn = getattr(server_state, "pdp_turn", None)
    if turn is None or turn.loop is not loop:
        turn = _Turn(loop)
        server_state.pdp_turn = turn
    return turn


def _lane_of(config: uvicorn.Config) -> DirectLane | None:
    """The loaded application's direct lane, if the application is served as it was built."""
    if config.root_path or config.limit_concurrency is not None:
        return None
    lane = getattr(config.loaded_app, "direct_lane", None)
    return lane if isinstance(lane, DirectLane) else None
