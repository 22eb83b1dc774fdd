"""An incremental ``text/event-stream`` parser (WHATWG HTML, "Server-sent events", 9.2.6
interpreting an event stream), used to read MCP messages out of a stream the gateway passes
through unchanged.

Bytes are fed as they arrive; complete events come out. Lines end in CRLF, LF or CR; ``data``
lines of one event are joined with LF; comments and unknown fields are ignored; an event is
dispatched at a blank line. A line longer than ``max_line`` bytes (a runaway stream) switches
the parser off: it then reports nothing, while the stream itself still flows.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Event", "SSEParser"]


@dataclass(frozen=True, slots=True)
class Event:
    event: str
    data: str
    id: str | None = None


class SSEParser:
    __slots__ = ("_buffer", "_data", "_event", "_id", "_pending_cr", "_max_line", "broken")

    def __init__(self, max_line: int = 16 * 1024 * 1024) -> None:
        self._buffer = bytearray()
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self._pending_cr = False
        self._max_line = max_line
        self.broken = False

    def feed(self, chunk: bytes) -> list[Event]:
        if self.broken or not chunk:
            return []
        if self._pending_cr and chunk[:1] == b"\n":
            chunk = chunk[1:]  # the LF of a CRLF split across chunks
        self._pending_cr = False
        self._buffer += chunk
        events: list[Event] = []
        start = 0
        buffer = self._buffer
        size = len(buffer)
        while start < size:
            lf = buffer.find(b"\n", start)
            cr = buffer.find(b"\r", start, lf if lf >= 0 else size)
            if cr >= 0:
                end, nxt = cr, cr + 1
                if nxt < size and buffer[nxt] == 0x0A:
                    nxt += 1
                elif nxt == size:
                    self._pending_cr = True
            elif lf >= 0:
                end, nxt = lf, lf + 1
            else:
                break
            event = self._line(bytes(buffer[start:end]).decode("utf-8", "replace"))
            if event is not None:
                events.append(event)
            start = nxt
        del buffer[:start]
        if len(buffer) > self._max_line:
            self.broken = True
            buffer.clear()
        return events

    def _line(self, line: str) -> Event | None:
        if not line:
            if not self._data and not self._event:
                return None
            event = Event(self._event or "message", "\n".join(self._data), self._id)
            self._data, self._event = [], ""
            return event
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        return None
