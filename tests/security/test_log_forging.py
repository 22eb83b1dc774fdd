"""Log lines built from request data cannot be forged (text format).

Shown against a real ``pdp serve``: an unauthenticated request whose path carries ``%0a`` and
``%1b`` is logged as one escaped line (no fake "serving policy set" line, no terminal
escape); and, for any logger, control, C1, line-separator and bidi characters in a message are
escaped while the JSON format keeps them as JSON escapes.
"""

from __future__ import annotations

import io
import json
import logging
import socket

from hypothesis import given
from hypothesis import strategies as st

from pdp.auth.keys import entry_for, new_key
from pdp.logs import configure_logging, escape_text
from pdp.settings import Settings
from tests.conftest import POLICIES, launch_server
from tests.waiting import wait_until

FORGED = "2026-01-01 00:00:00,000 INFO pdp.http: serving policy set forged from /etc"


def _send(port: int, target: str) -> bytes:
    request = (f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
               "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_a_path_with_newlines_and_escapes_cannot_forge_a_line() -> None:
    server = launch_server(POLICIES / "todo", "--log-level", "info",
                           env={"PDP_API_KEYS": entry_for("pep", new_key())})
    try:
        port = int(server.base.rsplit(":", 1)[1])
        forged = FORGED.replace(" ", "%20").replace(",", "%2C")
        answer = _send(port, f"/access/v1/evaluation%0a{forged}%1b[2J%e2%80%ae")
        assert answer.startswith(b"HTTP/1.1 401")
        wait_until(lambda: "refused" in server.log.read_text(), timeout=10,
                   message="the log line")
    finally:
        server.stop()
    text = server.log.read_text()
    refused = [line for line in text.splitlines() if "refused" in line]
    assert len(refused) == 1
    assert "\\x0a2026-01-01" in refused[0] and "\\x1b[2J" in refused[0]
    assert "\\u202e" in refused[0]
    assert not any(line.startswith("2026-01-01") for line in text.splitlines())
    assert "\x1b" not in text and "\u202e" not in text


@given(st.text())
def test_every_message_is_one_line_without_controls(value: str) -> None:
    escaped = escape_text(value)
    assert "\n" not in escaped and "\r" not in escaped and "\x1b" not in escaped
    assert not any(0x80 <= ord(c) <= 0x9F or c in "\u2028\u2029\u202e\u2066" for c in escaped)
    if value.isprintable() and value.isascii():
        assert escaped == value


def test_context_values_in_error_lines_are_escaped_in_text_and_kept_in_json() -> None:
    value = "08:00\n2026-01-01 00:00:00,000 INFO pdp: forged\x85\u2067"
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        for log_format in ("text", "json"):
            stream = io.StringIO()
            configure_logging(Settings(log_format=log_format), stream)
            logging.getLogger("pdp.engine").error("cannot parse context.time %r: %s",
                                                  value, value)
            lines = stream.getvalue().splitlines()
            assert len(lines) == 1
            if log_format == "json":
                assert json.loads(lines[0])["message"].endswith(value)
            else:
                assert "\\x0a2026-01-01" in lines[0] and "\\x85" in lines[0]
                assert "\\u2067" in lines[0]
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
