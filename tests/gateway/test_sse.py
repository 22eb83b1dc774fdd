"""The incremental event-stream parser: any split of the bytes gives the same events."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pdp.gateway.sse import Event, SSEParser

STREAM = (b": keep-alive\r\n\r\n"
          b"event: message\r\nid: 1\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\n"
          b"data:no-space\n\n"
          b"retry: 10\rdata: cr only\r\r"
          b"event: other\ndata: x\n\n")
EVENTS = [Event("message", '{"a":\n1}', "1"), Event("message", "no-space", "1"),
          Event("message", "cr only", "1"), Event("other", "x", "1")]


def _parse(chunks: list[bytes]) -> list[Event]:
    parser = SSEParser()
    return [event for chunk in chunks for event in parser.feed(chunk)]


def test_whole_stream() -> None:
    assert _parse([STREAM]) == EVENTS


def test_byte_by_byte() -> None:
    assert _parse([STREAM[i:i + 1] for i in range(len(STREAM))]) == EVENTS


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_split(cuts: list[int]) -> None:
    points = [0, *sorted(cuts), len(STREAM)]
    assert _parse([STREAM[a:b] for a, b in zip(points, points[1:], strict=False)]) == EVENTS


def test_a_runaway_line_switches_the_parser_off() -> None:
    parser = SSEParser(max_line=16)
    assert parser.feed(b"data: " + b"x" * 64) == []
    assert parser.broken
    assert parser.feed(b"\n\n") == []
