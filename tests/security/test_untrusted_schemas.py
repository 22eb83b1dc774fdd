"""A tool's ``inputSchema`` comes from the MCP server: hostile input.

Shown: a ``$ref`` to a file or a URL is refused as a malformed tool (-32602, naming the
reference) without the file being opened or the URL being asked for; local references
(``#/$defs/...``) still work; ``pattern`` and ``patternProperties`` run on a linear-time engine,
so a catastrophic-backtracking pattern answers at once, and a pattern that engine cannot run
(a backreference) is a malformed tool; oversized and overly deep schemas are refused.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pdp.coaz import Deny, Evaluate, ToolCatalog, map_message
from pdp.coaz.arguments import MAX_SCHEMA_BYTES, MAX_SCHEMA_DEPTH

CLAIMS = {"iss": "https://as.example.com", "sub": "alice", "client_id": "agent"}
DEADLINE = 30.0  # generous: a linear-time answer takes milliseconds, a backtracking one years


def _tool(schema: dict[str, Any], name: str = "t") -> dict[str, Any]:
    return {"name": name, "inputSchema": {"type": "object", **schema}}


def _call(catalog: ToolCatalog, arguments: dict[str, Any], name: str = "t") -> Any:
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
               "params": {"name": name, "arguments": arguments}}
    return map_message(message, CLAIMS, catalog)


def _decide_within_deadline(schema: dict[str, Any], arguments: dict[str, Any]) -> Any:
    """Compile and call in a worker thread; the answer, or a failure past the deadline."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        future = pool.submit(lambda: _call(ToolCatalog.from_tools_list([_tool(schema)]),
                                           arguments))
        return future.result(timeout=DEADLINE)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


class _Counting(BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        type(self).requests.append(self.path)
        body = b'{"type": "string", "maxLength": 1}'
        self.send_response(200)
        self.send_header("Content-Type", "application/schema+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def schema_server() -> Iterator[tuple[str, list[str]]]:
    handler = type("Handler", (_Counting,), {"requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/schema.json", handler.requests
    finally:
        server.shutdown()
        server.server_close()


def test_an_http_ref_is_refused_without_a_request(schema_server: tuple[str, list[str]]
                                                  ) -> None:
    url, requests = schema_server
    schema = {"properties": {"a": {"$ref": url}}}
    outcome = _decide_within_deadline(schema, {"a": "long value"})
    assert isinstance(outcome, Deny)
    assert outcome.code == -32602
    assert "$ref" in outcome.message and url in outcome.message
    assert requests == []


def test_a_file_ref_is_refused_without_opening_the_file(tmp_path: Path) -> None:
    # A FIFO with no writer: opening it to read would block, so the deadline would pass.
    fifo = tmp_path / "schema.json"
    os.mkfifo(fifo)
    for ref in (fifo.as_uri(), fifo.as_uri() + "#/definitions/x", "other.json#/x"):
        outcome = _decide_within_deadline({"properties": {"a": {"$ref": ref}}}, {"a": "v"})
        assert isinstance(outcome, Deny) and outcome.code == -32602, ref
        assert "$ref" in outcome.message and ref in outcome.message


def test_an_id_does_not_turn_a_local_ref_into_a_remote_one(
        schema_server: tuple[str, list[str]]) -> None:
    url, requests = schema_server
    schema = {"properties": {"a": {"$id": url, "$ref": "#/$defs/missing"}}}
    outcome = _decide_within_deadline(schema, {"a": "v"})
    assert isinstance(outcome, Deny) and outcome.code == -32602
    assert requests == []


def test_local_refs_still_validate() -> None:
    schema = {"$defs": {"short": {"type": "string", "maxLength": 3}},
              "properties": {"a": {"$ref": "#/$defs/short"}}}
    catalog = ToolCatalog.from_tools_list([_tool(schema)])
    assert catalog.problems == ()
    assert isinstance(_call(catalog, {"a": "abc"}), Evaluate)
    too_long = _call(catalog, {"a": "abcd"})
    assert isinstance(too_long, Deny) and too_long.code == -32602


def test_a_backtracking_pattern_is_answered_promptly() -> None:
    outcome = _decide_within_deadline(
        {"properties": {"a": {"type": "string", "pattern": "^(a+)+$"}}}, {"a": "a" * 40 + "!"})
    assert isinstance(outcome, Deny) and outcome.code == -32602
    assert "does not match" in outcome.message
    matched = _decide_within_deadline(
        {"properties": {"a": {"type": "string", "pattern": "^(a+)+$"}}}, {"a": "a" * 40})
    assert isinstance(matched, Evaluate)


def test_a_backtracking_pattern_property_is_answered_promptly() -> None:
    schema = {"patternProperties": {"^(a+)+$": {"type": "integer"}}}
    outcome = _decide_within_deadline(schema, {"a" * 40 + "!": "x", "aaa": 1})
    assert isinstance(outcome, Evaluate)  # the long key does not match: no constraint on it
    refused = _decide_within_deadline(schema, {"aaa": "not an integer"})
    assert isinstance(refused, Deny) and refused.code == -32602


def test_a_pattern_the_linear_engine_cannot_run_is_a_malformed_tool() -> None:
    catalog = ToolCatalog.from_tools_list([_tool(
        {"properties": {"a": {"type": "string", "pattern": "^(a)\\1$"}}})])
    assert len(catalog.problems) == 1
    assert "pattern" in catalog.problems[0].message
    outcome = _call(catalog, {"a": "aa"})
    assert isinstance(outcome, Deny) and outcome.code == -32602


def test_schemas_too_large_or_too_deep_are_malformed_tools() -> None:
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(MAX_SCHEMA_DEPTH + 1):
        deep = {"type": "object", "properties": {"x": deep}}
    large = {"properties": {f"p{i}": {"type": "string", "description": "d" * 100}
                            for i in range(MAX_SCHEMA_BYTES // 100)}}
    catalog = ToolCatalog.from_tools_list([_tool(deep, "deep"), _tool(large, "large")])
    assert set(catalog.errors) == {"deep", "large"}
    assert "nested deeper than" in catalog.errors["deep"].message
    assert f"larger than {MAX_SCHEMA_BYTES} bytes" in catalog.errors["large"].message
